// The 10-byte struct virtio_net_hdr that a TAP opened with IFF_VNET_HDR puts in front of every
// frame it hands over and expects in front of every frame written to it. It says what the kernel
// left unfinished: a checksum to complete (NEEDS_CSUM at csum_start + csum_offset) and, for a
// super-frame, how to cut it into segments (gso_type, gso_size = MSS, hdr_len = headers to repeat).
// weft carries it unchanged to the peer, whose own TAP finishes the work (DESIGN §6), so the data
// path only parses it for statistics, checks and the userspace fallback. Pure.
//
// Layout (legacy virtio, little-endian on the little-endian hosts weft runs on):
//   0 u8 flags   1 u8 gso_type   2 u16 hdr_len   4 u16 gso_size   6 u16 csum_start   8 u16 csum_offset

export const VIRTIO_NET_HDR_LEN = 10;

/** flags: the checksum at csum_start + csum_offset holds only the pseudo-header sum: finish it. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 0x01;
/** flags: the checksum was verified already (receive side). */
export const VIRTIO_NET_HDR_F_DATA_VALID = 0x02;
/** flags: the GSO fields carry receive-segment-coalescing info (not produced by tun). */
export const VIRTIO_NET_HDR_F_RSC_INFO = 0x04;

/** gso_type: an ordinary frame. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
/** gso_type: a TCP over IPv4 super-frame. */
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
/** gso_type: UDP fragmentation offload (UFO, withdrawn from Linux). */
export const VIRTIO_NET_HDR_GSO_UDP = 3;
/** gso_type: a TCP over IPv6 super-frame. */
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/** gso_type: UDP segmentation offload (USO). */
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
/** gso_type bit: the TCP segments carry ECN (CWR on the first only). */
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

export interface VirtioNetHdr {
  readonly flags: number;
  readonly gsoType: number;
  /** Length of the headers (Ethernet + IP + TCP) that each segment repeats; a hint. */
  readonly hdrLen: number;
  /** Payload bytes per segment (the MSS) for a GSO frame; 0 otherwise. */
  readonly gsoSize: number;
  /** Offset from the start of the Ethernet frame where checksumming starts. */
  readonly csumStart: number;
  /** Offset from csumStart of the checksum field. */
  readonly csumOffset: number;
}

/** All zero: a complete frame, nothing to finish. The header to write in front of frames built in userspace. */
export const VIRTIO_NET_HDR_NONE: VirtioNetHdr = Object.freeze({ flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });

/** Reads the header at `offset` of `bytes`; throws a RangeError if fewer than 10 bytes are there. */
export function parseVirtioNetHdr(bytes: Uint8Array, offset = 0): VirtioNetHdr {
  if (!Number.isInteger(offset) || offset < 0 || bytes.byteLength - offset < VIRTIO_NET_HDR_LEN) {
    throw new RangeError(`virtio_net_hdr needs ${VIRTIO_NET_HDR_LEN} bytes at offset ${offset}, have ${Math.max(0, bytes.byteLength - offset)}`);
  }
  const u16 = (at: number): number => (bytes[offset + at] as number) | ((bytes[offset + at + 1] as number) << 8);
  return {
    flags: bytes[offset] as number,
    gsoType: bytes[offset + 1] as number,
    hdrLen: u16(2),
    gsoSize: u16(4),
    csumStart: u16(6),
    csumOffset: u16(8),
  };
}

/**
 * Writes `hdr` at `offset` of `out` (a new 10-byte array if none is given) and returns `out`.
 * Throws a RangeError for a field out of range (u8 or u16) or too little room.
 */
export function formatVirtioNetHdr(hdr: VirtioNetHdr, out: Uint8Array = new Uint8Array(VIRTIO_NET_HDR_LEN), offset = 0): Uint8Array {
  if (!Number.isInteger(offset) || offset < 0 || out.byteLength - offset < VIRTIO_NET_HDR_LEN) {
    throw new RangeError(`virtio_net_hdr needs ${VIRTIO_NET_HDR_LEN} bytes at offset ${offset}, have ${Math.max(0, out.byteLength - offset)}`);
  }
  const fields: readonly [keyof VirtioNetHdr, number][] = [
    ['flags', 0xff], ['gsoType', 0xff], ['hdrLen', 0xffff], ['gsoSize', 0xffff], ['csumStart', 0xffff], ['csumOffset', 0xffff],
  ];
  for (const [name, max] of fields) {
    const v = hdr[name];
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`virtio_net_hdr ${name} ${v} out of range 0-${max}`);
  }
  const u16 = (at: number, v: number): void => {
    out[offset + at] = v & 0xff;
    out[offset + at + 1] = v >>> 8;
  };
  out[offset] = hdr.flags;
  out[offset + 1] = hdr.gsoType;
  u16(2, hdr.hdrLen);
  u16(4, hdr.gsoSize);
  u16(6, hdr.csumStart);
  u16(8, hdr.csumOffset);
  return out;
}

/** A super-frame the receiver (or its TAP) must cut into segments. */
export function isGso(hdr: VirtioNetHdr): boolean {
  return (hdr.gsoType & ~VIRTIO_NET_HDR_GSO_ECN) !== VIRTIO_NET_HDR_GSO_NONE;
}

/** A frame whose L4 checksum is still to be finished. */
export function needsChecksum(hdr: VirtioNetHdr): boolean {
  return (hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
}

/** Short text for logs: "gso=tcpv4 mss=1324 hdr=66 csum=34+16", or "none". */
export function describeVirtioNetHdr(hdr: VirtioNetHdr): string {
  const parts: string[] = [];
  if (isGso(hdr)) {
    const base = hdr.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
    const kind = GSO_NAMES.get(base) ?? `type${base}`;
    parts.push(`gso=${kind}${hdr.gsoType & VIRTIO_NET_HDR_GSO_ECN ? '+ecn' : ''} mss=${hdr.gsoSize} hdr=${hdr.hdrLen}`);
  }
  if (needsChecksum(hdr)) parts.push(`csum=${hdr.csumStart}+${hdr.csumOffset}`);
  if (hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID) parts.push('data-valid');
  return parts.length === 0 ? 'none' : parts.join(' ');
}

const GSO_NAMES = new Map<number, string>([
  [VIRTIO_NET_HDR_GSO_TCPV4, 'tcpv4'],
  [VIRTIO_NET_HDR_GSO_UDP, 'udp'],
  [VIRTIO_NET_HDR_GSO_TCPV6, 'tcpv6'],
  [VIRTIO_NET_HDR_GSO_UDP_L4, 'udp-l4'],
]);
