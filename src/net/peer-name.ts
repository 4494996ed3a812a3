// Peer names: 48-bit values written as MAC addresses ("ce:31:e0:06:45:1a"), as Weave's operators
// know them. Canonical form is lower-case, six two-digit groups, so that string order is numeric
// order (routes sort peers by name) and names can key Maps directly.
import { createHash, randomBytes } from 'node:crypto';

declare const peerNameBrand: unique symbol;
export type PeerName = string & { readonly [peerNameBrand]: true };

const NAME_BITS = 48;
const MAX_NAME = 2 ** NAME_BITS - 1;

/** Formats a 48-bit number as a canonical peer name. */
export function peerNameFromNumber(n: number): PeerName {
  if (!Number.isInteger(n) || n < 0 || n > MAX_NAME) {
    throw new RangeError(`peer name out of range: ${n}`);
  }
  const hex = n.toString(16).padStart(12, '0');
  return hex.match(/../g)!.join(':') as PeerName;
}

export function peerNameToNumber(name: PeerName): number {
  return parseInt(name.replaceAll(':', ''), 16);
}

/**
 * Parses a peer name. Accepts the full form and Weave's short forms, where empty groups stand for
 * zeros and a leading run of groups may be omitted ("::1" is 00:00:00:00:00:01). Throws a
 * RangeError that says what is wrong.
 */
export function parsePeerName(text: string): PeerName {
  const groups = text.trim().toLowerCase().split(':');
  if (groups.length < 1 || groups.length > 6 || !groups.every((g) => /^[0-9a-f]{0,2}$/.test(g))) {
    throw new RangeError(`invalid peer name "${text}": want six hex groups like ce:31:e0:06:45:1a`);
  }
  const padded = [...Array<string>(6 - groups.length).fill('0'), ...groups].map((g) => g.padStart(2, '0'));
  return padded.join(':') as PeerName;
}

/** True when the text parses as a peer name (a nickname never contains ':'). */
export function isPeerName(text: string): boolean {
  try {
    parsePeerName(text);
    return text.includes(':');
  } catch {
    return false;
  }
}

function nameFromBytes(bytes: Uint8Array): PeerName {
  const b = Uint8Array.from(bytes.subarray(0, 6));
  b[0] = ((b[0] ?? 0) | 0x02) & 0xfe; // locally administered, never multicast
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':') as PeerName;
}

/**
 * The name a host gets when none is given: a hash of its machine id and product uuid, stable
 * across restarts and reinstalls of weft, different between machines (unless they were cloned
 * with the same ids, which the mesh then reports as a name collision).
 */
export function peerNameFromMachine(machineId: string, productUuid: string): PeerName {
  const digest = createHash('sha256').update(`weft-peer-name:${machineId.trim()}:${productUuid.trim()}`).digest();
  return nameFromBytes(digest);
}

export function randomPeerName(): PeerName {
  return nameFromBytes(randomBytes(6));
}

export function comparePeerNames(a: PeerName, b: PeerName): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
