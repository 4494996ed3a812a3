// Whether the fast path to one peer works, decided from its heartbeats: pure and synchronous
// (the shell calls it with the time and carries out what it returns).
//
//   probing   --first full-size answer-->                         healthy
//   probing   --no full-size answer for timeoutMs-->              unhealthy
//   healthy   --no full-size answer for timeoutMs-->              unhealthy
//   unhealthy --RECOVER_STREAK answers to consecutive heartbeats-->  healthy
//
// Healthy means "use fastdp", anything else "use sleeve". A first answer is enough at the start
// (the path has never failed); after a failure a few answers in a row are wanted, so that a path
// that drops most packets does not flap between the two. Unlike Weave before 2.5 (pain 14), an
// unhealthy path is never given up: heartbeats go on, and the path is used again when it answers.
// The reason of each change says which heartbeats went unanswered: none answered points at a
// blocked UDP 6784, only the small ones answered at an MTU that does not fit the path (pain 13).

export type HealthState = 'probing' | 'healthy' | 'unhealthy';

export interface HealthOptions {
  /** Unanswered this long, the path is unhealthy. */
  readonly timeoutMs: number;
  /** Between heartbeats while healthy. */
  readonly intervalMs: number;
  /** Between heartbeats while probing or unhealthy (quicker, to notice recovery soon). */
  readonly fastIntervalMs: number;
  /** Overlay MTU, for the reasons' wording. */
  readonly mtu: number;
  /** UDP port of the path, for the reasons' wording. */
  readonly port: number;
}

export interface HealthChange {
  readonly from: HealthState;
  readonly to: HealthState;
  readonly reason: string;
}

/** Answers to consecutive heartbeats wanted to go from unhealthy back to healthy. */
export const RECOVER_STREAK = 3;

export class FastdpHealth {
  #state: HealthState = 'probing';
  #since: number;
  #lastFull: number | undefined;
  #lastSmall: number | undefined;
  #nextSeq = 1;
  #lastAnsweredSeq = 0;
  #streak = 0;

  constructor(
    private readonly options: HealthOptions,
    now: number,
  ) {
    this.#since = now;
  }

  get state(): HealthState {
    return this.#state;
  }

  get healthy(): boolean {
    return this.#state === 'healthy';
  }

  /** Numbers the next heartbeat (its full and small frames carry the same number). */
  nextSeq(): number {
    const seq = this.#nextSeq;
    this.#nextSeq = (this.#nextSeq + 1) >>> 0 || 1;
    return seq;
  }

  /** How long until the next heartbeat. */
  get delayMs(): number {
    return this.#state === 'healthy' ? this.options.intervalMs : this.options.fastIntervalMs;
  }

  /** An answer arrived to heartbeat `seq`. */
  answered(seq: number, full: boolean, now: number): HealthChange | undefined {
    if (!full) {
      this.#lastSmall = now;
      return undefined;
    }
    this.#lastFull = now;
    this.#streak = seq === this.#lastAnsweredSeq + 1 ? this.#streak + 1 : 1;
    this.#lastAnsweredSeq = seq;
    if (this.#state === 'probing') return this.#to('healthy', 'heartbeat answered through VXLAN', now);
    if (this.#state === 'unhealthy' && this.#streak >= RECOVER_STREAK) {
      return this.#to('healthy', `${this.#streak} heartbeats in a row answered through VXLAN again`, now);
    }
    return undefined;
  }

  /** Looks at the clock: has the path gone quiet for too long? */
  check(now: number): HealthChange | undefined {
    if (this.#state === 'unhealthy') return undefined;
    const last = this.#lastFull ?? this.#since;
    if (now - last < this.options.timeoutMs) return undefined;
    this.#streak = 0;
    return this.#to('unhealthy', this.#silenceReason(now), now);
  }

  #silenceReason(now: number): string {
    const o = this.options;
    const s = o.timeoutMs / 1000;
    const smallAnswered = this.#lastSmall !== undefined && now - this.#lastSmall < o.timeoutMs;
    return smallAnswered
      ? `full-size heartbeats (mtu ${o.mtu}) unanswered for ${s} s while small ones are answered: the path MTU is below ${o.mtu + 50} (lower --mtu, or raise the underlay's)`
      : `no heartbeat answered through VXLAN for ${s} s (is UDP ${o.port} blocked between the nodes?)`;
  }

  #to(state: HealthState, reason: string, now: number): HealthChange {
    const from = this.#state;
    this.#state = state;
    this.#since = now;
    return { from, to: state, reason };
  }
}
