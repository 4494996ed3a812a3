// A sender of one sleeve link in a Worker, for the shared-counter tests: packs messages with an
// OutboundLink whose sealer (or plain counter) numbers from the shared SequenceCounter, while the
// test's main thread does the same on its own OutboundLink, until the main thread says stop (or
// `max` messages). Posts every datagram.
import { parentPort, workerData } from 'node:worker_threads';
import { FrameSealer } from '../../../src/dataplane/sleeve/frame-crypto.js';
import { MessageKind } from '../../../src/dataplane/sleeve/header.js';
import { OutboundLink } from '../../../src/dataplane/sleeve/outbound.js';
import { SequenceCounter } from '../../../src/dataplane/sleeve/sequence-counter.js';

export interface SealWorkerData {
  readonly sequence: SharedArrayBuffer;
  readonly key?: Uint8Array;
  readonly keyUpdateAfterMessages: number;
  readonly connectionUid: bigint;
  readonly stride: number;
  /** A bound on memory should the main thread never say stop. */
  readonly max: number;
  /**
   * Two words. [0] is raised by the main thread once this thread said 'ready': both start
   * together. [1] is raised when the main thread has seen enough of its numbers interleave with ours.
   */
  readonly go: SharedArrayBuffer;
}

const data = workerData as SealWorkerData;
const sequence = SequenceCounter.attach(data.sequence);
const sealer = data.key === undefined ? undefined : new FrameSealer(data.key, true, { sequence, keyUpdateAfterMessages: data.keyUpdateAfterMessages });
const out = new OutboundLink({ connectionUid: data.connectionUid, weDialled: true, stride: data.stride, ...(sealer ? { sealer } : { sequence }) });
const go = new Int32Array(data.go);
parentPort?.postMessage('ready');
Atomics.wait(go, 0, 0);
const sends: Buffer[] = [];
for (let i = 0; i < data.max && Atomics.load(go, 1) === 0; i++) {
  const body = Buffer.alloc(60 + (i % 7) * 100, i & 0xff);
  body.writeUInt32BE(i, 0);
  sends.push(...out.pack({ kind: MessageKind.Frame, srcPeer: 1, dstPeer: 2, vnetHdr: false, body }));
}
parentPort?.postMessage(sends.map((b) => new Uint8Array(b)));
