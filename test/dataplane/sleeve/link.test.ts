// The whole pure path, both ends of one connection: OutboundLink.pack -> (the wire: UDP_SEGMENT
// cuts, UDP_GRO coalesces, the network loses, repeats, reorders, an attacker forges) ->
// splitDatagram -> InboundLink.accept.
import t from 'tap';
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import { splitDatagram } from '../../../src/dataplane/sleeve/chunker.js';
import { FrameOpener, FrameSealer, deriveFrameKeys } from '../../../src/dataplane/sleeve/frame-crypto.js';
import { MessageKind, SleeveFormatError, chunkStride, type Chunk } from '../../../src/dataplane/sleeve/header.js';
import { InboundLink, type InboundResult } from '../../../src/dataplane/sleeve/inbound.js';
import { OutboundLink, singleChunkBody } from '../../../src/dataplane/sleeve/outbound.js';
import { Reassembler } from '../../../src/dataplane/sleeve/reassembler.js';
import { bytes } from './arbitraries.js';

const UID = 0xfeedfacecafebeefn;
const STRIDE = chunkStride(1500);
const A = 0x02_00_00_00_00_0a;
const B = 0x02_00_00_00_00_0b;

/** The dialler's sending side and the listener's receiving side of one connection. */
function link(encrypted: boolean, session = bytes(32, 1)) {
  const d = deriveFrameKeys(session, UID, true);
  const l = deriveFrameKeys(session, UID, false);
  const out = new OutboundLink({ connectionUid: UID, weDialled: true, stride: STRIDE, ...(encrypted ? { sealer: new FrameSealer(d.send, true) } : {}) });
  const reassembler = new Reassembler();
  const inn = new InboundLink({ connectionUid: UID, weDialled: false, reassembler, ...(encrypted ? { opener: new FrameOpener(l.receive, true) } : {}) });
  // The listener's own sending side, for reflection tests.
  const back = new OutboundLink({ connectionUid: UID, weDialled: false, stride: STRIDE, ...(encrypted ? { sealer: new FrameSealer(l.send, false) } : {}) });
  return { out, inn, back, reassembler };
}

function chunks(datagram: Uint8Array): Chunk[] {
  return splitDatagram(datagram).map((c) => {
    if (c instanceof SleeveFormatError) throw new Error(c.detail);
    return c;
  });
}

/** Feeds whole sends (as UDP_GRO would hand them up) and collects what comes out. */
function deliver(inn: InboundLink, sends: readonly Uint8Array[], now = 0): InboundResult[] {
  return sends.flatMap((s) => chunks(s).map((c) => inn.accept(c, now))).filter((r) => r.status !== 'pending');
}

const frame = (n: number, seed: number): Uint8Array => bytes(n, seed);

for (const encrypted of [false, true]) {
  const mode = encrypted ? 'encrypted' : 'plain';

  t.test(`${mode}: frames of every size arrive whole, with their peers and flags`, async () => {
    const { out, inn } = link(encrypted);
    for (const [i, size] of [24, 60, 1400, 1500, 9000, 62_024, out.maxBody].entries()) {
      const body = frame(size, i + 1);
      const sends = out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: true, body: [body.subarray(0, 10), body.subarray(10)] });
      const [r, ...rest] = deliver(inn, sends);
      equal(rest.length, 0);
      ok(r?.status === 'message', `size ${size}: ${JSON.stringify(r)}`);
      deepStrictEqual(
        { ...r.message, body: Buffer.from(r.message.body) },
        { kind: 1, srcPeer: A, dstPeer: B, vnetHdr: true, sequence: i, body: Buffer.from(body) },
      );
    }
    equal(inn.messages, 7);
  });

  t.test(`${mode}: a full-size frame at the overlay MTU is one datagram of exactly the stride`, async () => {
    const { out } = link(encrypted);
    const mtu = encrypted ? 1396 : 1412;
    const [send, ...more] = out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: true, body: frame(10 + 14 + mtu, 1) });
    equal(more.length, 0);
    equal(send!.length, STRIDE);
  });

  t.test(`${mode}: a PMTU probe of a candidate MTU is one datagram of exactly that size`, async () => {
    const { out, inn } = link(encrypted);
    for (const mtu of [1400, 1500, 9000]) {
      const stride = chunkStride(mtu);
      const sends = out.pack({ kind: MessageKind.PmtuProbe, srcPeer: A, dstPeer: B, vnetHdr: false, body: new Uint8Array(singleChunkBody(stride, encrypted)) }, stride);
      deepStrictEqual(sends.map((s) => s.length), [mtu - 28]);
      equal(deliver(inn, sends)[0]?.status, 'message');
    }
    equal(out.stride, STRIDE, 'the link keeps its own stride');
  });

  t.test(`${mode}: a replayed datagram is dropped and counted, never delivered twice`, async () => {
    const { out, inn } = link(encrypted);
    const one = out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: false, body: frame(100, 1) });
    const big = out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: false, body: frame(20_000, 2) });
    equal(deliver(inn, one)[0]?.status, 'message');
    equal(deliver(inn, big)[0]?.status, 'message');
    const again = [...deliver(inn, one), ...deliver(inn, big)];
    ok(again.every((r) => r.status === 'dropped' && r.reason === 'replay'));
    equal(again.length, 1 + 14); // every chunk of the replayed super-frame stops at the window
    equal(inn.drops.get('replay'), 15);
    equal(inn.messages, 2);
  });

  t.test(`${mode}: reordered messages are all delivered; a lost chunk loses only its message`, async () => {
    const { out, inn } = link(encrypted);
    const packs = [0, 1, 2, 3].map((i) => out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: true, body: frame(5000, i) }));
    const lossy = chunks(packs[2]![0]!).slice(1); // message 2 loses its first chunk
    const got = [
      ...deliver(inn, packs[3]!),
      ...lossy.map((c) => inn.accept(c, 0)).filter((r) => r.status !== 'pending'),
      ...deliver(inn, packs[0]!),
      ...deliver(inn, packs[1]!),
    ];
    deepStrictEqual(
      got.map((r) => (r.status === 'message' ? r.message.sequence : r.status)),
      [3, 0, 1],
    );
  });

  t.test(`${mode}: a datagram reflected back to its sender is dropped`, async () => {
    const { back, inn } = link(encrypted);
    // The listener's own datagram (fromDialler = false) arriving at the listener.
    const r = deliver(inn, back.pack({ kind: MessageKind.Heartbeat, srcPeer: B, dstPeer: A, vnetHdr: false, body: new Uint8Array(0) }));
    deepStrictEqual(r, [{ status: 'dropped', reason: 'direction' }]);
  });

  t.test(`${mode}: another connection's datagram is dropped`, async () => {
    const { inn } = link(encrypted);
    const other = new OutboundLink({
      connectionUid: UID ^ 1n,
      weDialled: true,
      stride: STRIDE,
      ...(encrypted ? { sealer: new FrameSealer(bytes(32, 5), true) } : {}),
    });
    const r = deliver(inn, other.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: false, body: frame(64, 1) }));
    deepStrictEqual(r, [{ status: 'dropped', reason: 'foreign-connection' }]);
  });
}

t.test('encrypted: a forged or altered datagram is dropped, and does not move the replay window', async () => {
  const { out, inn } = link(true);
  const sends = out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: true, body: frame(3000, 1) });
  // Flip one bit of the body of the last chunk: the message no longer authenticates.
  const altered = sends.map((s) => Buffer.from(s));
  altered[0]![altered[0]!.length - 5]! ^= 0x10;
  deepStrictEqual(deliver(inn, altered), [{ status: 'dropped', reason: 'authentication' }]);
  // An attacker's datagram with a far-future sequence number and a made-up tag.
  const forged = Buffer.from(sends[0]!.subarray(0, 36 + 100));
  forged.writeUInt32BE(0, 24);
  forged.writeUInt32BE(1_000_000, 28);
  forged[32] = 1; // one chunk
  forged[33] = 0;
  forged.writeUInt16BE(100, 34);
  deepStrictEqual(deliver(inn, [forged]), [{ status: 'dropped', reason: 'authentication' }]);
  // The genuine message, sequence 0, still gets through: the window did not move.
  const ok0 = deliver(inn, sends);
  equal(ok0[0]?.status, 'message');
  equal(inn.drops.get('authentication'), 2);
});

t.test('encrypted: a plain datagram with the right connection uid is refused, and the reverse', async () => {
  const enc = link(true);
  const plain = link(false);
  const m = { kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: false, body: frame(64, 1) } as const;
  deepStrictEqual(deliver(enc.inn, plain.out.pack(m)), [{ status: 'dropped', reason: 'encryption-mismatch' }]);
  deepStrictEqual(deliver(plain.inn, enc.out.pack(m)), [{ status: 'dropped', reason: 'encryption-mismatch' }]);
});

t.test('encrypted: peers with different session keys (passwords) cannot talk', async () => {
  const a = link(true, bytes(32, 1));
  const b = link(true, bytes(32, 2));
  const r = deliver(b.inn, a.out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: false, body: frame(64, 1) }));
  deepStrictEqual(r, [{ status: 'dropped', reason: 'authentication' }]);
});

t.test('a frame message shorter than an Ethernet header (+ virtio_net_hdr) is dropped', async () => {
  const { out, inn } = link(false);
  deepStrictEqual(deliver(inn, out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: true, body: frame(23, 1) })), [
    { status: 'dropped', reason: 'short-frame' },
  ]);
  equal(deliver(inn, out.pack({ kind: MessageKind.Heartbeat, srcPeer: A, dstPeer: B, vnetHdr: false, body: new Uint8Array(0) }))[0]?.status, 'message');
});

t.test('the sending side: stride changes, size limits, rekey signal', async (t) => {
  const { out, inn } = link(true);
  t.throws(() => out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: true, body: frame(out.maxBody + 1, 1) }), RangeError);
  equal(out.nextSequence, 0, 'a refused message spends no sequence number');
  t.throws(() => out.pack({ kind: MessageKind.Frame, srcPeer: 2 ** 48, dstPeer: B, vnetHdr: true, body: frame(100, 1) }), RangeError);
  equal(out.nextSequence, 0);
  out.stride = chunkStride(9000);
  const sends = out.pack({ kind: MessageKind.Frame, srcPeer: A, dstPeer: B, vnetHdr: true, body: frame(30_000, 1) });
  equal(sends.length, 1);
  equal(sends[0]!.length, 30_016 + 4 * 36);
  equal(deliver(inn, sends)[0]?.status, 'message');
  equal(out.needsRekey, false);
  t.throws(() => new OutboundLink({ connectionUid: UID, weDialled: false, stride: STRIDE, sealer: new FrameSealer(bytes(32, 1), true) }), RangeError);
  t.throws(() => new OutboundLink({ connectionUid: UID, weDialled: true, stride: 20 }), RangeError);
});

t.test('random datagrams never throw anywhere on the receive path', async () => {
  const { inn } = link(true);
  const { inn: plainInn } = link(false);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400, size: 'max' }), fc.boolean(), (raw, fix) => {
      const b = Uint8Array.from(raw);
      if (fix && b.length >= 36) {
        // Mostly well-formed headers with our uid, so the later stages see garbage too.
        b.set([0xf7, 1, 1 + (b[2]! % 5), b[3]! & 7], 0);
        Buffer.from(b.buffer, b.byteOffset).writeBigUInt64BE(UID, 16);
        b[24] = 0;
        b[32] = 1 + (b[32]! % 3);
        b[33] = b[33]! % b[32]!;
        Buffer.from(b.buffer, b.byteOffset).writeUInt16BE(b.length - 36, 34);
      }
      for (const c of splitDatagram(b)) {
        if (c instanceof SleeveFormatError) continue;
        for (const l of [inn, plainInn]) {
          const r = l.accept(c, 0);
          // Garbage never authenticates.
          if (l === inn) ok(r.status !== 'message');
        }
      }
    }),
    { numRuns: 3000 },
  );
});
