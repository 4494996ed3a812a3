// Userspace segmentation and checksums, for a peer whose TAP cannot take offloads (DESIGN §6).
// With offloads the kernel hands us, after a virtio_net_hdr, frames that are not yet wire-ready:
//   - NEEDS_CSUM without GSO: the L4 checksum field holds only the pseudo-header sum; the rest of
//     the sum, from csum_start to the end of the frame, is still to be added;
//   - GSO TCPv4/TCPv6: one TCP "super-frame" with up to 64 KB of payload, to be cut into
//     gso_size (MSS) segments as the NIC would (TSO), each a complete frame: IPv4 total length,
//     id (+1 per segment) and header checksum, or IPv6 payload length; TCP sequence numbers
//     advanced; FIN and PSH only on the last segment, CWR only on the first; full TCP checksums;
//   - GSO UDP_L4 (USO): one UDP super-datagram, cut into gso_size datagrams, each with its own
//     UDP length and checksum.
// The result is plain Ethernet frames, which a TAP without IFF_VNET_HDR (or any other port)
// accepts. Old UFO (gso_type UDP: IP fragmentation) is not produced by current kernels and is
// refused, as is any layout we do not parse (IPv6 routing or fragment headers).
//
// It runs per packet: at most one output buffer per super-frame (or the caller's), the headers
// copied within it, and checksums summed without allocating. Input from the network may be
// hostile: every offset is checked, and the result is a GsoSplitError value, never a throw.
import { ETHERNET_HEADER_LENGTH } from './header.js';
import { finishChecksum, sumBytes } from './checksum.js';
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN as GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LEN as VIRTIO_NET_HDR_LENGTH,
} from '../tap/virtio-net-hdr.js';

export type GsoSplitErrorReason =
  | 'short' // shorter than a virtio_net_hdr and an Ethernet header
  | 'unsupported' // a gso_type we do not segment
  | 'ip-header' // not IPv4/IPv6 as the gso_type says, or inconsistent lengths
  | 'l4-header' // the TCP/UDP header does not fit
  | 'checksum-offsets' // csum_start/csum_offset outside the frame or not at the L4 checksum
  | 'gso-size'; // zero, or so small that the frame would make more than MAX_SEGMENTS

export class GsoSplitError {
  constructor(
    readonly reason: GsoSplitErrorReason,
    readonly detail: string,
  ) {}
}

/** At most this many segments per super-frame (64 KB at TCP's minimum MSS of 88 is 745). */
export const MAX_SEGMENTS = 1024;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;
const TCP_CHECKSUM_OFFSET = 16;
const UDP_CHECKSUM_OFFSET = 6;

/**
 * Turns one frame read from a VNET_HDR TAP (virtio_net_hdr + Ethernet frame) into wire-ready
 * Ethernet frames. Without GSO the one frame is a view of `packet`, its checksum finished in
 * place; with GSO the frames are views of one new buffer (or of `output`, if it is big enough:
 * gsoOutputLength tells the size; it must not overlap `packet`, and must not be reused while the
 * frames are in use).
 */
export function gsoSplit(packet: Uint8Array, output?: Uint8Array): Uint8Array[] | GsoSplitError {
  if (packet.length < VIRTIO_NET_HDR_LENGTH + ETHERNET_HEADER_LENGTH) {
    return new GsoSplitError('short', `${packet.length} bytes: want a virtio_net_hdr and an Ethernet header`);
  }
  const flags = packet[0]!;
  const gsoType = packet[1]! & ~GSO_ECN;
  const gsoSize = le16(packet, 4);
  const csumStart = le16(packet, 6);
  const csumOffset = le16(packet, 8);
  const frame = packet.subarray(VIRTIO_NET_HDR_LENGTH);
  const needsCsum = (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
  if (gsoType === VIRTIO_NET_HDR_GSO_NONE) {
    if (needsCsum) {
      const error = finishPartialChecksum(frame, csumStart, csumOffset);
      if (error) return error;
    }
    return [frame];
  }
  const plan = planSegments(packet);
  if (plan instanceof GsoSplitError) return plan;
  const out = output && output.length >= plan.size ? output : Buffer.allocUnsafe(plan.size);
  return writeSegments(frame, plan.layout, gsoSize, plan.segments, out);
}

/** Bytes the frames of gsoSplit(packet) occupy when it segments (0 when it would not). */
export function gsoOutputLength(packet: Uint8Array): number {
  if (packet.length < VIRTIO_NET_HDR_LENGTH + ETHERNET_HEADER_LENGTH || (packet[1]! & ~GSO_ECN) === VIRTIO_NET_HDR_GSO_NONE) return 0;
  const plan = planSegments(packet);
  return plan instanceof GsoSplitError ? 0 : plan.size;
}

interface Plan {
  readonly layout: Layout;
  readonly segments: number;
  /** Bytes of all the segments. */
  readonly size: number;
}

/** The checks and the arithmetic of a GSO packet (header and Ethernet frame present). */
function planSegments(packet: Uint8Array): Plan | GsoSplitError {
  const gsoType = packet[1]! & ~GSO_ECN;
  if (gsoType !== VIRTIO_NET_HDR_GSO_TCPV4 && gsoType !== VIRTIO_NET_HDR_GSO_TCPV6 && gsoType !== VIRTIO_NET_HDR_GSO_UDP_L4) {
    return new GsoSplitError('unsupported', `gso_type ${packet[1]!}`);
  }
  const layout = parseLayout(packet.subarray(VIRTIO_NET_HDR_LENGTH), gsoType);
  if (layout instanceof GsoSplitError) return layout;
  const csumStart = le16(packet, 6);
  const csumOffset = le16(packet, 8);
  const needsCsum = (packet[0]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
  if (needsCsum && (csumStart !== layout.l4 || csumOffset !== (layout.tcp ? TCP_CHECKSUM_OFFSET : UDP_CHECKSUM_OFFSET))) {
    return new GsoSplitError('checksum-offsets', `csum_start ${csumStart}/csum_offset ${csumOffset}, the L4 header is at ${layout.l4}`);
  }
  const gsoSize = le16(packet, 4);
  const payload = layout.end - layout.hdrEnd;
  const segments = gsoSize === 0 ? Infinity : Math.max(1, Math.ceil(payload / gsoSize));
  if (segments > MAX_SEGMENTS) return new GsoSplitError('gso-size', `gso_size ${gsoSize} for ${payload} payload bytes`);
  return { layout, segments, size: segments * layout.hdrEnd + payload };
}

/**
 * Finishes a CHECKSUM_PARTIAL frame in place: the field at csum_start + csum_offset holds the
 * pseudo-header sum; the sum of everything from csum_start to the end goes there, complemented
 * (a result of 0 is sent as 0xffff, as the kernel does, since 0 means "no checksum" to UDP).
 */
export function finishPartialChecksum(frame: Uint8Array, csumStart: number, csumOffset: number): GsoSplitError | undefined {
  const at = csumStart + csumOffset;
  if (at + 2 > frame.length) {
    return new GsoSplitError('checksum-offsets', `checksum at ${csumStart}+${csumOffset} beyond a ${frame.length}-byte frame`);
  }
  let c = finishChecksum(sumBytes(frame, csumStart, frame.length));
  if (c === 0) c = 0xffff;
  frame[at] = c >>> 8;
  frame[at + 1] = c & 0xff;
  return undefined;
}

interface Layout {
  readonly ipv6: boolean;
  readonly tcp: boolean;
  /** Offsets in the Ethernet frame: IP header, L4 header, end of the L4 header, end of the IP packet. */
  readonly l3: number;
  readonly l4: number;
  readonly hdrEnd: number;
  readonly end: number;
}

function parseLayout(frame: Uint8Array, gsoType: number): Layout | GsoSplitError {
  let l3 = ETHERNET_HEADER_LENGTH;
  let etherType = be16(frame, 12);
  for (let tags = 0; (etherType === ETHERTYPE_VLAN || etherType === ETHERTYPE_QINQ) && tags < 2; tags++) {
    if (frame.length < l3 + 4) return new GsoSplitError('ip-header', 'truncated VLAN tag');
    etherType = be16(frame, l3 + 2);
    l3 += 4;
  }
  const tcp = gsoType !== VIRTIO_NET_HDR_GSO_UDP_L4;
  const protocol = tcp ? PROTO_TCP : PROTO_UDP;
  let l4: number;
  let end: number;
  let ipv6: boolean;
  if (etherType === ETHERTYPE_IPV4 && gsoType !== VIRTIO_NET_HDR_GSO_TCPV6) {
    ipv6 = false;
    if (frame.length < l3 + 20 || frame[l3]! >> 4 !== 4) return new GsoSplitError('ip-header', 'not an IPv4 header');
    const ihl = (frame[l3]! & 0x0f) * 4;
    const totalLength = be16(frame, l3 + 2);
    if (ihl < 20 || totalLength < ihl || l3 + totalLength > frame.length) {
      return new GsoSplitError('ip-header', `IPv4 header length ${ihl}, total length ${totalLength}, ${frame.length - l3} bytes`);
    }
    if ((be16(frame, l3 + 6) & 0x3fff) !== 0) return new GsoSplitError('ip-header', 'IPv4 fragment');
    if (frame[l3 + 9] !== protocol) return new GsoSplitError('ip-header', `IPv4 protocol ${frame[l3 + 9]!}, gso_type says ${protocol}`);
    l4 = l3 + ihl;
    end = l3 + totalLength;
  } else if (etherType === ETHERTYPE_IPV6 && gsoType !== VIRTIO_NET_HDR_GSO_TCPV4) {
    ipv6 = true;
    if (frame.length < l3 + 40 || frame[l3]! >> 4 !== 6) return new GsoSplitError('ip-header', 'not an IPv6 header');
    const payloadLength = be16(frame, l3 + 4);
    end = l3 + 40 + payloadLength;
    if (payloadLength === 0 || end > frame.length) {
      return new GsoSplitError('ip-header', `IPv6 payload length ${payloadLength}, ${frame.length - l3 - 40} bytes`);
    }
    let next = frame[l3 + 6]!;
    l4 = l3 + 40;
    // Hop-by-hop and destination options may precede the L4 header; they do not change the
    // pseudo-header. Routing (it would) and fragment headers are refused.
    for (let hops = 0; next !== protocol; hops++) {
      if ((next !== 0 && next !== 60) || hops === 8 || l4 + 8 > end) {
        return new GsoSplitError('ip-header', `IPv6 next header ${next} before the ${tcp ? 'TCP' : 'UDP'} header`);
      }
      next = frame[l4]!;
      l4 += (frame[l4 + 1]! + 1) * 8;
    }
  } else {
    return new GsoSplitError('ip-header', `ethertype 0x${etherType.toString(16)} with gso_type ${gsoType}`);
  }
  const l4HeaderLength = tcp ? (l4 + 13 <= end ? (frame[l4 + 12]! >> 4) * 4 : 0) : 8;
  if ((tcp && l4HeaderLength < 20) || l4 + l4HeaderLength > end) {
    return new GsoSplitError('l4-header', `${tcp ? 'TCP' : 'UDP'} header of ${l4HeaderLength} bytes in ${end - l4}`);
  }
  return { ipv6, tcp, l3, l4, hdrEnd: l4 + l4HeaderLength, end };
}

function writeSegments(frame: Uint8Array, layout: Layout, gsoSize: number, segments: number, out: Uint8Array): Uint8Array[] {
  const { l3, l4, hdrEnd, end, tcp, ipv6 } = layout;
  const payload = end - hdrEnd;
  const stride = hdrEnd + gsoSize;
  const firstId = be16(frame, l3 + 4);
  const firstSeq = tcp ? be32(frame, l4 + 4) : 0;
  const firstFlags = tcp ? frame[l4 + 13]! : 0;
  // The addresses in the pseudo-header are the same for every segment.
  const pseudo = ipv6 ? sumBytes(frame, l3 + 8, l3 + 40) : sumBytes(frame, l3 + 12, l3 + 20);
  const protocol = tcp ? PROTO_TCP : PROTO_UDP;
  const frames = new Array<Uint8Array>(segments);
  out.set(frame.subarray(0, hdrEnd), 0);
  // Last segment first: the others copy their headers from segment 0, which is changed last.
  for (let i = segments - 1; i >= 0; i--) {
    const at = i * stride;
    const from = hdrEnd + i * gsoSize;
    const length = i === segments - 1 ? payload - i * gsoSize : gsoSize;
    if (i > 0) out.copyWithin(at, 0, hdrEnd);
    out.set(frame.subarray(from, from + length), at + hdrEnd);
    const l4Length = hdrEnd - l4 + length;
    if (ipv6) {
      put16(out, at + l3 + 4, hdrEnd - l3 - 40 + length);
    } else {
      put16(out, at + l3 + 2, hdrEnd - l3 + length);
      put16(out, at + l3 + 4, (firstId + i) & 0xffff);
      put16(out, at + l3 + 10, 0);
      put16(out, at + l3 + 10, finishChecksum(sumBytes(out, at + l3, at + l4)));
    }
    let checksumAt: number;
    if (tcp) {
      put32(out, at + l4 + 4, (firstSeq + i * gsoSize) >>> 0);
      let f = firstFlags;
      if (i < segments - 1) f &= ~(TCP_FIN | TCP_PSH);
      if (i > 0) f &= ~TCP_CWR;
      out[at + l4 + 13] = f;
      checksumAt = at + l4 + TCP_CHECKSUM_OFFSET;
    } else {
      put16(out, at + l4 + 4, l4Length);
      checksumAt = at + l4 + UDP_CHECKSUM_OFFSET;
    }
    put16(out, checksumAt, 0);
    let c = finishChecksum(sumBytes(out, at + l4, at + hdrEnd + length, pseudo + protocol + l4Length));
    if (c === 0 && !tcp) c = 0xffff; // 0 means "no checksum" to UDP
    put16(out, checksumAt, c);
    frames[i] = out.subarray(at, at + hdrEnd + length);
  }
  return frames;
}

function le16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

function be16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function be32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v & 0xff;
}

function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
