// A single-producer single-consumer ring of frames in a SharedArrayBuffer: the TAP reader Worker
// read()s each frame straight into the next free slot and publishes it; the main thread, woken by
// Atomics.waitAsync, hands every ready frame to its handler in order and frees the slot. No copy
// and no message per frame cross the thread boundary (postMessage per frame would cost more than
// the frame), and order is kept by construction (DESIGN §6).
//
// Slots are fixed-size, large enough for a TCP super-frame with its virtio_net_hdr (64 KB + 10),
// so the producer can read() into a slot before it knows the frame's length. The lengths sit in
// their own array (the "length prefix" of each slot). HEAD (frames published) and TAIL (frames
// freed) only grow, wrapping at 2^31 as int32; the slot count is a power of two so `index & mask`
// stays right across the wrap. Each side sleeps only after raising its *_WAITING flag, and the
// other side notifies only when the flag is up, so a busy ring costs no notify per frame.
//
// When the ring is full the producer waits a bounded time for the consumer and then drops
// (counting an overrun) rather than block for ever: the kernel's TAP queue behind it keeps its
// own AQM, and a stuck consumer must never wedge the reader (close() must still work).
//
// Buffer layout (bytes): producer and consumer words sit on separate 64-byte lines.
//   0   i32 MAGIC, SLOTS, SLOT_CAPACITY, STOP
//   64  i32 HEAD, PRODUCER_WAITING; f64 at 72 frames produced, 80 bytes produced, 88 overruns, 96 overrun bytes
//   128 i32 TAIL, CONSUMER_WAITING
//   192 i32 lengths[SLOTS], then the slots, each SLOT_CAPACITY rounded up to 64 bytes

/** A TCP super-frame: 10-byte virtio_net_hdr + 14-byte Ethernet (+4 VLAN) + a 65535-byte IP packet, with room to spare. */
export const DEFAULT_SLOT_CAPACITY = 65_600;
/** 256 slots of 64 KB: 16.8 MB, a few milliseconds of frames at full speed. */
export const DEFAULT_SLOTS = 256;

const MAGIC = 0x57465452; // "WFTR"
const W_MAGIC = 0;
const W_SLOTS = 1;
const W_SLOT_CAPACITY = 2;
const W_STOP = 3;
const W_HEAD = 16;
const W_PRODUCER_WAITING = 17;
const F_FRAMES = 9; // Float64 index: byte 72
const F_BYTES = 10;
const F_OVERRUNS = 11;
const F_OVERRUN_BYTES = 12;
const W_TAIL = 32;
const W_CONSUMER_WAITING = 33;
const LENGTHS_OFFSET = 192;
const LINE = 64;

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export interface FrameRingOptions {
  /** A power of two, 2 or more. */
  readonly slots?: number;
  /** The largest frame a slot holds, in bytes. */
  readonly slotCapacity?: number;
}

/** What the producer has counted (read by the consumer side without locking: approximate while it runs). */
export interface FrameRingProducerStats {
  readonly framesProduced: number;
  readonly bytesProduced: number;
  /** Frames dropped because the ring stayed full. */
  readonly overruns: number;
  readonly overrunBytes: number;
}

/** The shared memory and its geometry; attach() the same buffer in the other thread. */
export class FrameRing {
  readonly slots: number;
  readonly slotCapacity: number;
  /** @internal */ readonly words: Int32Array;
  /** @internal */ readonly counters: Float64Array;
  /** @internal */ readonly lengths: Int32Array;
  /** @internal */ readonly views: readonly Uint8Array[];

  private constructor(readonly buffer: SharedArrayBuffer) {
    const words = new Int32Array(buffer, 0, LENGTHS_OFFSET / 4);
    if (words[W_MAGIC] !== MAGIC) throw new RangeError('not a frame ring: bad magic');
    this.slots = words[W_SLOTS] ?? 0;
    this.slotCapacity = words[W_SLOT_CAPACITY] ?? 0;
    const stride = alignUp(this.slotCapacity, LINE);
    const dataOffset = alignUp(LENGTHS_OFFSET + 4 * this.slots, LINE);
    if (buffer.byteLength < dataOffset + stride * this.slots) throw new RangeError('frame ring buffer is shorter than its geometry says');
    this.words = words;
    this.counters = new Float64Array(buffer, 0, LENGTHS_OFFSET / 8);
    this.lengths = new Int32Array(buffer, LENGTHS_OFFSET, this.slots);
    this.views = Array.from({ length: this.slots }, (_, i) => new Uint8Array(buffer, dataOffset + i * stride, this.slotCapacity));
  }

  /** Allocates a ring (one SharedArrayBuffer) with `slots` slots of `slotCapacity` bytes. */
  static create(options: FrameRingOptions = {}): FrameRing {
    const slots = options.slots ?? DEFAULT_SLOTS;
    const slotCapacity = options.slotCapacity ?? DEFAULT_SLOT_CAPACITY;
    if (!Number.isInteger(slots) || slots < 2 || slots > 1 << 20 || (slots & (slots - 1)) !== 0) {
      throw new RangeError(`frame ring slots ${slots}: want a power of two from 2 to 2^20`);
    }
    if (!Number.isInteger(slotCapacity) || slotCapacity < 1 || slotCapacity > 1 << 24) {
      throw new RangeError(`frame ring slot capacity ${slotCapacity}: want 1 to 2^24 bytes`);
    }
    const size = alignUp(LENGTHS_OFFSET + 4 * slots, LINE) + alignUp(slotCapacity, LINE) * slots;
    const buffer = new SharedArrayBuffer(size);
    const words = new Int32Array(buffer, 0, LENGTHS_OFFSET / 4);
    words[W_MAGIC] = MAGIC;
    words[W_SLOTS] = slots;
    words[W_SLOT_CAPACITY] = slotCapacity;
    return new FrameRing(buffer);
  }

  /** The same ring over a buffer made by create() (in another thread, say). */
  static attach(buffer: SharedArrayBuffer): FrameRing {
    return new FrameRing(buffer);
  }

  /** Frames published and not yet freed. */
  get used(): number {
    return (Atomics.load(this.words, W_HEAD) - Atomics.load(this.words, W_TAIL)) | 0;
  }

  get stopRequested(): boolean {
    return Atomics.load(this.words, W_STOP) !== 0;
  }

  producerStats(): FrameRingProducerStats {
    return {
      framesProduced: this.counters[F_FRAMES] ?? 0,
      bytesProduced: this.counters[F_BYTES] ?? 0,
      overruns: this.counters[F_OVERRUNS] ?? 0,
      overrunBytes: this.counters[F_OVERRUN_BYTES] ?? 0,
    };
  }
}

/** The writing side; exactly one per ring, in one thread. */
export class FrameRingProducer {
  private head: number;
  private readonly mask: number;

  constructor(private readonly ring: FrameRing) {
    this.head = Atomics.load(ring.words, W_HEAD);
    this.mask = ring.slots - 1;
  }

  /** The slot to fill next (slotCapacity bytes, in place), or undefined while the ring is full. */
  reserve(): Uint8Array | undefined {
    if (((this.head - Atomics.load(this.ring.words, W_TAIL)) | 0) >= this.ring.slots) return undefined;
    return this.ring.views[this.head & this.mask];
  }

  /** Publishes the slot last reserve()d, holding `length` bytes, and wakes the consumer if it sleeps. */
  commit(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.ring.slotCapacity) {
      throw new RangeError(`frame length ${length} out of range 0-${this.ring.slotCapacity}`);
    }
    const words = this.ring.words;
    if (((this.head - Atomics.load(words, W_TAIL)) | 0) >= this.ring.slots) throw new Error('frame ring: commit without a free slot');
    this.ring.lengths[this.head & this.mask] = length;
    this.head = (this.head + 1) | 0;
    // Sequentially consistent: the slot's bytes and length are visible to whoever sees this HEAD.
    Atomics.store(words, W_HEAD, this.head);
    const counters = this.ring.counters;
    counters[F_FRAMES] = (counters[F_FRAMES] ?? 0) + 1;
    counters[F_BYTES] = (counters[F_BYTES] ?? 0) + length;
    if (Atomics.load(words, W_CONSUMER_WAITING) !== 0) Atomics.notify(words, W_HEAD);
  }

  /**
   * Sleeps (Atomics.wait: only in a Worker, never on the main thread) until the consumer frees a
   * slot, stop is requested, or `timeoutMs` passes. True if a slot is free now.
   */
  waitForSpace(timeoutMs: number): boolean {
    const words = this.ring.words;
    const deadline = performance.now() + timeoutMs;
    Atomics.store(words, W_PRODUCER_WAITING, 1);
    for (;;) {
      const tail = Atomics.load(words, W_TAIL);
      const left = deadline - performance.now();
      if (((this.head - tail) | 0) < this.ring.slots || this.ring.stopRequested || left <= 0) break;
      // May return with TAIL unchanged: a notify meant for an earlier wait can land in this one.
      Atomics.wait(words, W_TAIL, tail, left);
    }
    Atomics.store(words, W_PRODUCER_WAITING, 0);
    return ((this.head - Atomics.load(words, W_TAIL)) | 0) < this.ring.slots;
  }

  /** Counts a frame of `bytes` dropped because the ring stayed full. */
  countOverrun(bytes: number): void {
    const counters = this.ring.counters;
    counters[F_OVERRUNS] = (counters[F_OVERRUNS] ?? 0) + 1;
    counters[F_OVERRUN_BYTES] = (counters[F_OVERRUN_BYTES] ?? 0) + bytes;
  }

  get stopRequested(): boolean {
    return this.ring.stopRequested;
  }
}

// Atomics.waitAsync is in Node 20 (V8 8.7+) but only in TypeScript's ES2024 lib; this project's lib is ES2022.
type WaitAsync = (array: Int32Array, index: number, value: number) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** The reading side; exactly one per ring, in one thread. */
export class FrameRingConsumer {
  private tail: number;
  private readonly mask: number;

  constructor(private readonly ring: FrameRing) {
    this.tail = Atomics.load(ring.words, W_TAIL);
    this.mask = ring.slots - 1;
  }

  /** Frames ready to drain. */
  available(): number {
    return (Atomics.load(this.ring.words, W_HEAD) - this.tail) | 0;
  }

  /**
   * Calls `onFrame` for each ready frame, oldest first, up to `max`. The frame is a view into the
   * ring, valid only until `onFrame` returns (copy it to keep it); its slot is freed right after,
   * even if `onFrame` throws (the exception then ends the drain). Returns the number of frames.
   */
  drain(onFrame: (frame: Uint8Array) => void, max = Infinity): number {
    const words = this.ring.words;
    const head = Atomics.load(words, W_HEAD);
    let count = 0;
    while (this.tail !== head && count < max) {
      const index = this.tail & this.mask;
      const view = this.ring.views[index] as Uint8Array;
      const length = this.ring.lengths[index] ?? 0;
      count++;
      try {
        onFrame(view.subarray(0, length));
      } finally {
        this.release();
      }
    }
    return count;
  }

  private release(): void {
    const words = this.ring.words;
    this.tail = (this.tail + 1) | 0;
    Atomics.store(words, W_TAIL, this.tail);
    if (Atomics.load(words, W_PRODUCER_WAITING) !== 0) Atomics.notify(words, W_TAIL);
  }

  /**
   * Resolves once frames are ready (undefined instead of a promise if some are ready already), or
   * when interruptWait() is called. Does not block the thread: for the main thread.
   */
  waitForFrames(): Promise<void> | undefined {
    const words = this.ring.words;
    const head = Atomics.load(words, W_HEAD);
    if (head !== this.tail) return undefined;
    Atomics.store(words, W_CONSUMER_WAITING, 1);
    const result = waitAsync(words, W_HEAD, head);
    if (!result.async) {
      Atomics.store(words, W_CONSUMER_WAITING, 0);
      return undefined;
    }
    return result.value.then(() => {
      Atomics.store(words, W_CONSUMER_WAITING, 0);
    });
  }

  /** Wakes a pending waitForFrames() even though nothing arrived (to shut down). */
  interruptWait(): void {
    Atomics.notify(this.ring.words, W_HEAD);
  }

  /** Asks the producer to stop and wakes it if it waits for space. */
  requestStop(): void {
    Atomics.store(this.ring.words, W_STOP, 1);
    Atomics.notify(this.ring.words, W_TAIL);
  }
}
