// What the Worker's send path counts, in shared memory the main thread reads when asked for its
// counters (and adds to its own: the metrics do not tell which thread sent). One SharedArrayBuffer
// also carries the snapshot generation, the signal that a new snapshot waits on the message port.
//
// Layout: i32 [0] generation of the latest snapshot posted; f64 from byte 8, one per counter below.
// Only the Worker writes the counters (plain stores of aligned doubles, as the frame ring's).

/** Counters as the main thread's stats name them; drops by the reasons its drops map uses. */
export const SENDER_STATS = ['captured', 'capturedBytes', 'sent', 'sentBytes', 'sendErrors'] as const;
export type SenderStat = (typeof SENDER_STATS)[number];
export const SENDER_DROPS = ['send-buffer-full', 'cannot-pack'] as const;
export type SenderDrop = (typeof SENDER_DROPS)[number];

const SLOTS = SENDER_STATS.length + SENDER_DROPS.length;
const COUNTERS_OFFSET = 8;

export interface SenderCounterValues {
  readonly stats: Readonly<Record<SenderStat, number>>;
  readonly drops: ReadonlyMap<SenderDrop, number>;
}

export class SenderControl {
  private readonly words: Int32Array;
  private readonly counters: Float64Array;

  private constructor(readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer, 0, 1);
    this.counters = new Float64Array(buffer, COUNTERS_OFFSET, SLOTS);
  }

  static create(): SenderControl {
    return new SenderControl(new SharedArrayBuffer(COUNTERS_OFFSET + 8 * SLOTS));
  }

  static attach(buffer: SharedArrayBuffer): SenderControl {
    return new SenderControl(buffer);
  }

  /** Main thread: a snapshot has been posted; returns its generation. */
  bumpGeneration(): number {
    return Atomics.add(this.words, 0, 1) + 1;
  }

  get generation(): number {
    return Atomics.load(this.words, 0);
  }

  add(stat: SenderStat, n = 1): void {
    this.addAt(SENDER_STATS.indexOf(stat), n);
  }

  /** The per-frame counters by index, without a lookup: see SENDER_STATS. */
  addAt(index: number, n: number): void {
    this.counters[index] = (this.counters[index] ?? 0) + n;
  }

  drop(reason: SenderDrop): void {
    this.addAt(SENDER_STATS.length + SENDER_DROPS.indexOf(reason), 1);
  }

  read(): SenderCounterValues {
    const stats = Object.fromEntries(SENDER_STATS.map((s, i) => [s, this.counters[i] ?? 0])) as Record<SenderStat, number>;
    const drops = new Map<SenderDrop, number>();
    SENDER_DROPS.forEach((d, i) => {
      const n = this.counters[SENDER_STATS.length + i] ?? 0;
      if (n > 0) drops.set(d, n);
    });
    return { stats, drops };
  }
}

export const CAPTURED = SENDER_STATS.indexOf('captured');
export const CAPTURED_BYTES = SENDER_STATS.indexOf('capturedBytes');
export const SENT = SENDER_STATS.indexOf('sent');
export const SENT_BYTES = SENDER_STATS.indexOf('sentBytes');
