// The frame ring without a TAP: plain calls in one thread (against a queue model), and a real
// producer Worker against the main thread (order, waking, back-pressure, overruns, stop).
import t from 'tap';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { FrameRing, FrameRingConsumer, FrameRingProducer, DEFAULT_SLOTS, DEFAULT_SLOT_CAPACITY } from '../../../src/dataplane/tap/frame-ring.js';
import { checkTestFrame, fillTestFrame, testFrameLength } from '../lib/ring-frames.js';
import type { RingProducerData, RingProducerResult } from '../lib/ring-producer.worker.js';

const PRODUCER = new URL('../lib/ring-producer.worker.js', import.meta.url);

function produce(producer: FrameRingProducer, bytes: Uint8Array): boolean {
  const slot = producer.reserve();
  if (slot === undefined) return false;
  slot.set(bytes);
  producer.commit(bytes.length);
  return true;
}

function drainAll(consumer: FrameRingConsumer): number[][] {
  const out: number[][] = [];
  consumer.drain((f) => out.push([...f]));
  return out;
}

t.test('frames come out in order with their bytes; a full ring refuses more until drained', async (t) => {
  const ring = FrameRing.create({ slots: 4, slotCapacity: 100 });
  const producer = new FrameRingProducer(ring);
  const consumer = new FrameRingConsumer(ring);
  t.equal(consumer.available(), 0);
  t.same(drainAll(consumer), []);
  for (let i = 1; i <= 4; i++) t.ok(produce(producer, new Uint8Array(i * 10).fill(i)), `frame ${i}`);
  t.equal(producer.reserve(), undefined, 'full: no slot');
  t.equal(ring.used, 4);
  t.throws(() => producer.commit(1), /commit without a free slot/);
  t.equal(consumer.available(), 4);
  const first = consumer.drain(() => undefined, 2);
  t.equal(first, 2, 'drain stops at max');
  t.ok(produce(producer, Uint8Array.of(5, 5)), 'room again after draining');
  t.same(drainAll(consumer), [new Array(30).fill(3), new Array(40).fill(4), [5, 5]]);
  t.equal(ring.used, 0);
  t.same(ring.producerStats(), { framesProduced: 5, bytesProduced: 10 + 20 + 30 + 40 + 2, overruns: 0, overrunBytes: 0 });
});

t.test('a frame is a view into its slot: full capacity when reserved, the committed length when drained', async (t) => {
  const ring = FrameRing.create({ slots: 2, slotCapacity: 70 });
  const producer = new FrameRingProducer(ring);
  const slot = producer.reserve();
  t.equal(slot?.length, 70);
  t.equal(slot?.buffer, ring.buffer, 'in the shared buffer: read() fills it in place');
  t.throws(() => producer.commit(71), { name: 'RangeError', message: /0-70/ });
  t.throws(() => producer.commit(-1), RangeError);
  producer.commit(70);
  producer.reserve();
  producer.commit(0);
  const lengths: number[] = [];
  new FrameRingConsumer(ring).drain((f) => lengths.push(f.length));
  t.same(lengths, [70, 0], 'empty frames are frames too');
});

t.test('geometry is checked, and attach() sees the same ring', async (t) => {
  for (const slots of [0, 1, 3, 6, 2 ** 21]) t.throws(() => FrameRing.create({ slots }), { message: /power of two/ }, `slots ${slots}`);
  t.throws(() => FrameRing.create({ slotCapacity: 0 }), RangeError);
  t.throws(() => FrameRing.attach(new SharedArrayBuffer(4096)), /bad magic/);
  const ring = FrameRing.create();
  t.equal(ring.slots, DEFAULT_SLOTS);
  t.equal(ring.slotCapacity, DEFAULT_SLOT_CAPACITY);
  t.ok(DEFAULT_SLOT_CAPACITY >= 10 + 14 + 4 + 65_535, 'a slot holds a 64 KB super-frame with virtio_net_hdr and VLAN tag');
  const other = FrameRing.attach(ring.buffer);
  t.same([other.slots, other.slotCapacity], [ring.slots, ring.slotCapacity]);
  t.throws(() => FrameRing.attach(ring.buffer.slice(0, 1024) as SharedArrayBuffer), /shorter/);
  produce(new FrameRingProducer(ring), Uint8Array.of(9));
  t.same(drainAll(new FrameRingConsumer(other)), [[9]]);
});

t.test('any interleaving of produce and drain behaves as a bounded FIFO queue', async (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('produce' as const), length: fc.integer({ min: 0, max: 32 }) }),
    fc.record({ kind: fc.constant('drain' as const), max: fc.integer({ min: 0, max: 5 }) }),
  );
  fc.assert(
    fc.property(fc.constantFrom(2, 4, 8), fc.array(op, { maxLength: 200 }), (slots, ops) => {
      const ring = FrameRing.create({ slots, slotCapacity: 32 });
      const producer = new FrameRingProducer(ring);
      const consumer = new FrameRingConsumer(ring);
      const model: number[][] = [];
      let next = 0;
      for (const o of ops) {
        if (o.kind === 'produce') {
          const bytes = Array.from({ length: o.length }, (_, i) => (next + i) & 0xff);
          next++;
          const accepted = produce(producer, Uint8Array.from(bytes));
          if (accepted !== model.length < slots) return false;
          if (accepted) model.push(bytes);
        } else {
          const got: number[][] = [];
          consumer.drain((f) => got.push([...f]), o.max);
          const want = model.splice(0, o.max);
          if (JSON.stringify(got) !== JSON.stringify(want)) return false;
        }
        if (ring.used !== model.length || consumer.available() !== model.length) return false;
      }
      return true;
    }),
  );
});

t.test('the counters wrap past 2^31 without losing a frame', async (t) => {
  const ring = FrameRing.create({ slots: 4, slotCapacity: 8 });
  // HEAD and TAIL (int32 words 16 and 32, see the layout in frame-ring.ts) start just below the wrap.
  const words = new Int32Array(ring.buffer);
  words[16] = 2 ** 31 - 3;
  words[32] = 2 ** 31 - 3;
  const producer = new FrameRingProducer(ring);
  const consumer = new FrameRingConsumer(ring);
  const got: number[] = [];
  for (let i = 0; i < 20; i++) {
    t.ok(produce(producer, Uint8Array.of(i)));
    if (i % 3 === 2) consumer.drain((f) => got.push(f[0] ?? -1));
  }
  consumer.drain((f) => got.push(f[0] ?? -1));
  t.same(got, Array.from({ length: 20 }, (_, i) => i));
  t.ok((words[16] ?? 0) < 0, 'HEAD did wrap');
});

t.test('a throwing handler frees its slot and the next drain goes on from the next frame', async (t) => {
  const ring = FrameRing.create({ slots: 4, slotCapacity: 8 });
  const producer = new FrameRingProducer(ring);
  const consumer = new FrameRingConsumer(ring);
  for (let i = 0; i < 4; i++) produce(producer, Uint8Array.of(i));
  const seen: number[] = [];
  t.throws(() =>
    consumer.drain((f) => {
      seen.push(f[0] ?? -1);
      if (f[0] === 1) throw new Error('handler bug');
    }),
  );
  t.equal(ring.used, 2, 'the frame that threw is released');
  consumer.drain((f) => seen.push(f[0] ?? -1));
  t.same(seen, [0, 1, 2, 3]);
});

t.test('waitForFrames: undefined when frames are ready, a promise otherwise, and interruptWait wakes it', async (t) => {
  const ring = FrameRing.create({ slots: 4, slotCapacity: 8 });
  const consumer = new FrameRingConsumer(ring);
  const wait = consumer.waitForFrames();
  t.type(wait, Promise);
  let woke = false;
  void wait?.then(() => (woke = true));
  await new Promise((r) => setTimeout(r, 20));
  t.notOk(woke, 'nothing arrived: still waiting');
  consumer.interruptWait();
  await wait;
  t.ok(woke);
  produce(new FrameRingProducer(ring), Uint8Array.of(1));
  t.equal(consumer.waitForFrames(), undefined, 'ready already');
});

function startProducer(ring: FrameRing, count: number, fullWaitMs: number): { worker: Worker; result: Promise<RingProducerResult> } {
  const data: RingProducerData = { ring: ring.buffer, count, fullWaitMs };
  const worker = new Worker(PRODUCER, { workerData: data });
  const result = new Promise<RingProducerResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { worker, result };
}

/**
 * Drains with waitForFrames until `until()` holds, checking each frame; returns the sequence
 * numbers. Gives up when the producer has finished and the ring is empty (instead of hanging).
 */
async function consume(ring: FrameRing, producer: Promise<unknown>, until: (seqs: readonly number[]) => boolean, slowEvery = 0): Promise<{ seqs: number[]; bad: number }> {
  const consumer = new FrameRingConsumer(ring);
  const seqs: number[] = [];
  let bad = 0;
  let batches = 0;
  let finished = false;
  void producer.finally(() => (finished = true));
  while (!until(seqs) && !(finished && consumer.available() === 0)) {
    const wait = consumer.waitForFrames();
    if (wait !== undefined) await Promise.race([wait, producer]);
    consumer.drain((f) => {
      const seq = checkTestFrame(f, ring.slotCapacity);
      if (seq === undefined) bad++;
      else seqs.push(seq);
    });
    // Now and then a slow consumer, so that the producer has to wait for space.
    if (slowEvery > 0 && ++batches % slowEvery === 0) await new Promise((r) => setTimeout(r, 1));
  }
  return { seqs, bad };
}

t.test('a producer Worker and the main thread: every frame, intact, in order, through a small ring', async (t) => {
  const count = 20_000;
  const ring = FrameRing.create({ slots: 8, slotCapacity: 1600 });
  const { worker, result } = startProducer(ring, count, 10_000);
  t.teardown(() => worker.terminate());
  const started = performance.now();
  const { seqs, bad } = await consume(ring, result, (s) => s.length >= count, 50);
  const ms = performance.now() - started;
  t.same(await result, { produced: count, dropped: 0, stopped: false }, 'the producer waited for space instead of dropping');
  t.equal(bad, 0, 'no frame with wrong bytes or length');
  t.ok(seqs.every((s, i) => s === i), 'in order, none missing or repeated');
  t.equal(ring.producerStats().overruns, 0);
  t.comment(`${count} frames through an 8-slot ring in ${ms.toFixed(0)} ms (${((count / ms) * 1000).toFixed(0)} frames/s)`);
});

t.test('a consumer that stops draining: the producer waits a bounded time, then drops and counts', async (t) => {
  const ring = FrameRing.create({ slots: 4, slotCapacity: 256 });
  const { worker, result } = startProducer(ring, 40, 5);
  t.teardown(() => worker.terminate());
  const done = await result; // nobody drains: 4 frames fit, the rest wait 5 ms each and are dropped
  t.same(done, { produced: 4, dropped: 36, stopped: false });
  const stats = ring.producerStats();
  t.equal(stats.overruns, 36);
  t.equal(stats.overrunBytes, Array.from({ length: 36 }, (_, i) => testFrameLength(i + 4, 256)).reduce((a, b) => a + b, 0));
  const { seqs, bad } = await consume(ring, result, (s) => s.length >= 4);
  t.same(seqs, [0, 1, 2, 3], 'what fit is delivered, in order');
  t.equal(bad, 0);
});

t.test('requestStop wakes a producer waiting for space at once', async (t) => {
  const ring = FrameRing.create({ slots: 2, slotCapacity: 64 });
  const { worker, result } = startProducer(ring, 1000, 60_000);
  t.teardown(() => worker.terminate());
  while (ring.used < 2) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 30)); // it is in Atomics.wait now
  const started = performance.now();
  new FrameRingConsumer(ring).requestStop();
  const done = await result;
  const ms = performance.now() - started;
  t.ok(ring.stopRequested);
  t.same(done, { produced: 2, dropped: 0, stopped: true });
  t.ok(ms < 500, `stopped after ${ms.toFixed(1)} ms, not after the 60 s wait`);
});

t.test('fillTestFrame and checkTestFrame agree, and a changed byte is caught', async (t) => {
  const slot = new Uint8Array(100);
  const length = testFrameLength(7, 100);
  fillTestFrame(slot, 7, length);
  t.equal(checkTestFrame(slot.subarray(0, length), 100), 7);
  slot[length - 1] = (slot[length - 1] ?? 0) ^ 1;
  t.equal(checkTestFrame(slot.subarray(0, length), 100), undefined);
});
