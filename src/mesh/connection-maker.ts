// Which peers to dial, and when: the pure core of the connection maker (DESIGN §4).
//
// Targets are addresses (host:port). Direct targets come from the command line and `weave
// connect`; discovered ones are where other peers say they reach peers we are not connected to.
// The shell tells the core what happened (a dial failed, a connection came up or ended) and asks
// it what to dial now; the core answers with addresses and the time it next wants to be asked.
import type { PeerName } from '../net/peer-name.js';

/** States shown by `weave status connections` for a target with no live connection. */
export type TargetState = 'connecting' | 'retrying' | 'failed' | 'waiting';

export interface TargetStatus {
  readonly address: string;
  readonly state: TargetState;
  readonly direct: boolean;
  readonly lastError?: string;
  /** When the next attempt is due (ms, same clock as `now`); undefined: never. */
  readonly tryAfter?: number;
}

export interface MakerTimings {
  readonly initialInterval: number; // ms before the first retry
  readonly maxInterval: number;     // ms, the back-off ceiling
  readonly growth: number;          // interval multiplier per failure
  readonly resetAfter: number;      // ms a connection must live for the back-off to start over
  /**
   * ms over which first dials to newly discovered peers are spread. Both ends of a missing link
   * learn of it from the same gossip at about the same moment; dialling at once, they would
   * make two connections and close one, for every pair of a forming mesh.
   */
  readonly discoverySpread: number;
  /**
   * ms the higher-named end of a discovered link waits before dialling: normally the lower-named
   * end dials first and the link is made once; if that end cannot reach us, we dial after this.
   */
  readonly yieldToLowerName: number;
}

export const DEFAULT_TIMINGS: MakerTimings = {
  initialInterval: 2_000,
  maxInterval: 6 * 60_000,
  growth: 1.5,
  resetAfter: 60_000,
  discoverySpread: 1_000,
  yieldToLowerName: 5_000,
};

interface Target {
  direct: boolean;
  discovered: boolean;
  attempting: boolean;
  attempts: number;     // failed attempts since the last success
  interval: number;
  tryAfter: number;     // Infinity: never again (connect-to-self, name collision)
  lastError?: string;
  peer?: PeerName;      // who answered at this address last time
  connectedSince?: number;
}

export interface PlanInput {
  readonly now: number;
  /** Peers we have a live connection with. */
  readonly connectedPeers: ReadonlySet<PeerName>;
  /** Addresses where other peers reach peers we are not connected to (when discovery is on). */
  readonly discovered: ReadonlyMap<string, PeerName>;
  readonly connectionCount: number;
  readonly connLimit: number; // 0: no limit
}

export interface Plan {
  readonly dial: readonly string[];
  /** When to call plan() again at the latest (ms); undefined: only on the next event. */
  readonly wakeAt?: number;
}

export class ConnectionMakerCore {
  private readonly targets = new Map<string, Target>();

  constructor(
    private readonly random: () => number,
    private readonly timings: MakerTimings = DEFAULT_TIMINGS,
    /** Our own name: decides which end of a discovered link dials first. */
    private readonly self?: PeerName,
  ) {}

  /** Adds direct targets (replacing all direct targets when `replace`). */
  connect(addresses: readonly string[], replace = false): void {
    if (replace) {
      for (const [address, t] of this.targets) {
        if (t.direct && !addresses.includes(address)) this.dropDirect(address, t);
      }
    }
    for (const address of addresses) {
      const t = this.targets.get(address);
      if (t) {
        t.direct = true;
        if (t.tryAfter === Infinity && t.lastError === undefined) t.tryAfter = 0;
      } else {
        this.targets.set(address, this.newTarget(true, false));
      }
    }
  }

  /** Removes direct targets; a live connection to them stays up. */
  forget(addresses: readonly string[]): void {
    for (const address of addresses) {
      const t = this.targets.get(address);
      if (t?.direct) this.dropDirect(address, t);
    }
  }

  directTargets(): string[] {
    return [...this.targets].filter(([, t]) => t.direct).map(([a]) => a).sort();
  }

  /**
   * A dial to `address` did not lead to a connection. `peer` is who answered there, when it got
   * as far as Hello: while we are connected to that peer anyway (the dial lost a duplicate
   * tie-break, say), the target is not dialled again.
   */
  attemptFailed(address: string, error: string, now: number, retry = true, peer?: PeerName): void {
    const t = this.targets.get(address);
    if (!t) return;
    t.attempting = false;
    t.lastError = error;
    if (peer !== undefined) t.peer = peer;
    if (!retry) {
      t.tryAfter = Infinity;
      return;
    }
    this.backOff(t, now);
  }

  /** A dial to `address` led to a live connection with `peer`. */
  connected(address: string, peer: PeerName, now: number): void {
    const t = this.targets.get(address);
    if (!t) return;
    t.attempting = false;
    t.peer = peer;
    t.connectedSince = now;
    delete t.lastError;
  }

  /** The connection made to `address` ended (with an error, or not). */
  disconnected(address: string, now: number, error?: string): void {
    const t = this.targets.get(address);
    if (!t) return;
    const lived = t.connectedSince === undefined ? 0 : now - t.connectedSince;
    delete t.connectedSince;
    t.attempting = false;
    if (error !== undefined) t.lastError = error;
    if (lived >= this.timings.resetAfter) {
      // A long-lived connection that broke is worth retrying at once.
      t.attempts = 0;
      t.interval = this.timings.initialInterval;
      t.tryAfter = now;
    } else {
      this.backOff(t, now);
    }
  }

  plan(input: PlanInput): Plan {
    // Discovered targets follow the topology: add new ones, drop stale ones.
    for (const [address, peer] of input.discovered) {
      const t = this.targets.get(address);
      if (t) {
        t.discovered = true;
        t.peer ??= peer;
      } else {
        const n = this.newTarget(false, true);
        n.peer = peer;
        const yieldFirst = this.self !== undefined && this.self > peer ? this.timings.yieldToLowerName : 0;
        n.tryAfter = input.now + yieldFirst + this.random() * this.timings.discoverySpread;
        this.targets.set(address, n);
      }
    }
    for (const [address, t] of this.targets) {
      if (!t.direct && !input.discovered.has(address) && !t.attempting) this.targets.delete(address);
      else if (!input.discovered.has(address)) t.discovered = false;
    }

    const dial: string[] = [];
    let wakeAt: number | undefined;
    let budget = input.connLimit === 0 ? Infinity : input.connLimit - input.connectionCount - this.inFlight();
    for (const [address, t] of [...this.targets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (t.attempting || t.connectedSince !== undefined) continue;
      if (t.peer !== undefined && input.connectedPeers.has(t.peer)) continue;
      if (t.tryAfter === Infinity) continue;
      if (t.tryAfter > input.now) {
        wakeAt = wakeAt === undefined ? t.tryAfter : Math.min(wakeAt, t.tryAfter);
        continue;
      }
      if (budget <= 0) {
        t.lastError = `Connection limit reached (${input.connLimit})`;
        continue;
      }
      budget--;
      t.attempting = true;
      dial.push(address);
    }
    return wakeAt === undefined ? { dial } : { dial, wakeAt };
  }

  /** Targets without a live connection, for status. */
  status(connectedPeers: ReadonlySet<PeerName>): TargetStatus[] {
    const out: TargetStatus[] = [];
    for (const [address, t] of [...this.targets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (t.connectedSince !== undefined) continue;
      if (t.peer !== undefined && connectedPeers.has(t.peer)) continue;
      const state: TargetState = t.attempting
        ? t.attempts === 0 ? 'connecting' : 'retrying'
        : t.lastError !== undefined ? 'failed' : 'waiting';
      out.push({
        address,
        state,
        direct: t.direct,
        ...(t.lastError !== undefined ? { lastError: t.lastError } : {}),
        ...(t.tryAfter !== Infinity ? { tryAfter: t.tryAfter } : {}),
      });
    }
    return out;
  }

  private inFlight(): number {
    let n = 0;
    for (const t of this.targets.values()) if (t.attempting) n++;
    return n;
  }

  private backOff(t: Target, now: number): void {
    t.attempts++;
    // Jitter in [i/2, 3i/2) so that restarted peers do not all dial at once.
    t.tryAfter = now + t.interval * (0.5 + this.random());
    t.interval = Math.min(this.timings.maxInterval, t.interval * this.timings.growth);
  }

  private newTarget(direct: boolean, discovered: boolean): Target {
    return { direct, discovered, attempting: false, attempts: 0, interval: this.timings.initialInterval, tryAfter: 0 };
  }

  private dropDirect(address: string, t: Target): void {
    t.direct = false;
    if (!t.discovered && !t.attempting) this.targets.delete(address);
  }
}

