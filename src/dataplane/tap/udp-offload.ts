// UDP segmentation and receive coalescing for the sleeve (DESIGN §6): with UDP_SEGMENT set to the
// chunk size, one send() of up to 64 KB leaves as MTU-sized datagrams (one syscall instead of ~45);
// with UDP_GRO on the receiving socket, the kernel hands such a train up as one buffer again.
// Node's dgram has neither option, so they are set with setsockopt(2) through koffi.
//
// Getting at the socket's fd: `socket._handle.fd` works but is a private API (runtime-deprecated,
// DEP0112). Instead the socket is made natively here (socket + setsockopt + bind) and handed to
// dgram with `bind({ fd })`; libuv sees it is bound already, and we keep the fd number for later
// setsockopt calls. It must stay unconnected at the OS level if sends name their destination
// (a connected socket fails those with EISCONN).
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { bind, closeFd, getSockOptInt, inetPton, setSockOptInt, socket, throwErrno, O_CLOEXEC, O_NONBLOCK } from './libc.js';

/** Protocol level of UDP options (IPPROTO_UDP). */
export const SOL_UDP = 17;
/** int: segment size for sends (0: off). Each send of N bytes leaves as ceil(N / size) datagrams. Linux 4.18+. */
export const UDP_SEGMENT = 103;
/** int: coalesce received trains of equal-sized datagrams into one read (bool). Linux 5.0+. */
export const UDP_GRO = 104;
/** The kernel's limit on segments per UDP_SEGMENT send (UDP_MAX_SEGMENTS). */
export const UDP_MAX_SEGMENTS = 128;

const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_RCVBUF = 8;
const SO_SNDBUF = 7;
const SO_REUSEPORT = 15;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const IPPROTO_UDP = 17;
const SOCKADDR_IN_SIZE = 16;
const SOCKADDR_IN6_SIZE = 28;

/** setsockopt(fd, SOL_UDP, UDP_SEGMENT, size): sends of more than `size` bytes are cut into `size`-byte datagrams; 0 turns it off. */
// <netinet/in.h>, <linux/in.h>, <linux/in6.h>
const IPPROTO_IP = 0;
const IP_MTU_DISCOVER = 10;
const IPPROTO_IPV6 = 41;
const IPV6_MTU_DISCOVER = 23;
/** IP_PMTUDISC_DO and IPV6_PMTUDISC_DO: always DF, never fragment locally. */
const PMTUDISC_DO = 2;

export function setUdpSegment(fd: number, size: number): void {
  if (!Number.isInteger(size) || size < 0 || size > 65_507) throw new RangeError(`UDP segment size ${size}: want 0-65507`);
  setSockOptInt(fd, SOL_UDP, UDP_SEGMENT, size, `cannot set UDP_SEGMENT ${size} on fd ${fd}`, {
    ENOPROTOOPT: 'this kernel has no UDP GSO (Linux 4.18+): send one datagram per chunk instead',
  });
}

/** setsockopt(fd, SOL_UDP, UDP_GRO, on). */
export function setUdpGro(fd: number, on: boolean): void {
  setSockOptInt(fd, SOL_UDP, UDP_GRO, on ? 1 : 0, `cannot ${on ? 'enable' : 'disable'} UDP_GRO on fd ${fd}`, {
    ENOPROTOOPT: 'this kernel has no UDP GRO (Linux 5.0+): receive one datagram per chunk instead',
  });
}

export function getUdpSegment(fd: number): number {
  return getSockOptInt(fd, SOL_UDP, UDP_SEGMENT, `cannot read UDP_SEGMENT of fd ${fd}`);
}

export function getUdpGro(fd: number): boolean {
  return getSockOptInt(fd, SOL_UDP, UDP_GRO, `cannot read UDP_GRO of fd ${fd}`) !== 0;
}

/** struct sockaddr_in / sockaddr_in6 for `address` (a literal IPv4 or IPv6 address) and `port`. */
export function encodeSockaddr(address: string, port: number): Uint8Array {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RangeError(`invalid UDP port ${port}`);
  const family = isIP(address);
  if (family === 4) {
    const sa = Buffer.alloc(SOCKADDR_IN_SIZE);
    sa.writeUInt16LE(AF_INET, 0); // sa_family in host order (little-endian hosts)
    sa.writeUInt16BE(port, 2); // sin_port in network order
    if (!inetPton(AF_INET, address, sa.subarray(4, 8))) throw new RangeError(`invalid IPv4 address "${address}"`);
    return sa;
  }
  if (family === 6) {
    const sa = Buffer.alloc(SOCKADDR_IN6_SIZE); // flowinfo and scope id 0
    sa.writeUInt16LE(AF_INET6, 0);
    sa.writeUInt16BE(port, 2);
    if (!inetPton(AF_INET6, address, sa.subarray(8, 24))) throw new RangeError(`invalid IPv6 address "${address}"`);
    return sa;
  }
  throw new RangeError(`not an IP address: "${address}" (a literal address is needed, never a name)`);
}

/** "address:port" of a struct sockaddr_in / sockaddr_in6 (as recvfrom fills it), for log lines. */
export function formatSockaddr(sa: Uint8Array): string {
  const view = Buffer.from(sa.buffer, sa.byteOffset, sa.byteLength);
  if (view.byteLength < 4) return '?';
  const family = view.readUInt16LE(0);
  const port = view.readUInt16BE(2);
  if (family === AF_INET && view.byteLength >= SOCKADDR_IN_SIZE) return `${[...view.subarray(4, 8)].join('.')}:${port}`;
  if (family === AF_INET6 && view.byteLength >= SOCKADDR_IN6_SIZE) {
    const groups: string[] = [];
    for (let i = 8; i < 24; i += 2) groups.push(view.readUInt16BE(i).toString(16));
    return `[${groups.join(':')}]:${port}`;
  }
  return '?';
}

export interface OffloadUdpSocketOptions {
  /** Local address to bind, a literal ("0.0.0.0", "::", "172.31.0.1"). */
  readonly address: string;
  /** Local port; 0 for any (read it back with socket.address()). */
  readonly port: number;
  /** UDP_SEGMENT size for every send, if given (0 or absent: off). */
  readonly segmentSize?: number;
  /** UDP_GRO on receive. */
  readonly gro?: boolean;
  /**
   * Set DF and never fragment (IP_MTU_DISCOVER = IP_PMTUDISC_DO): a datagram larger than the
   * path's MTU fails instead of being cut, which is what lets full-size heartbeats verify the MTU.
   */
  readonly dontFragment?: boolean;
  readonly reuseAddr?: boolean;
  /** SO_REUSEPORT: for a second socket on the same port (e.g. one per Worker). */
  readonly reusePort?: boolean;
  /** SO_RCVBUF / SO_SNDBUF in bytes (the kernel doubles them); moderate (2-4 MB) keeps latency down under load. */
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
}

export interface OffloadUdpSocket {
  readonly socket: dgram.Socket;
  /** The socket's fd, for setUdpSegment()/setUdpGro() later; valid until socket.close(). */
  readonly fd: number;
}

/**
 * The same socket as createOffloadUdpSocket, without dgram: the caller owns the fd (closeFd) and
 * does its own I/O on it (the data path receives in a Worker with recvfrom and sends with sendto:
 * a dgram.Socket would read the same fd on the main thread, racing the Worker).
 */
export function createOffloadUdpFd(options: OffloadUdpSocketOptions): number {
  const sockaddr = encodeSockaddr(options.address, options.port);
  const v6 = sockaddr.byteLength === SOCKADDR_IN6_SIZE;
  const fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | O_NONBLOCK | O_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) throwErrno('cannot create a UDP socket');
  try {
    const where = `${options.address}:${options.port}`;
    if (options.reuseAddr) setSockOptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1, `cannot set SO_REUSEADDR on UDP ${where}`);
    if (options.reusePort) setSockOptInt(fd, SOL_SOCKET, SO_REUSEPORT, 1, `cannot set SO_REUSEPORT on UDP ${where}`);
    if (options.recvBufferSize !== undefined) setSockOptInt(fd, SOL_SOCKET, SO_RCVBUF, options.recvBufferSize, `cannot set SO_RCVBUF on UDP ${where}`);
    if (options.sendBufferSize !== undefined) setSockOptInt(fd, SOL_SOCKET, SO_SNDBUF, options.sendBufferSize, `cannot set SO_SNDBUF on UDP ${where}`);
    if (options.segmentSize) setUdpSegment(fd, options.segmentSize);
    if (options.gro) setUdpGro(fd, true);
    if (options.dontFragment) {
      if (v6) setSockOptInt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, PMTUDISC_DO, `cannot set IPV6_MTU_DISCOVER on UDP ${where}`);
      else setSockOptInt(fd, IPPROTO_IP, IP_MTU_DISCOVER, PMTUDISC_DO, `cannot set IP_MTU_DISCOVER on UDP ${where}`);
    }
    if (bind(fd, sockaddr) < 0) {
      throwErrno(`cannot bind UDP ${where}`, { EADDRINUSE: 'another socket has this port', EADDRNOTAVAIL: 'no interface has this address' });
    }
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  return fd;
}

/**
 * Creates a UDP socket natively (non-blocking, close-on-exec), sets the options asked for, binds
 * it, and wraps it in a dgram.Socket, which owns it from then on (socket.close() closes the fd).
 * Rejects with a SysError naming the option the kernel refused.
 */
export async function createOffloadUdpSocket(options: OffloadUdpSocketOptions): Promise<OffloadUdpSocket> {
  const v6 = isIP(options.address) === 6;
  const fd = createOffloadUdpFd(options);
  const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ fd }, () => {
        sock.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    sock.close(); // dgram owns the fd once bind({ fd }) has opened it
    throw err;
  }
  return { socket: sock, fd };
}
