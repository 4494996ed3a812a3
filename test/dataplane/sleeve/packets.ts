// Test packets built the way the kernel hands them to a VNET_HDR TAP, and a deliberately naive
// checksum to verify the results with (written independently of src/, byte by byte).

export const NEEDS_CSUM = 1;

/** RFC 1071, the slow obvious way: 16-bit big-endian words, end-around carry at every step. */
export function referenceSum(data: ArrayLike<number>, start = 0, end = data.length, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) {
    s += data[i]! * 256 + (i + 1 < end ? data[i + 1]! : 0);
    s = (s & 0xffff) + Math.floor(s / 65536);
  }
  return s;
}

export const be16 = (b: ArrayLike<number>, o: number): number => b[o]! * 256 + b[o + 1]!;
export const be32 = (b: ArrayLike<number>, o: number): number => be16(b, o) * 65536 + be16(b, o + 2);

export interface PacketSpec {
  readonly ipv6: boolean;
  readonly udp: boolean;
  readonly vlan: boolean;
  /** IPv6 only: a hop-by-hop options header (8 bytes) before the L4 header. */
  readonly hopByHop: boolean;
  readonly src: Uint8Array; // 4 or 16 bytes
  readonly dst: Uint8Array;
  readonly sport: number;
  readonly dport: number;
  readonly seq: number;
  readonly ack: number;
  readonly tcpFlags: number;
  readonly tcpOptions: Uint8Array; // multiple of 4, at most 40
  readonly ipId: number;
  readonly payload: Uint8Array;
}

export interface Built {
  /** virtio_net_hdr + Ethernet frame. */
  readonly packet: Uint8Array;
  readonly l3: number;
  readonly l4: number;
  readonly hdrEnd: number;
}

/**
 * One (super-)packet with CHECKSUM_PARTIAL: the L4 checksum field holds the folded pseudo-header
 * sum (not complemented), as the kernel leaves it; gsoSize 0 = no GSO.
 */
export function buildPacket(p: PacketSpec, gsoSize: number): Built {
  const l3 = 14 + (p.vlan ? 4 : 0);
  const ipHeader = p.ipv6 ? 40 + (p.hopByHop ? 8 : 0) : 20;
  const l4 = l3 + ipHeader;
  const l4Header = p.udp ? 8 : 20 + p.tcpOptions.length;
  const hdrEnd = l4 + l4Header;
  const f = new Uint8Array(hdrEnd + p.payload.length);
  f.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1], 0);
  let at = 12;
  if (p.vlan) {
    f.set([0x81, 0x00, 0x00, 0x2a], 12);
    at = 16;
  }
  const put16 = (o: number, v: number) => f.set([(v >>> 8) & 0xff, v & 0xff], o);
  const put32 = (o: number, v: number) => f.set([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff], o);
  put16(at, p.ipv6 ? 0x86dd : 0x0800);
  const l4Length = l4Header + p.payload.length;
  const proto = p.udp ? 17 : 6;
  if (p.ipv6) {
    f.set([0x60, 0, 0, 0], l3);
    put16(l3 + 4, ipHeader - 40 + l4Length);
    f[l3 + 6] = p.hopByHop ? 0 : proto;
    f[l3 + 7] = 64;
    f.set(p.src, l3 + 8);
    f.set(p.dst, l3 + 24);
    if (p.hopByHop) f.set([proto, 0, 1, 4, 0, 0, 0, 0], l3 + 40); // PadN option
  } else {
    f.set([0x45, 0], l3);
    put16(l3 + 2, 20 + l4Length);
    put16(l3 + 4, p.ipId);
    put16(l3 + 6, 0x4000);
    f.set([64, proto], l3 + 8);
    f.set(p.src, l3 + 12);
    f.set(p.dst, l3 + 16);
    put16(l3 + 10, ~referenceSum(f, l3, l3 + 20) & 0xffff);
  }
  if (p.udp) {
    put16(l4, p.sport);
    put16(l4 + 2, p.dport);
    put16(l4 + 4, l4Length);
  } else {
    put16(l4, p.sport);
    put16(l4 + 2, p.dport);
    put32(l4 + 4, p.seq);
    put32(l4 + 8, p.ack);
    f[l4 + 12] = (l4Header / 4) << 4;
    f[l4 + 13] = p.tcpFlags;
    put16(l4 + 14, 0xffff);
    f.set(p.tcpOptions, l4 + 20);
  }
  f.set(p.payload, hdrEnd);
  const pseudo = pseudoSum(p.src, p.dst, proto, l4Length);
  put16(l4 + (p.udp ? 6 : 16), pseudo);
  const hdr = new Uint8Array(10);
  hdr[0] = NEEDS_CSUM;
  hdr[1] = gsoSize === 0 ? 0 : p.udp ? 5 : p.ipv6 ? 4 : 1;
  hdr.set([hdrEnd & 0xff, hdrEnd >> 8, gsoSize & 0xff, gsoSize >> 8, l4 & 0xff, l4 >> 8, p.udp ? 6 : 16, 0], 2);
  const packet = new Uint8Array(10 + f.length);
  packet.set(hdr);
  packet.set(f, 10);
  return { packet, l3, l4, hdrEnd };
}

/** The folded pseudo-header sum for the given L4 length. */
export function pseudoSum(src: Uint8Array, dst: Uint8Array, proto: number, l4Length: number): number {
  let s = referenceSum(src);
  s = referenceSum(dst, 0, dst.length, s);
  return referenceSum([0, proto, (l4Length >>> 8) & 0xff, l4Length & 0xff], 0, 4, s);
}
