// What the receive path in the TAP reader Worker counts, in shared memory the main thread reads
// when asked for its counters (and adds to its own, as it does the send path's). The same
// SharedArrayBuffer carries the snapshot generation, the signal that a new snapshot waits.
//
// Layout: i32 [0] generation of the latest snapshot posted; f64 from byte 8, one per stat, then
// one per drop reason below. Only the Worker writes the counters.
import type { FormatErrorReason } from '../sleeve/header.js';
import type { InboundDrop } from '../sleeve/inbound.js';

export const RECEIVER_STATS = ['received', 'receivedBytes', 'injected', 'injectedBytes', 'malformed', 'unknownConnection'] as const;
export type ReceiverStat = (typeof RECEIVER_STATS)[number];

const INBOUND_DROPS = [
  'foreign-connection', 'direction', 'encryption-mismatch', 'replay', 'duplicate', 'inconsistent', 'chunk-length', 'too-large',
  'authentication', 'short-frame',
] as const satisfies readonly InboundDrop[];
const FORMAT_ERRORS = [
  'short', 'magic', 'version', 'kind', 'flags', 'sequence', 'chunk-count', 'chunk-index', 'chunk-length',
] as const satisfies readonly FormatErrorReason[];

/** Drop reasons, named as the main thread's drops map names them. */
export const RECEIVER_DROPS: readonly string[] = [
  'unknown-connection', 'tap-write', 'receive-error', 'other', ...INBOUND_DROPS, ...FORMAT_ERRORS.map((r) => `malformed-${r}`),
];

const SLOTS = RECEIVER_STATS.length + RECEIVER_DROPS.length;
const COUNTERS_OFFSET = 8;
const DROP_INDEX = new Map(RECEIVER_DROPS.map((r, i) => [r, RECEIVER_STATS.length + i]));

export interface ReceiverCounterValues {
  readonly stats: Readonly<Record<ReceiverStat, number>>;
  readonly drops: ReadonlyMap<string, number>;
}

export class ReceiverControl {
  private readonly words: Int32Array;
  private readonly counters: Float64Array;

  private constructor(readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer, 0, 1);
    this.counters = new Float64Array(buffer, COUNTERS_OFFSET, SLOTS);
  }

  static create(): ReceiverControl {
    return new ReceiverControl(new SharedArrayBuffer(COUNTERS_OFFSET + 8 * SLOTS));
  }

  static attach(buffer: SharedArrayBuffer): ReceiverControl {
    return new ReceiverControl(buffer);
  }

  /** Main thread: a snapshot has been posted; returns its generation. */
  bumpGeneration(): number {
    return Atomics.add(this.words, 0, 1) + 1;
  }

  get generation(): number {
    return Atomics.load(this.words, 0);
  }

  add(stat: ReceiverStat, n = 1): void {
    const i = RECEIVER_STATS.indexOf(stat);
    this.counters[i] = (this.counters[i] ?? 0) + n;
  }

  value(stat: ReceiverStat): number {
    return this.counters[RECEIVER_STATS.indexOf(stat)] ?? 0;
  }

  /** Counts a drop; returns the reason's new total. A reason not listed is counted as 'other' (never thrown: input must not end the Worker). */
  drop(reason: string): number {
    const i = DROP_INDEX.get(reason) ?? (DROP_INDEX.get('other') as number);
    const n = (this.counters[i] ?? 0) + 1;
    this.counters[i] = n;
    return n;
  }

  read(): ReceiverCounterValues {
    const stats = Object.fromEntries(RECEIVER_STATS.map((s, i) => [s, this.counters[i] ?? 0])) as Record<ReceiverStat, number>;
    const drops = new Map<string, number>();
    RECEIVER_DROPS.forEach((d, i) => {
      const n = this.counters[RECEIVER_STATS.length + i] ?? 0;
      if (n > 0) drops.set(d, n);
    });
    return { stats, drops };
  }
}
