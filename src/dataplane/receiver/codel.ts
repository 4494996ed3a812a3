// CoDel (RFC 8289) for the sleeve's receive queue: where the sleeve's queue builds under load.
//
// Why here. When the receiving node's Worker is the slowest stage of the sleeve (it is, under a
// bulk TCP flow: it reassembles and copies every byte), the standing queue builds in the sleeve
// socket's receive buffer, a FIFO the kernel fills up to SO_RCVBUF (the daemon asks 4 MB, which
// the kernel doubles: about 20 ms at 3.5 Gbit/s, every other flow from that peer waiting behind
// it). The TAP's qdisc never holds a queue (tun's transmit never stops the queue: a full ring
// drops), so fq_codel there cannot help, and the pods' TCP Small Queues stop at the veth (the skb is
// orphaned crossing into the node's namespace). So the Worker runs CoDel where it takes datagrams
// off that queue: the kernel stamps each datagram on arrival, the Worker reads how long it waited
// (its sojourn), and CoDel decides, frame by frame, whether a frame gets a congestion signal: a
// CE mark when its transport asked for ECN, a drop otherwise (see ecn.ts). Measured under one
// iperf3 flow on two cores, the queue rose and fell within the interval (0.4-1 ms on average,
// spikes of 4-10 ms) and CoDel rarely acted; it is there for the queue that stands, e.g. several
// peers sending to one node at once.
//
// Pure: time and sojourn come in as arguments (milliseconds), so it is tested without a socket.

/** The queue delay CoDel keeps the standing queue under. */
export const CODEL_TARGET_MS = 1;
/**
 * How long the delay must stay above target before the first signal, and the base of the spacing
 * between signals (interval / sqrt(count)). It should cover the flows' round trips: pod to pod
 * within a cluster is well under a millisecond, so 20 ms lets TCP react before the next signal.
 */
export const CODEL_INTERVAL_MS = 20;

export interface CodelParameters {
  readonly targetMs: number;
  readonly intervalMs: number;
}

export class Codel {
  /** When the sojourn time first stayed above target (+ interval): 0 while below target. */
  private firstAboveTime = 0;
  /** In the dropping state: signals are due every interval / sqrt(count). */
  private dropping = false;
  private dropNext = 0;
  private count = 0;
  private lastCount = 0;

  constructor(private readonly parameters: CodelParameters = { targetMs: CODEL_TARGET_MS, intervalMs: CODEL_INTERVAL_MS }) {}

  /**
   * One datagram taken off the queue at `nowMs` (a monotonic clock) after waiting `sojournMs` in
   * it: true if it should carry a congestion signal. A sojourn that is not a number (the kernel
   * gave no timestamp) never signals and leaves the state alone.
   */
  signal(sojournMs: number, nowMs: number): boolean {
    if (Number.isNaN(sojournMs)) return false;
    const okToSignal = this.aboveTargetLongEnough(sojournMs, nowMs);
    if (this.dropping) {
      if (!okToSignal) {
        this.dropping = false;
        return false;
      }
      if (nowMs < this.dropNext) return false;
      this.count++;
      this.dropNext = this.controlLaw(this.dropNext);
      return true;
    }
    if (!okToSignal) return false;
    this.dropping = true;
    // Coming back into the dropping state soon after leaving it: resume near the old rate rather
    // than from one signal per interval (RFC 8289 §5.5).
    const delta = this.count - this.lastCount;
    this.count = delta > 1 && nowMs - this.dropNext < 16 * this.parameters.intervalMs ? delta : 1;
    this.dropNext = this.controlLaw(nowMs);
    this.lastCount = this.count;
    return true;
  }

  /** Whether a signal is being given at the control law's rate (for tests and status). */
  get signalling(): boolean {
    return this.dropping;
  }

  private aboveTargetLongEnough(sojournMs: number, nowMs: number): boolean {
    if (sojournMs < this.parameters.targetMs) {
      this.firstAboveTime = 0;
      return false;
    }
    if (this.firstAboveTime === 0) {
      this.firstAboveTime = nowMs + this.parameters.intervalMs;
      return false;
    }
    return nowMs >= this.firstAboveTime;
  }

  private controlLaw(t: number): number {
    return t + this.parameters.intervalMs / Math.sqrt(this.count);
  }
}
