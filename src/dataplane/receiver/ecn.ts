// The congestion signal without a loss: RFC 3168's CE mark, set in a frame's IP header in place.
//
// When CoDel asks for a signal (codel.ts), a frame whose transport negotiated ECN (ECT(0) or
// ECT(1) in the IP header) is marked Congestion Experienced and delivered; any other frame is
// dropped, as fq_codel does. The mark survives segmentation: the kernel copies the IP header
// into every segment of a super-frame and recomputes each IPv4 checksum; the transport checksum
// does not cover these bits (neither pseudo-header includes the TOS or traffic class).
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERNET_HEADER = 14;
const ECN_MASK = 0b11;

/**
 * Marks the IP packet in the Ethernet frame starting at `at` of `frame` with CE if it is
 * ECN-capable: true if it now carries CE (it was ECT, or CE already), false if it is not an
 * ECN-capable IP packet (not IP, not ECT, or too short to tell), which must then be dropped.
 */
export function markCongestion(frame: Uint8Array, at: number): boolean {
  const ip = at + ETHERNET_HEADER;
  if (frame.byteLength < ip + 2) return false;
  const ethertype = (frame[at + 12]! << 8) | frame[at + 13]!;
  if (ethertype === ETHERTYPE_IPV4) {
    if (frame.byteLength < ip + 20 || frame[ip]! >> 4 !== 4) return false;
    const tos = frame[ip + 1]!;
    if ((tos & ECN_MASK) === 0) return false;
    if ((tos & ECN_MASK) === ECN_MASK) return true;
    // RFC 1624 incremental update of the header checksum, on the 16-bit word that holds the TOS.
    const before = (frame[ip]! << 8) | tos;
    const after = before | ECN_MASK;
    const check = (frame[ip + 10]! << 8) | frame[ip + 11]!;
    let sum = (~check & 0xffff) + (~before & 0xffff) + after;
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    const updated = ~sum & 0xffff;
    frame[ip + 1] = tos | ECN_MASK;
    frame[ip + 10] = updated >> 8;
    frame[ip + 11] = updated & 0xff;
    return true;
  }
  if (ethertype === ETHERTYPE_IPV6) {
    if (frame[ip]! >> 4 !== 6) return false;
    // The traffic class straddles bytes 0 and 1; its ECN bits are bits 4-5 of byte 1.
    const ecn = (frame[ip + 1]! >> 4) & ECN_MASK;
    if (ecn === 0) return false;
    frame[ip + 1] = frame[ip + 1]! | (ECN_MASK << 4);
    return true;
  }
  return false;
}
