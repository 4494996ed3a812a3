// Ethernet MAC addresses as the forwarder sees them: the 48-bit value in a plain number (exact in
// a double), so the per-frame work is two reads of the frame header and Map lookups on numbers,
// with no string built unless something is logged.
//
// (DESIGN §3 puts MACs in src/net; this lives here until the lead moves it there.)

declare const macBrand: unique symbol;
export type Mac = number & { readonly [macBrand]: true };

const MAC_MAX = 2 ** 48 - 1;
const FIRST_OCTET = 2 ** 40;

/** The MAC held in bytes[offset .. offset+6), most significant byte first (wire order). */
export function macFromBytes(bytes: Uint8Array, offset = 0): Mac {
  if (offset < 0 || offset + 6 > bytes.length) throw new RangeError(`no MAC at offset ${offset} of ${bytes.length} bytes`);
  // High 16 bits and low 32 bits separately: bitwise operators work on 32 bits only.
  const hi = (bytes[offset]! << 8) | bytes[offset + 1]!;
  const lo = ((bytes[offset + 2]! << 24) | (bytes[offset + 3]! << 16) | (bytes[offset + 4]! << 8) | bytes[offset + 5]!) >>> 0;
  return (hi * 2 ** 32 + lo) as Mac;
}

export function macFromNumber(n: number): Mac {
  if (!Number.isInteger(n) || n < 0 || n > MAC_MAX) throw new RangeError(`MAC out of range: ${n}`);
  return n as Mac;
}

/** Parses "02:42:ac:11:00:02" (either case, ':' or '-' between the six groups). */
export function parseMac(text: string): Mac {
  const m = /^([0-9a-f]{2})([:-][0-9a-f]{2}){5}$/i.exec(text.trim());
  if (m === null) throw new RangeError(`invalid MAC address "${text}": want six hex groups like 02:42:ac:11:00:02`);
  return parseInt(text.trim().replace(/[:-]/g, ''), 16) as Mac;
}

/** Lower-case, colon-separated, as `ip link` and Weave's logs print it. */
export function formatMac(mac: Mac): string {
  return mac.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
}

/** Multicast or broadcast: the I/G bit (lowest bit of the first octet) is set. */
export function isGroupMac(mac: Mac): boolean {
  return (Math.floor(mac / FIRST_OCTET) & 1) === 1;
}

export const BROADCAST_MAC = MAC_MAX as Mac;

const BRIDGE_RESERVED_BASE = 0x0180c2000000;

/**
 * 01:80:c2:00:00:00 to 01:80:c2:00:00:0f: link-local protocols of one segment (STP, pause, LACP,
 * LLDP, 802.1X) that an 802.1D bridge never forwards. Weave dropped STP; the rest of the range
 * is just as meaningless on another node's bridge.
 */
export function isBridgeReservedMac(mac: Mac): boolean {
  return mac >= BRIDGE_RESERVED_BASE && mac <= BRIDGE_RESERVED_BASE + 0x0f;
}

/** The two addresses at the head of an Ethernet frame: what the forwarder decides on. */
export interface FrameMacs {
  readonly dst: Mac;
  readonly src: Mac;
}

/** The destination and source MAC of an Ethernet frame (at `offset`, e.g. past a virtio header). */
export function frameMacs(frame: Uint8Array, offset = 0): FrameMacs {
  return { dst: macFromBytes(frame, offset), src: macFromBytes(frame, offset + 6) };
}
