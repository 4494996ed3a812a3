// How long the datagram a UDP socket handed up last waited in the socket's receive queue: the
// kernel stamps each datagram when it arrives (CLOCK_REALTIME), SIOCGSTAMPNS reads the stamp of the
// one recvfrom() returned last, and the difference to the clock now is the queue delay that
// CoDel needs (receiver/codel.ts). Two calls per datagram, about 1.2 µs from a Worker.
//
// The first SIOCGSTAMPNS turns stamping on for the socket (and fails with ENOENT: nothing stamped
// yet); from then on every datagram is stamped. Until a datagram with a stamp has been received,
// and whenever either call fails, the delay is NaN: unknown, which CoDel treats as no signal.
// The kernel switches its stamping on machine-wide through a deferred work, so the datagrams of
// the first moments may arrive unstamped: SIOCGSTAMPNS then answers with the time of the call,
// a delay of about 0, which CoDel reads as no queue. Harmless: the daemon starts long before load.
import { clockGettime, ioctlPointerErrno } from './libc.js';

/** ioctl: the receive time of the last datagram, as a struct timespec (include/uapi/asm-generic/sockios.h). */
const SIOCGSTAMPNS = 0x8907;
const CLOCK_REALTIME = 0;

/** struct timespec on 64-bit Linux, read as 32-bit words (both supported ABIs are little-endian). */
function seconds(ts: Uint32Array): number {
  return ts[0]! + ts[1]! * 2 ** 32;
}

export class ReceiveDelay {
  private readonly stamp = new Uint32Array(4);
  private readonly now = new Uint32Array(4);

  constructor(private readonly fd: number) {
    ioctlPointerErrno(fd, SIOCGSTAMPNS, this.stamp); // turns stamping on; ENOENT expected
  }

  /** Milliseconds the last datagram received waited in the queue; NaN if unknown. */
  lastMs(): number {
    if (ioctlPointerErrno(this.fd, SIOCGSTAMPNS, this.stamp) < 0) return NaN;
    clockGettime(CLOCK_REALTIME, this.now);
    return (seconds(this.now) - seconds(this.stamp)) * 1e3 + (this.now[2]! - this.stamp[2]!) / 1e6;
  }
}
