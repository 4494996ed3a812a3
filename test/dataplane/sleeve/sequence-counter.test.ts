// One link's sequence numbers shared by two threads (the main thread and the TAP reader): every
// number is taken once, so with a password no nonce is ever sealed twice, and the key epoch, a
// function of the number, agrees across threads through key updates. Checked by opening every
// datagram with the receiving side's InboundLink: nothing refused as a replay or forgery.
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { splitDatagram } from '../../../src/dataplane/sleeve/chunker.js';
import { FrameOpener, FrameSealer, deriveFrameKeys } from '../../../src/dataplane/sleeve/frame-crypto.js';
import { MAX_SEQUENCE, MessageKind, SleeveFormatError, chunkStride } from '../../../src/dataplane/sleeve/header.js';
import { InboundLink } from '../../../src/dataplane/sleeve/inbound.js';
import { OutboundLink } from '../../../src/dataplane/sleeve/outbound.js';
import { Reassembler } from '../../../src/dataplane/sleeve/reassembler.js';
import { SequenceCounter } from '../../../src/dataplane/sleeve/sequence-counter.js';
import type { SealWorkerData } from '../lib/seal-worker.worker.js';

const SEALER = new URL('../lib/seal-worker.worker.js', import.meta.url);
const UID = 0x5eed5eed5eed5eedn;
const STRIDE = chunkStride(1500);
/** Each thread packs at least this many (the main thread waits for the other's), and both go on until their numbers interleave. */
const PER_THREAD = 3000;
/** Hand-overs the main thread waits to see in its own numbers: a scheduler may run one thread alone for a while. */
const GAPS = 10;
const MAX_PER_THREAD = 20 * PER_THREAD;
/** Small, so that the key changes dozens of times while both threads seal. */
const KEY_UPDATE_AFTER = 97;

t.test('take() hands each number out once; takeExactly() only the next; exhausted stays exhausted', async (t) => {
  const c = SequenceCounter.create();
  const other = SequenceCounter.attach(c.buffer);
  t.equal(c.take(), 0);
  t.equal(other.take(), 1, 'an attached counter is the same counter');
  t.equal(c.next, 2);
  t.equal(c.takeExactly(1), false, 'taken already');
  t.equal(c.takeExactly(3), false, 'not the next');
  t.equal(c.takeExactly(2), true);
  t.equal(other.next, 3);
  c.skipTo(MAX_SEQUENCE);
  t.equal(c.take(), MAX_SEQUENCE);
  t.throws(() => c.take(), RangeError);
  t.throws(() => c.take(), RangeError, 'and again: no number comes back');
  t.equal(c.takeExactly(MAX_SEQUENCE + 1), false);
});

for (const encrypted of [false, true]) {
  t.test(`${encrypted ? 'encrypted' : 'plain'}: two threads sending on one link never reuse a number`, async (t) => {
    const session = new Uint8Array(32).fill(3);
    const keys = deriveFrameKeys(session, UID, true);
    const sequence = SequenceCounter.create();
    const go = new SharedArrayBuffer(8);
    const data: SealWorkerData = {
      sequence: sequence.buffer, keyUpdateAfterMessages: KEY_UPDATE_AFTER, connectionUid: UID, stride: STRIDE, max: MAX_PER_THREAD, go,
      ...(encrypted ? { key: keys.send } : {}),
    };
    const worker = new Worker(SEALER, { workerData: data, execArgv: [] });
    t.teardown(() => worker.terminate());
    const ready = new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    await ready;
    const theirs = new Promise<Uint8Array[]>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const sealer = encrypted ? new FrameSealer(keys.send, true, { sequence, keyUpdateAfterMessages: KEY_UPDATE_AFTER }) : undefined;
    const out = new OutboundLink({ connectionUid: UID, weDialled: true, stride: STRIDE, ...(sealer ? { sealer } : { sequence }) });
    Atomics.store(new Int32Array(go), 0, 1);
    Atomics.notify(new Int32Array(go), 0);
    // Packing until the other thread's numbers showed up between ours GAPS times, not a fixed
    // count: on a loaded machine either thread can be descheduled for the whole of 3,000 packs.
    const ours: Uint8Array[] = [];
    let gaps = 0;
    let last = -1;
    // The other thread's count is what the shared counter handed out beyond ours.
    const enough = (i: number): boolean => i >= PER_THREAD && sequence.next - i >= PER_THREAD && gaps > GAPS;
    for (let i = 0; i < MAX_PER_THREAD && !enough(i); i++) {
      const datagrams = out.pack({ kind: MessageKind.Heartbeat, srcPeer: 1, dstPeer: 2, vnetHdr: false, body: Buffer.alloc(40 + (i % 5) * 200, 0x55) });
      const seq = sequenceOf(datagrams[0]!);
      if (last >= 0 && seq !== last + 1) gaps++;
      last = seq;
      ours.push(...datagrams);
    }
    Atomics.store(new Int32Array(go), 1, 1);
    const fromWorker = await theirs;

    // The receiver sees both threads' datagrams in sequence order, as a wire would more or less.
    const all = [...ours, ...fromWorker].map((d) => ({ d, seq: sequenceOf(d) })).sort((a, b) => a.seq - b.seq);
    const seqs = all.map((x) => x.seq);
    t.same(seqs, seqs.map((_, i) => i), `numbers 0..${seqs.length - 1}, each once`);
    const mine = new Set(ours.map(sequenceOf));
    let switches = 0;
    for (let i = 1; i < seqs.length; i++) if (mine.has(seqs[i]!) !== mine.has(seqs[i - 1]!)) switches++;
    t.ok(switches > 10, `the threads' numbers interleave (${switches} hand-overs)`);

    const inbound = new InboundLink({
      connectionUid: UID, weDialled: false, reassembler: new Reassembler(),
      ...(encrypted ? { opener: new FrameOpener(deriveFrameKeys(session, UID, false).receive, true) } : {}),
    });
    const refused = new Map<string, number>();
    let opened = 0;
    for (const { d } of all) {
      for (const c of splitDatagram(d)) {
        if (c instanceof SleeveFormatError) throw new Error(c.detail);
        const r = inbound.accept(c, 0);
        if (r.status === 'message') opened++;
        else if (r.status === 'dropped') refused.set(r.reason, (refused.get(r.reason) ?? 0) + 1);
      }
    }
    t.same([...refused], [], 'no replay refused, no seal failed to open');
    t.equal(opened, all.length);
    if (encrypted) t.ok(all.length / KEY_UPDATE_AFTER > 50, 'across dozens of key updates');
  });
}

/** The sequence field of a datagram's first chunk (bytes 24..32). */
function sequenceOf(d: Uint8Array): number {
  const v = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return Number(v.readBigUInt64BE(24));
}
