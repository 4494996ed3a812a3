// Just enough Ethernet, ARP, IPv4 and ICMP to answer a ping from userspace in the TAP tests:
// parse what a pod sends, build correct replies. Test helper, pure.
import { formatIpv4, parseIpv4 } from '../../../src/net/ipv4.js';

export const ETH_HEADER_LEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
/** IEEE 802 "local experimental" EtherType: frames no stack on the way will act on. */
export const ETH_P_EXPERIMENTAL = 0x88b5;
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
const ARP_REQUEST = 1;
const ARP_REPLY = 2;
const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;

export function macBytes(mac: string): Uint8Array {
  const parts = mac.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-f]{2}$/i.test(p))) throw new RangeError(`invalid MAC ${mac}`);
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

function ipBytes(ip: string): Uint8Array {
  const n = parseIpv4(ip);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

function ipText(bytes: Uint8Array): string {
  return formatIpv4((((bytes[0] ?? 0) << 24) >>> 0) + ((bytes[1] ?? 0) << 16) + ((bytes[2] ?? 0) << 8) + (bytes[3] ?? 0));
}

function u16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}

function putU16(bytes: Uint8Array, at: number, v: number): void {
  bytes[at] = v >>> 8;
  bytes[at + 1] = v & 0xff;
}

/** The RFC 1071 one's-complement sum, folded and inverted. */
export function internetChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += u16(bytes, i);
  if (bytes.length % 2 === 1) sum += (bytes[bytes.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface EthernetFrame {
  readonly dst: string;
  readonly src: string;
  readonly type: number;
  readonly payload: Uint8Array;
}

export function parseEthernet(frame: Uint8Array): EthernetFrame | undefined {
  if (frame.length < ETH_HEADER_LEN) return undefined;
  return { dst: formatMac(frame.subarray(0, 6)), src: formatMac(frame.subarray(6, 12)), type: u16(frame, 12), payload: frame.subarray(ETH_HEADER_LEN) };
}

export function ethernet(dst: string, src: string, type: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(ETH_HEADER_LEN + payload.length);
  frame.set(macBytes(dst), 0);
  frame.set(macBytes(src), 6);
  putU16(frame, 12, type);
  frame.set(payload, ETH_HEADER_LEN);
  return frame;
}

export interface ArpPacket {
  readonly op: number;
  readonly senderMac: string;
  readonly senderIp: string;
  readonly targetMac: string;
  readonly targetIp: string;
}

/** An Ethernet/IPv4 ARP packet, or undefined for anything else. */
export function parseArp(payload: Uint8Array): ArpPacket | undefined {
  if (payload.length < 28 || u16(payload, 0) !== 1 || u16(payload, 2) !== ETH_P_IP || payload[4] !== 6 || payload[5] !== 4) return undefined;
  return {
    op: u16(payload, 6),
    senderMac: formatMac(payload.subarray(8, 14)),
    senderIp: ipText(payload.subarray(14, 18)),
    targetMac: formatMac(payload.subarray(18, 24)),
    targetIp: ipText(payload.subarray(24, 28)),
  };
}

export function isArpRequestFor(arp: ArpPacket | undefined, ip: string): arp is ArpPacket {
  return arp !== undefined && arp.op === ARP_REQUEST && arp.targetIp === ip;
}

/** The Ethernet frame answering an ARP request: `ip` is at `mac`. */
export function arpReplyFrame(request: ArpPacket, mac: string, ip: string): Uint8Array {
  const arp = new Uint8Array(28);
  putU16(arp, 0, 1); // Ethernet
  putU16(arp, 2, ETH_P_IP);
  arp[4] = 6;
  arp[5] = 4;
  putU16(arp, 6, ARP_REPLY);
  arp.set(macBytes(mac), 8);
  arp.set(ipBytes(ip), 14);
  arp.set(macBytes(request.senderMac), 18);
  arp.set(ipBytes(request.senderIp), 24);
  return ethernet(request.senderMac, mac, ETH_P_ARP, arp);
}

export interface Ipv4Packet {
  readonly src: string;
  readonly dst: string;
  readonly protocol: number;
  readonly ttl: number;
  /** The header's checksum field verifies (sums to zero). */
  readonly headerChecksumOk: boolean;
  readonly payload: Uint8Array;
}

export function parseIpv4Packet(bytes: Uint8Array): Ipv4Packet | undefined {
  if (bytes.length < 20 || (bytes[0] ?? 0) >> 4 !== 4) return undefined;
  const ihl = ((bytes[0] ?? 0) & 15) * 4;
  const total = u16(bytes, 2);
  if (ihl < 20 || total < ihl || total > bytes.length) return undefined;
  return {
    src: ipText(bytes.subarray(12, 16)),
    dst: ipText(bytes.subarray(16, 20)),
    protocol: bytes[9] ?? 0,
    ttl: bytes[8] ?? 0,
    headerChecksumOk: internetChecksum(bytes.subarray(0, ihl)) === 0,
    payload: bytes.subarray(ihl, total),
  };
}

export function ipv4Packet(src: string, dst: string, protocol: number, payload: Uint8Array, ttl = 64, tos = 0): Uint8Array {
  const packet = new Uint8Array(20 + payload.length);
  packet[0] = 0x45;
  packet[1] = tos;
  putU16(packet, 2, packet.length);
  packet[6] = 0x40; // don't fragment
  packet[8] = ttl;
  packet[9] = protocol;
  packet.set(ipBytes(src), 12);
  packet.set(ipBytes(dst), 16);
  putU16(packet, 10, internetChecksum(packet.subarray(0, 20)));
  packet.set(payload, 20);
  return packet;
}

/** An ICMP echo request's reply (same id, sequence and data), or undefined if `icmp` is not a valid echo request. */
export function icmpEchoReply(icmp: Uint8Array): Uint8Array | undefined {
  if (icmp.length < 8 || icmp[0] !== ICMP_ECHO_REQUEST || internetChecksum(icmp) !== 0) return undefined;
  const reply = Uint8Array.from(icmp);
  reply[0] = ICMP_ECHO_REPLY;
  putU16(reply, 2, 0);
  putU16(reply, 2, internetChecksum(reply));
  return reply;
}

/** A test frame carrying a 32-bit sequence number (and filler up to `length` bytes). */
export function sequenceFrame(dst: string, src: string, seq: number, length = 64): Uint8Array {
  const payload = new Uint8Array(Math.max(4, length - ETH_HEADER_LEN));
  new DataView(payload.buffer).setUint32(0, seq);
  for (let i = 4; i < payload.length; i++) payload[i] = (seq + i) & 0xff;
  return ethernet(dst, src, ETH_P_EXPERIMENTAL, payload);
}

/** The sequence number of a frame made by sequenceFrame() (checking its filler), or undefined. */
export function sequenceOf(frame: Uint8Array): number | undefined {
  const eth = parseEthernet(frame);
  if (eth === undefined || eth.type !== ETH_P_EXPERIMENTAL || eth.payload.length < 4) return undefined;
  const seq = new DataView(eth.payload.buffer, eth.payload.byteOffset, 4).getUint32(0);
  for (let i = 4; i < eth.payload.length; i++) if (eth.payload[i] !== ((seq + i) & 0xff)) return undefined;
  return seq;
}
