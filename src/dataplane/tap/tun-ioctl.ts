// Opening a TAP device through the kernel's tun driver: open /dev/net/tun, TUNSETIFF to create
// (or attach to) the named device, TUNSETVNETHDRSZ and TUNSETOFFLOAD to receive TCP super-frames
// with their virtio_net_hdr instead of MTU-sized frames (about 6x the throughput, DESIGN §6).
//
// The device lives in the network namespace of the thread that opened /dev/net/tun, and only as
// long as some fd holds it (no TUNSETPERSIST): closing the fd deletes it, so a crashed daemon
// leaves no TAP behind.
import { ioctlPointer, ioctlValue, open, closeFd, throwErrno, O_RDWR, O_CLOEXEC, O_NONBLOCK } from './libc.js';

export const TUN_DEVICE_PATH = '/dev/net/tun';

/** The kernel's buffer for an interface name, NUL included: names are at most 15 bytes. */
export const IFNAMSIZ = 16;
/** sizeof(struct ifreq) on 64-bit Linux: ifr_name[16] at 0, then a union whose `short ifr_flags` is at 16. */
export const IFREQ_SIZE = 40;
const IFR_FLAGS_OFFSET = IFNAMSIZ;

// ioctl requests, _IOW('T', nr, int|unsigned int) = 0x40000000 | 4 << 16 | 'T' << 8 | nr.
/** Create or attach to a device: argument is a pointer to struct ifreq (name + flags). */
export const TUNSETIFF = 0x400454ca;
/** Which offloads the reader can take: argument is the TUN_F_* flags *by value*. */
export const TUNSETOFFLOAD = 0x400454d0;
/** Size of the header in front of every frame with IFF_VNET_HDR: argument is a pointer to int. */
export const TUNSETVNETHDRSZ = 0x400454d8;

// ifr_flags for TUNSETIFF.
/** Layer 3 device (IP packets): not usable as a bridge port. */
export const IFF_TUN = 0x0001;
/** Layer 2 device (Ethernet frames): what the `weave` bridge needs. */
export const IFF_TAP = 0x0002;
/** One fd per queue, several queues per device (for one reader per core; not used yet). */
export const IFF_MULTI_QUEUE = 0x0100;
/** No 4-byte struct tun_pi (flags, protocol) in front of every frame. */
export const IFF_NO_PI = 0x1000;
/** A struct virtio_net_hdr in front of every frame read or written (see virtio-net-hdr.ts). */
export const IFF_VNET_HDR = 0x4000;

// TUNSETOFFLOAD flags: what this end can take from the kernel unfinished.
/** Frames may come with the L4 checksum still to be finished (CHECKSUM_PARTIAL). Needed by all the others. */
export const TUN_F_CSUM = 0x01;
/** TCP over IPv4 super-frames (up to 64 KB) that the reader segments (or a peer's TAP does). */
export const TUN_F_TSO4 = 0x02;
/** TCP over IPv6 super-frames. */
export const TUN_F_TSO6 = 0x04;
/** TSO frames with the ECN CWR bit (not requested: the kernel segments those itself). */
export const TUN_F_TSO_ECN = 0x08;

/** What weft asks for: checksum offload plus TCP segmentation offload for IPv4 and IPv6. */
export const TAP_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;

/** The virtio_net_hdr weft uses: the 10-byte legacy layout (no num_buffers). */
export const VNET_HDR_SIZE = 10;

export interface TapFdOptions {
  /** Device name, at most 15 bytes; a template such as "tap%d" lets the kernel pick the number. */
  readonly name: string;
  /** IFF_VNET_HDR and a 10-byte header on every frame. */
  readonly vnetHdr: boolean;
  /** TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 (needs vnetHdr: the header is how partial checksums and GSO are described). */
  readonly offloads: boolean;
  /** O_NONBLOCK: reads return EAGAIN instead of sleeping (the reader then sleeps in poll()). */
  readonly nonBlocking: boolean;
}

export interface TapFd {
  readonly fd: number;
  /** The device's name as the kernel has it (a template's number filled in). */
  readonly name: string;
}

/** Throws unless `name` fits in ifr_name: 1-15 bytes of printable ASCII, no "/" or spaces. */
export function validateTapName(name: string): string {
  if (!/^[\x21-\x7e]{1,15}$/.test(name) || name.includes('/') || name.includes(':')) {
    throw new RangeError(`invalid TAP device name "${name}": want 1-${IFNAMSIZ - 1} printable ASCII characters without "/", ":" or spaces`);
  }
  return name;
}

/** The 40-byte struct ifreq for TUNSETIFF. */
export function encodeIfreq(name: string, flags: number): Buffer {
  const ifr = Buffer.alloc(IFREQ_SIZE);
  ifr.write(validateTapName(name), 0, IFNAMSIZ - 1, 'latin1'); // the rest stays 0: NUL-terminated
  ifr.writeUInt16LE(flags, IFR_FLAGS_OFFSET);
  return ifr;
}

/** The name in a struct ifreq (up to the first NUL). */
export function decodeIfreqName(ifr: Uint8Array): string {
  const end = ifr.subarray(0, IFNAMSIZ).indexOf(0);
  return Buffer.from(ifr.buffer, ifr.byteOffset, end < 0 ? IFNAMSIZ : end).toString('latin1');
}

/** open("/dev/net/tun", O_RDWR | O_CLOEXEC [| O_NONBLOCK]); throws a SysError that says what is missing. */
export function openTunFd(nonBlocking: boolean, path = TUN_DEVICE_PATH): number {
  const fd = open(path, O_RDWR | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0));
  if (fd < 0) {
    throwErrno(`cannot open ${path}`, {
      ENOENT: 'is the tun module loaded? try "modprobe tun"; in a container, is /dev/net/tun mounted?',
      ENODEV: 'is the tun module loaded? try "modprobe tun"',
      EACCES: 'needs root or CAP_NET_ADMIN (a privileged container)',
      EPERM: 'needs root or CAP_NET_ADMIN (a privileged container)',
    });
  }
  return fd;
}

/** TUNSETIFF: creates the device (or attaches to an existing one of that name); the kernel's name for it. */
export function tunSetIff(fd: number, name: string, flags: number): string {
  const ifr = encodeIfreq(name, flags);
  ioctlPointer(fd, TUNSETIFF, ifr, `cannot create TAP device "${name}" (TUNSETIFF)`, {
    EPERM: 'needs CAP_NET_ADMIN in the network namespace of the device',
    EBUSY: 'a device of that name exists and is not a free TAP with the same flags (or another fd holds it)',
    EINVAL: 'invalid name or flags for this kernel',
    EEXIST: 'a device of that name exists and is not a TAP',
  });
  return decodeIfreqName(ifr);
}

/** TUNSETVNETHDRSZ: the size of the header in front of every frame (10 here). */
export function tunSetVnetHdrSize(fd: number, size: number): void {
  const arg = Buffer.alloc(4);
  arg.writeInt32LE(size);
  ioctlPointer(fd, TUNSETVNETHDRSZ, arg, `cannot set the virtio_net_hdr size to ${size} (TUNSETVNETHDRSZ)`);
}

/** TUNSETOFFLOAD: which TUN_F_* offloads this end accepts (the flags go by value, not by pointer). */
export function tunSetOffload(fd: number, flags: number): void {
  ioctlValue(fd, TUNSETOFFLOAD, flags, `cannot set TAP offloads 0x${flags.toString(16)} (TUNSETOFFLOAD)`, {
    EINVAL: 'this kernel does not support these offloads',
  });
}

/**
 * Opens /dev/net/tun and makes it the TAP device `name` with IFF_TAP | IFF_NO_PI, plus
 * IFF_VNET_HDR (header size 10) and the TCP offloads if asked. On any failure the fd is closed
 * (which also removes a device the call had created) before the error is thrown.
 */
export function openTapFd(options: TapFdOptions): TapFd {
  validateTapName(options.name);
  if (options.offloads && !options.vnetHdr) {
    // Partial checksums and super-frames can only be described by the virtio_net_hdr.
    throw new RangeError('TAP offloads need vnetHdr: without the header the kernel could not say what is left to finish');
  }
  const fd = openTunFd(options.nonBlocking);
  try {
    const name = tunSetIff(fd, options.name, IFF_TAP | IFF_NO_PI | (options.vnetHdr ? IFF_VNET_HDR : 0));
    if (options.vnetHdr) tunSetVnetHdrSize(fd, VNET_HDR_SIZE);
    // Set even when off (0): an existing device attached to keeps no offloads from a previous owner.
    if (options.vnetHdr) tunSetOffload(fd, options.offloads ? TAP_OFFLOADS : 0);
    return { fd, name };
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}
