// The few C library calls the data path needs and Node does not offer, through koffi (a prebuilt
// FFI: no compiler at install time). Node's `fs` would do for open/read/write, but its reads go
// through the libuv thread pool (one round trip per frame, and reordering with several in flight:
// see DESIGN §6), and it has no ioctl, poll, eventfd, setsockopt or setns at all.
//
// Calls that can fail return -errno instead of throwing where they sit on the per-frame path
// (read, write, poll): an exception per dropped frame would cost more than the frame. Everything
// else throws a SysError whose message names the call, the errno and what usually causes it.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

// Declared with the C types of glibc on 64-bit Linux (long and size_t are 64-bit, pointers
// are `void *` so that Buffers and TypedArrays, SharedArrayBuffer-backed ones included, are
// passed in place: koffi hands C the address of the view's first byte, no copy).
const c = {
  open: libc.func('int open(const char *path, int flags)'),
  close: libc.func('int close(int fd)'),
  read: libc.func('long read(int fd, void *buf, unsigned long count)'),
  write: libc.func('long write(int fd, const void *buf, unsigned long count)'),
  // Variadic, as in C: each extra argument is passed as a (type, value) pair (ioctlValue's integer).
  ioctl: libc.func('int ioctl(int fd, unsigned long request, ...)'),
  // The same call declared with its one pointer argument, for every pointer ioctl: koffi parses a
  // variadic call's types on every call, and one runs per datagram (SIOCGSTAMPNS). Passing a
  // pointer through a fixed prototype is how the x86_64 and arm64 Linux ABIs pass it to a
  // variadic function too.
  ioctlPointer: libc.func('int ioctl(int fd, unsigned long request, void *arg)'),
  clockGettime: libc.func('int clock_gettime(int clock, void *ts)'),
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)'),
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  bind: libc.func('int bind(int fd, const void *addr, unsigned int addrlen)'),
  sendto: libc.func('long sendto(int fd, const void *buf, unsigned long len, int flags, const void *addr, unsigned int addrlen)'),
  recvfrom: libc.func('long recvfrom(int fd, void *buf, unsigned long len, int flags, void *addr, void *addrlen)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *value, unsigned int len)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, void *value, void *len)'),
  inetPton: libc.func('int inet_pton(int af, const char *src, void *dst)'),
  setns: libc.func('int setns(int fd, int nstype)'),
  ifNameToIndex: libc.func('unsigned int if_nametoindex(const char *name)'),
  strerror: libc.func('const char *strerror(int errnum)'),
};

// koffi types its functions as (...args: any[]) => any; these narrow the results to what C returns.
function int(value: unknown): number {
  return Number(value);
}

/** errno of the last failed call on this thread (koffi keeps it per call). */
export function lastErrno(): number {
  return koffi.errno();
}

// errno names by value, from koffi's table of the platform's codes. Where two names share a value
// (EAGAIN/EWOULDBLOCK, ENOTSUP/EOPNOTSUPP) the first listed, the usual one, is kept.
const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(koffi.os.errno)) if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);

/** "ENOENT" for 2; "errno 999" for a value without a name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** A failed system call: `code` is the errno's name, as Node's own errors have it. */
export class SysError extends Error {
  readonly code: string;
  constructor(
    /** What was being done, e.g. "cannot open /dev/net/tun". */
    readonly action: string,
    readonly errno: number,
    /** What usually causes this errno here; shown after the C library's text. */
    readonly hint?: string,
  ) {
    const text = String(c.strerror(errno) ?? '');
    super(`${action}: ${errnoName(errno)} (${text}${hint === undefined ? '' : `; ${hint}`})`);
    this.name = 'SysError';
    this.code = errnoName(errno);
  }
}

/** Throws a SysError for the current errno, with a hint chosen by errno if `hints` has one. */
export function throwErrno(action: string, hints: Readonly<Record<string, string>> = {}): never {
  const errno = lastErrno();
  throw new SysError(action, errno, hints[errnoName(errno)]);
}

// --- errno values the data path acts on (Linux, all architectures Node runs on) ---

/** Interrupted by a signal: try again. */
export const EINTR = 4;
/** Non-blocking fd with nothing to read, or no room to write. */
export const EAGAIN = 11;
/** No buffer space: a full queue, counted as a drop. */
export const ENOBUFS = 105;
/** A datagram larger than the socket (or, with DF, the path) allows. */
export const EMSGSIZE = 90;

// --- flags (Linux, x86_64 and arm64 share these values) ---

/** open(2): read and write. */
export const O_RDWR = 0o2;
/** open(2): reads return EAGAIN instead of sleeping. */
export const O_NONBLOCK = 0o4000;
/** open(2)/socket(2)/eventfd(2): not inherited by exec'd children (the CNI plugin, iptables...). */
export const O_CLOEXEC = 0o2000000;
/** eventfd(2) flags: the same bits as O_NONBLOCK and O_CLOEXEC. */
export const EFD_NONBLOCK = O_NONBLOCK;
export const EFD_CLOEXEC = O_CLOEXEC;
/** poll(2): data to read. */
export const POLLIN = 0x0001;
/** setns(2): the file descriptor is a network namespace. */
export const CLONE_NEWNET = 0x40000000;

// --- calls ---

export function open(path: string, flags: number): number {
  return int(c.open(path, flags));
}

/** Closes `fd`; throws a SysError on failure (EBADF: closed twice). */
export function closeFd(fd: number): void {
  if (int(c.close(fd)) < 0) throwErrno(`cannot close fd ${fd}`);
}

/** read(2) into `buf[0, length)`: the byte count, 0 at end of file, or -errno. */
export function readFd(fd: number, buf: Uint8Array, length: number = buf.byteLength): number {
  const n = int(c.read(fd, buf, length));
  return n < 0 ? -lastErrno() : n;
}

/** write(2) of `buf[0, length)`: the byte count written, or -errno. */
export function writeFd(fd: number, buf: Uint8Array, length: number = buf.byteLength): number {
  const n = int(c.write(fd, buf, length));
  return n < 0 ? -lastErrno() : n;
}

/** sendto(2) of `buf[0, length)` to `sockaddr` (see encodeSockaddr): the byte count sent, or -errno. */
export function sendToFd(fd: number, buf: Uint8Array, length: number, sockaddr: Uint8Array): number {
  const n = int(c.sendto(fd, buf, length, 0, sockaddr, sockaddr.byteLength));
  return n < 0 ? -lastErrno() : n;
}

/**
 * recvfrom(2) into `buf[0, length)`, the sender's address into `sockaddr` (28 bytes hold IPv4 and
 * IPv6): the byte count received, or -errno. `addrLength` is a reused 4-byte buffer (socklen_t).
 */
export function recvFromFd(fd: number, buf: Uint8Array, length: number, sockaddr: Uint8Array, addrLength: Buffer): number {
  addrLength.writeUInt32LE(sockaddr.byteLength, 0);
  const n = int(c.recvfrom(fd, buf, length, 0, sockaddr, addrLength));
  return n < 0 ? -lastErrno() : n;
}

/** ioctl(2) whose argument is a pointer to `arg` (read and written in place); throws on failure. */
export function ioctlPointer(fd: number, request: number, arg: Uint8Array, action: string, hints?: Readonly<Record<string, string>>): void {
  if (int(c.ioctlPointer(fd, request, arg)) < 0) throwErrno(action, hints);
}

/** ioctl(2) whose argument is a pointer to `arg`, on the per-frame path: 0 or more on success, or -errno. */
export function ioctlPointerErrno(fd: number, request: number, arg: Uint8Array | Uint32Array): number {
  const n = int(c.ioctlPointer(fd, request, arg));
  return n < 0 ? -lastErrno() : n;
}

/** clock_gettime(2) into `ts` (a struct timespec: 64-bit seconds, then 64-bit nanoseconds); throws on failure (a bad clock id). */
export function clockGettime(clock: number, ts: Uint32Array): void {
  if (int(c.clockGettime(clock, ts)) < 0) throwErrno(`cannot read clock ${clock}`);
}

/** ioctl(2) whose argument is an integer passed by value (as an unsigned long); throws on failure. */
export function ioctlValue(fd: number, request: number, value: number, action: string, hints?: Readonly<Record<string, string>>): void {
  if (int(c.ioctl(fd, request, 'unsigned long', value)) < 0) throwErrno(action, hints);
}

/** A non-blocking, close-on-exec eventfd: a counter another thread can poll() for. */
export function createEventFd(): number {
  const fd = int(c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (fd < 0) throwErrno('cannot create an eventfd');
  return fd;
}

const EVENTFD_ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

/** Adds 1 to an eventfd's counter, making it readable (waking whoever polls it). */
export function signalEventFd(fd: number): void {
  // EAGAIN would mean the counter is at its maximum: readable already, which is all we want.
  const n = writeFd(fd, EVENTFD_ONE);
  if (n < 0 && n !== -EAGAIN) throw new SysError(`cannot signal eventfd ${fd}`, -n);
}

/**
 * poll(2) for readability on a fixed set of fds, with the `struct pollfd` array allocated once
 * (8 bytes each: int fd, short events, short revents) so that waiting allocates nothing.
 */
export class PollSet {
  private readonly fds: Buffer;
  constructor(readonly descriptors: readonly number[]) {
    this.fds = Buffer.alloc(8 * descriptors.length);
    descriptors.forEach((fd, i) => {
      this.fds.writeInt32LE(fd, 8 * i);
      this.fds.writeInt16LE(POLLIN, 8 * i + 4);
    });
  }

  /** Waits up to `timeoutMs` (-1: for ever); the number of fds with events, 0 on timeout, or -errno. */
  wait(timeoutMs: number): number {
    const n = int(c.poll(this.fds, this.descriptors.length, timeoutMs));
    return n < 0 ? -lastErrno() : n;
  }

  /** The events the last wait() reported for the i-th fd (POLLIN, or POLLERR/POLLHUP/POLLNVAL). */
  revents(i: number): number {
    return this.fds.readInt16LE(8 * i + 6);
  }
}

export function socket(domain: number, type: number, protocol: number): number {
  return int(c.socket(domain, type, protocol));
}

/** The index of the interface `name` in this thread's network namespace; 0 when there is none. */
export function ifNameToIndex(name: string): number {
  return int(c.ifNameToIndex(name));
}

export function bind(fd: number, sockaddr: Uint8Array): number {
  return int(c.bind(fd, sockaddr, sockaddr.byteLength));
}

/** setsockopt(2) with an int value; throws a SysError on failure. */
export function setSockOptInt(fd: number, level: number, name: number, value: number, action: string, hints?: Readonly<Record<string, string>>): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  if (int(c.setsockopt(fd, level, name, v, 4)) < 0) throwErrno(action, hints);
}

/** getsockopt(2) of an int option; throws a SysError on failure. */
export function getSockOptInt(fd: number, level: number, name: number, action: string): number {
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4);
  if (int(c.getsockopt(fd, level, name, v, len)) < 0) throwErrno(action);
  return v.readInt32LE();
}

/** inet_pton(3) into `dst` (4 bytes for AF_INET, 16 for AF_INET6); false if `text` is not an address. */
export function inetPton(family: number, text: string, dst: Uint8Array): boolean {
  return int(c.inetPton(family, text, dst)) === 1;
}

/** setns(2) for the calling thread only; -errno on failure. */
export function setns(fd: number, nstype: number): number {
  return int(c.setns(fd, nstype)) < 0 ? -lastErrno() : 0;
}
