// A FrameRing producer in a Worker, for the ring's tests: publishes `count` sequence-numbered
// frames of varying length (frameLength(i)), waiting up to `fullWaitMs` for a free slot and
// dropping the frame (an overrun) if none comes; stops early when asked. Posts what it did.
import { parentPort, workerData } from 'node:worker_threads';
import { FrameRing, FrameRingProducer } from '../../../src/dataplane/tap/frame-ring.js';
import { fillTestFrame, testFrameLength } from './ring-frames.js';

export interface RingProducerData {
  readonly ring: SharedArrayBuffer;
  readonly count: number;
  readonly fullWaitMs: number;
}

export interface RingProducerResult {
  readonly produced: number;
  readonly dropped: number;
  readonly stopped: boolean;
}

const data = workerData as RingProducerData;
const ring = FrameRing.attach(data.ring);
const producer = new FrameRingProducer(ring);
let produced = 0;
let dropped = 0;
let stopped = false;
for (let seq = 0; seq < data.count; seq++) {
  if (producer.stopRequested) {
    stopped = true;
    break;
  }
  const length = testFrameLength(seq, ring.slotCapacity);
  let slot = producer.reserve();
  if (slot === undefined && producer.waitForSpace(data.fullWaitMs)) slot = producer.reserve();
  if (slot === undefined && producer.stopRequested) {
    stopped = true;
    break;
  }
  if (slot === undefined) {
    producer.countOverrun(length);
    dropped++;
    continue;
  }
  fillTestFrame(slot, seq, length);
  producer.commit(length);
  produced++;
}
const result: RingProducerResult = { produced, dropped, stopped };
parentPort?.postMessage(result);
