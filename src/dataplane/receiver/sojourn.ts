// How long the datagram received last waited in the sleeve socket's queue, as CoDel needs it: read
// from the kernel once per datagram, and only when it can matter.
//
// A datagram that came into an empty queue (the receive loop saw the queue empty after the
// datagram before it) waited only while the Worker woke up or finished its turn: it counts as no
// queue, without asking the kernel. That is every datagram of an idle link, and each datagram
// after a sleep is when the two calls behind a reading cost most (5-10 µs each on a thread just
// woken; under 1 µs warm). A standing queue is never seen empty, so each of its datagrams is read.
//
// Pure: the kernel reading is a function the caller passes in.

export class Sojourn {
  /** The queue was seen empty since the last datagram. */
  private emptySeen = true;
  /** The datagram received last came in after that (into an empty queue). */
  private fresh = false;
  private datagrams = 0;
  /** The datagram `ms` belongs to (read at most once per datagram, when first asked). */
  private readOf = -1;
  private ms = NaN;

  constructor(
    /** Milliseconds the datagram received last waited, from the kernel; NaN when unknown. */
    private readonly read: () => number,
  ) {}

  /** The receive loop found the queue empty (recvfrom() said EAGAIN). */
  queueEmpty(): void {
    this.emptySeen = true;
  }

  /** A datagram was taken off the queue. */
  received(): void {
    this.datagrams++;
    this.fresh = this.emptySeen;
    this.emptySeen = false;
  }

  /** Milliseconds the datagram received last waited: 0 when it came into an empty queue. */
  lastMs(): number {
    if (this.readOf !== this.datagrams) {
      this.readOf = this.datagrams;
      this.ms = this.fresh ? 0 : this.read();
    }
    return this.ms;
  }
}
