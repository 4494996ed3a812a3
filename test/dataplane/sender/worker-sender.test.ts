// WorkerSender on this thread (it runs in the TAP reader, but needs no Worker): a send that fails
// is counted and reported once per errno, and never throws; frames it does not take are left alone.
import t from 'tap';
import { MessageChannel } from 'node:worker_threads';
import { WorkerSender, type SenderNote, type SnapshotMessage } from '../../../src/dataplane/sender/worker-sender.js';
import { SenderControl } from '../../../src/dataplane/sender/counters.js';
import { SequenceCounter } from '../../../src/dataplane/sleeve/sequence-counter.js';
import { chunkStride } from '../../../src/dataplane/sleeve/header.js';
import { parseMac } from '../../../src/dataplane/forwarder/mac.js';
import { macBytes } from '../lib/packets.js';

const LOCAL = '0a:00:00:00:00:01';
const REMOTE = '0a:00:00:00:00:02';

function frame(dst: string, src: string, length = 100): Uint8Array {
  const f = new Uint8Array(length);
  f.set(macBytes(dst), 0);
  f.set(macBytes(src), 6);
  return f;
}

t.test('a failing sendto is counted, reported once per errno, and handled', async (t) => {
  const channel = new MessageChannel();
  t.teardown(() => channel.port1.close());
  const control = SenderControl.create();
  const notes: SenderNote[] = [];
  // fd -1: every sendto fails with EBADF, as a socket closed under the reader would.
  const sender = new WorkerSender({ udpFd: -1, control: control.buffer, port: channel.port2 }, 0, (n) => notes.push(n));
  const sequence = SequenceCounter.create();
  const message: SnapshotMessage = {
    generation: 1,
    snapshot: {
      self: 1,
      links: [{ key: '5', connectionUid: 5n, weDialled: true, stride: chunkStride(1500), remoteIp: '127.0.0.1', remotePort: 9, sequence: sequence.buffer }],
      routes: [{ mac: parseMac(REMOTE), link: '5', dstPeer: 2 }],
      locals: [parseMac(LOCAL)],
    },
  };
  t.equal(sender.trySend(frame(REMOTE, LOCAL), 100), false, 'no snapshot yet: the main thread\'s');
  channel.port1.postMessage(message);
  control.bumpGeneration();
  for (let i = 0; i < 3; i++) t.equal(sender.trySend(frame(REMOTE, LOCAL), 100), true, `frame ${i} handled (dropped)`);
  t.equal(sender.trySend(frame('ff:ff:ff:ff:ff:ff', LOCAL), 100), false, 'broadcast: the main thread\'s');
  t.equal(sender.trySend(frame(REMOTE, LOCAL), 13), false, 'shorter than an Ethernet header: the main thread\'s');
  const { stats } = control.read();
  t.same(stats, { captured: 3, capturedBytes: 300, sent: 0, sentBytes: 0, sendErrors: 3 });
  t.same(notes.filter((n) => n.type === 'send-error'), [{ type: 'send-error', code: 'EBADF', link: '127.0.0.1:9' }], 'reported once');
  t.equal(sequence.next, 3, 'each frame took its number (the main thread never reuses them)');
});
