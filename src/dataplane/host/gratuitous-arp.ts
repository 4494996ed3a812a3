// A pod's gratuitous ARP, sent by the daemon from the bridge: after ADD, peers and pods that hold
// a stale entry for a reused address (ARP caches, our forwarder's MAC table) learn the pod's MAC
// at once. The bridge device transmits it into the bridge, which floods it to every port: the
// local pods, the host, and the TAP, from where the sleeve floods it to the other nodes. A frame
// the bridge device itself sends teaches the bridge nothing (learning happens on a port's
// ingress), so the pod's MAC is not mistaken for one behind the bridge device.
//
// The kernel's own announcement (arp_notify in the pod) needed two processes per ADD, one of them
// polling until the pod's bridge port forwarded (its announcement at link-up is dropped by the
// bridge); this needs none, and nothing of the pod's port: it is sent from the bridge's side.
//
// The frame is built here (pure); sendFrameOnLink sends it through an AF_PACKET socket in this
// thread's network namespace (the daemon's: the node's).
import { parseIpv4, parseIpv4WithPrefix } from '../../net/ipv4.js';
import { parseMac } from '../forwarder/mac.js';
import { closeFd, errnoName, ifNameToIndex, sendToFd, socket, throwErrno } from '../tap/libc.js';

const ETH_P_ARP = 0x0806;
const ETH_P_IPV4 = 0x0800;
const ARP_REQUEST = 1;
const ARPHRD_ETHER = 1;
/** Ethernet header + ARP for IPv4 over Ethernet. */
export const GRATUITOUS_ARP_LENGTH = 14 + 28;

/**
 * "Who has `address`? Tell `address`" from `mac`, to everyone: the form of gratuitous ARP that
 * Linux sends itself (arp_notify) and that every stack accepts. `address` may carry a prefix.
 */
export function gratuitousArp(mac: string, address: string): Buffer {
  const source = parseMac(mac);
  const ip = address.includes('/') ? parseIpv4WithPrefix(address).address : parseIpv4(address);
  const f = Buffer.alloc(GRATUITOUS_ARP_LENGTH);
  f.writeUIntBE(0xffff_ffff_ffff, 0, 6);
  f.writeUIntBE(source, 6, 6);
  f.writeUInt16BE(ETH_P_ARP, 12);
  f.writeUInt16BE(ARPHRD_ETHER, 14);
  f.writeUInt16BE(ETH_P_IPV4, 16);
  f.writeUInt8(6, 18); // hardware address length
  f.writeUInt8(4, 19); // protocol address length
  f.writeUInt16BE(ARP_REQUEST, 20);
  f.writeUIntBE(source, 22, 6); // sender MAC
  f.writeUInt32BE(ip, 28); // sender IP
  // target MAC (32..37) stays zero: unknown, as in a request
  f.writeUInt32BE(ip, 38); // target IP: the sender's own
  return f;
}

// <linux/socket.h>, <linux/if_packet.h>
const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOCKADDR_LL_SIZE = 20;

/** struct sockaddr_ll for a send on `ifindex` to the frame's own destination MAC. */
function sockaddrLl(ifindex: number, frame: Uint8Array): Buffer {
  const sa = Buffer.alloc(SOCKADDR_LL_SIZE);
  sa.writeUInt16LE(AF_PACKET, 0); // sll_family, host order
  sa.writeUInt16BE(frame.length >= 14 ? (frame[12]! << 8) | frame[13]! : 0, 2); // sll_protocol, network order
  sa.writeInt32LE(ifindex, 4); // sll_ifindex
  sa.writeUInt8(6, 11); // sll_halen
  sa.set(frame.subarray(0, 6), 12); // sll_addr
  return sa;
}

/**
 * Sends one whole Ethernet frame out of the interface `ifname` (for a bridge: into the bridge).
 * Throws an Error naming the interface and the errno.
 */
export function sendFrameOnLink(ifname: string, frame: Uint8Array): void {
  const ifindex = ifNameToIndex(ifname);
  if (ifindex === 0) throw new Error(`cannot send a frame on ${ifname}: no such interface`);
  // Protocol 0: a socket that only sends, so no frame is ever queued to it.
  const fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) throwErrno(`cannot open a packet socket to send on ${ifname}`);
  try {
    const sent = sendToFd(fd, frame, frame.length, sockaddrLl(ifindex, frame));
    if (sent < 0) throw new Error(`cannot send a frame on ${ifname}: ${errnoName(-sent)}`);
  } finally {
    closeFd(fd);
  }
}
