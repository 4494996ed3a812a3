// A WorkerSender on the test's own thread with one established link to one remote MAC, for the
// tests of its send path: the snapshot is posted as the main thread would, and frames from LOCAL
// to REMOTE are the sender's to take.
import type { Test } from 'tap';
import { MessageChannel } from 'node:worker_threads';
import { WorkerSender, type SenderNote, type SnapshotMessage } from '../../../src/dataplane/sender/worker-sender.js';
import { SenderControl } from '../../../src/dataplane/sender/counters.js';
import { SequenceCounter } from '../../../src/dataplane/sleeve/sequence-counter.js';
import { chunkStride } from '../../../src/dataplane/sleeve/header.js';
import { parseMac } from '../../../src/dataplane/forwarder/mac.js';
import { macBytes } from '../lib/packets.js';

export const LOCAL = '0a:00:00:00:00:01';
export const REMOTE = '0a:00:00:00:00:02';

/** A frame of `length` bytes (no virtio header) from `src` to `dst`; the rest is zeros. */
export function frame(dst: string, src: string, length = 100): Uint8Array {
  const f = new Uint8Array(length);
  f.set(macBytes(dst), 0);
  f.set(macBytes(src), 6);
  return f;
}

export interface OneLinkSender {
  readonly sender: WorkerSender;
  readonly control: SenderControl;
  readonly notes: SenderNote[];
  /** The link's counter, as the main thread would share it. */
  readonly sequence: SequenceCounter;
  /** Posts the snapshot (REMOTE over the link, LOCAL ours) and raises the generation. */
  publish(): void;
}

/** A sender on `udpFd` whose one link goes to remoteIp:remotePort. */
export function oneLinkSender(t: Test, udpFd: number, remoteIp: string, remotePort: number): OneLinkSender {
  const channel = new MessageChannel();
  t.teardown(() => channel.port1.close());
  const control = SenderControl.create();
  const notes: SenderNote[] = [];
  const sender = new WorkerSender({ udpFd, control: control.buffer, port: channel.port2 }, 0, (n) => notes.push(n));
  const sequence = SequenceCounter.create();
  const message: SnapshotMessage = {
    generation: 1,
    snapshot: {
      self: 1,
      links: [{ key: '5', connectionUid: 5n, weDialled: true, stride: chunkStride(1500), remoteIp, remotePort, sequence: sequence.buffer }],
      routes: [{ mac: parseMac(REMOTE), link: '5', dstPeer: 2 }],
      locals: [parseMac(LOCAL)],
    },
  };
  return {
    sender, control, notes, sequence,
    publish: () => {
      channel.port1.postMessage(message);
      control.bumpGeneration();
    },
  };
}
