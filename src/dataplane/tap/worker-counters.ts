// Counters a TAP reader Worker keeps for the main thread, in shared memory the main thread reads
// when asked for its counters (and adds to its own: the metrics do not tell which thread did the
// work). The same SharedArrayBuffer carries a snapshot generation: the main thread bumps it after
// posting a new snapshot on the Worker's message port, the Worker looks at it once per datagram or
// frame and drains the port only when it moved. The send path and the receive path each have one
// (sender/counters.ts, receiver/counters.ts), with their own stats and drop reasons.
//
// Layout: i32 [0] generation of the latest snapshot posted; f64 from byte 8, one per stat, then
// one per drop reason. Only the Worker writes the counters (plain stores of aligned doubles).

import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

const COUNTERS_OFFSET = 8;

/**
 * Worker side: the newest message waiting on `port`, older ones behind it skipped (each snapshot
 * is whole), or undefined when none has arrived yet (the generation is bumped after posting, so
 * it normally has: if not, the caller looks again next time).
 */
export function newestMessage<T>(port: MessagePort): T | undefined {
  let latest: T | undefined;
  for (;;) {
    const m = receiveMessageOnPort(port) as { message: T } | undefined;
    if (m === undefined) return latest;
    latest = m.message;
  }
}

export interface WorkerCounterValues<S extends string, D extends string> {
  readonly stats: Readonly<Record<S, number>>;
  /** The reasons with at least one drop. */
  readonly drops: ReadonlyMap<D, number>;
}

export interface WorkerCounterKind<S extends string, D extends string> {
  create(): WorkerCounters<S, D>;
  attach(buffer: SharedArrayBuffer): WorkerCounters<S, D>;
}

export class WorkerCounters<S extends string, D extends string> {
  private readonly words: Int32Array;
  private readonly counters: Float64Array;
  private readonly dropIndex: ReadonlyMap<string, number>;

  /** `buffer` as kind() sized it, made by one thread and attached by the other. */
  private constructor(private readonly statNames: readonly S[], private readonly dropNames: readonly D[], readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer, 0, 1);
    this.counters = new Float64Array(buffer, COUNTERS_OFFSET, statNames.length + dropNames.length);
    this.dropIndex = new Map(dropNames.map((d, i) => [d, statNames.length + i]));
  }

  /**
   * The counters of one path (the send path's, the receive path's): `create` on the thread that
   * makes the buffer, `attach` on the thread it is handed to.
   */
  static kind<S extends string, D extends string>(stats: readonly S[], drops: readonly D[]): WorkerCounterKind<S, D> {
    return {
      create: () => new WorkerCounters(stats, drops, new SharedArrayBuffer(COUNTERS_OFFSET + 8 * (stats.length + drops.length))),
      attach: (buffer) => new WorkerCounters(stats, drops, buffer),
    };
  }

  /** Main thread: a snapshot has been posted; returns its generation. */
  bumpGeneration(): number {
    return Atomics.add(this.words, 0, 1) + 1;
  }

  get generation(): number {
    return Atomics.load(this.words, 0);
  }

  add(stat: S, n = 1): void {
    this.addAt(this.statNames.indexOf(stat), n);
  }

  /** A stat by its index in the stats list, without a lookup (the per-frame counters). */
  addAt(index: number, n: number): void {
    this.counters[index] = (this.counters[index] ?? 0) + n;
  }

  value(stat: S): number {
    return this.counters[this.statNames.indexOf(stat)] ?? 0;
  }

  /**
   * Counts a drop; returns the reason's new total. A reason not listed is counted as 'other'
   * when that is a reason (never thrown: input from the network must not end the Worker).
   */
  drop(reason: D | string): number {
    const i = this.dropIndex.get(reason) ?? this.dropIndex.get('other');
    if (i === undefined) return 0;
    const n = (this.counters[i] ?? 0) + 1;
    this.counters[i] = n;
    return n;
  }

  read(): WorkerCounterValues<S, D> {
    const stats = Object.fromEntries(this.statNames.map((s, i) => [s, this.counters[i] ?? 0])) as Record<S, number>;
    const drops = new Map<D, number>();
    this.dropNames.forEach((d, i) => {
      const n = this.counters[this.statNames.length + i] ?? 0;
      if (n > 0) drops.set(d, n);
    });
    return { stats, drops };
  }
}
