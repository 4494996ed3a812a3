// The fixed binary preamble each side of a mesh connection writes first, before any framed
// message (DESIGN §4):
//
//   "weft" | u8 minVersion | u8 maxVersion | u8 flags | [32-byte X25519 public key]
//
// flags bit 0 = encrypted; the public key is present exactly when it is set. It is binary and
// fixed rather than protobuf because it is what tells a weft peer from anything else that dialled
// port 6783, and because the key it carries is needed before any message can be opened.
// Both sides send their preamble at once, without waiting for the other's, so the handshake costs
// one round trip; each side then checks the other's with the functions below.
import { ProtocolError, describeBytes } from './protocol-error.js';

export const PROTOCOL_MIN_VERSION = 1;
export const PROTOCOL_MAX_VERSION = 1;

const MAGIC = Uint8Array.from([0x77, 0x65, 0x66, 0x74]); // "weft"
/** Weave Net's own header starts with "weave": worth naming when a Weave router dials us. */
const WEAVE_MAGIC = Uint8Array.from([0x77, 0x65, 0x61, 0x76, 0x65]);
const FLAG_ENCRYPTED = 0x01;
const KNOWN_FLAGS = FLAG_ENCRYPTED;
export const PUBLIC_KEY_LENGTH = 32;
const FIXED_LENGTH = MAGIC.length + 3;

export interface Preamble {
  readonly minVersion: number;
  readonly maxVersion: number;
  /** Our ephemeral X25519 public key; present iff the connection is to be encrypted. */
  readonly publicKey?: Uint8Array;
}

/** The preamble's length on the wire. */
export function preambleLength(p: Preamble): number {
  return FIXED_LENGTH + (p.publicKey ? PUBLIC_KEY_LENGTH : 0);
}

/** Encodes our own preamble. A bad one is our bug, so it is a RangeError, not a ProtocolError. */
export function encodePreamble(p: Preamble): Uint8Array {
  const rangeProblem = checkRange(p.minVersion, p.maxVersion);
  if (rangeProblem) throw new RangeError(rangeProblem);
  if (p.publicKey && p.publicKey.length !== PUBLIC_KEY_LENGTH) {
    throw new RangeError(`public key must be ${PUBLIC_KEY_LENGTH} bytes, not ${p.publicKey.length}`);
  }
  const out = new Uint8Array(preambleLength(p));
  out.set(MAGIC, 0);
  out[4] = p.minVersion;
  out[5] = p.maxVersion;
  out[6] = p.publicKey ? FLAG_ENCRYPTED : 0;
  if (p.publicKey) out.set(p.publicKey, FIXED_LENGTH);
  return out;
}

/**
 * Parses the peer's preamble from the start of what it has sent so far. Returns undefined while
 * more bytes are needed; `consumed` says where the first frame starts. The magic is checked on
 * every byte as it arrives, so a stranger (an HTTP client, a port scanner, a Weave router) is
 * refused on its first bytes rather than left waiting for a handshake timeout.
 */
export function parsePreamble(buf: Uint8Array): { preamble: Preamble; consumed: number } | undefined {
  const magicSeen = Math.min(buf.length, MAGIC.length);
  for (let i = 0; i < magicSeen; i++) {
    if (buf[i] !== MAGIC[i]) throw notWeft(buf);
  }
  if (buf.length < FIXED_LENGTH) return undefined;
  const minVersion = buf[4]!;
  const maxVersion = buf[5]!;
  const flags = buf[6]!;
  const rangeProblem = checkRange(minVersion, maxVersion);
  if (rangeProblem) throw new ProtocolError(`peer sent an invalid preamble: ${rangeProblem}`);
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new ProtocolError(`peer sent an invalid preamble: unknown flags 0x${flags.toString(16).padStart(2, '0')}`);
  }
  if ((flags & FLAG_ENCRYPTED) === 0) {
    return { preamble: { minVersion, maxVersion }, consumed: FIXED_LENGTH };
  }
  const end = FIXED_LENGTH + PUBLIC_KEY_LENGTH;
  if (buf.length < end) return undefined;
  // A copy, so the key outlives the socket chunk it arrived in.
  const publicKey = buf.slice(FIXED_LENGTH, end);
  return { preamble: { minVersion, maxVersion, publicKey }, consumed: end };
}

/**
 * The version both sides speak: the highest one in both ranges. (Weave's rule: the lower of the
 * two maxima, as long as it is not below either minimum.)
 */
export function negotiateVersion(ours: Preamble, theirs: Preamble): number {
  const low = Math.max(ours.minVersion, theirs.minVersion);
  const high = Math.min(ours.maxVersion, theirs.maxVersion);
  if (low > high) {
    throw new ProtocolError(
      `remote version range [${theirs.minVersion},${theirs.maxVersion}] is incompatible with ours [${ours.minVersion},${ours.maxVersion}]`,
    );
  }
  return high;
}

/** All peers of a mesh have the password, or none has: anything else is refused, by both ends. */
export function checkEncryptionAgreement(ours: Preamble, theirs: Preamble): void {
  if (ours.publicKey && !theirs.publicKey) {
    throw new ProtocolError('password specified, but peer requested an unencrypted connection');
  }
  if (!ours.publicKey && theirs.publicKey) {
    throw new ProtocolError('peer requested an encrypted connection, but no password was specified');
  }
}

function checkRange(min: number, max: number): string | undefined {
  const valid = (v: number): boolean => Number.isInteger(v) && v >= 1 && v <= 255;
  if (!valid(min) || !valid(max)) return `protocol versions must be 1..255, got [${min},${max}]`;
  if (min > max) return `protocol version range [${min},${max}] is empty`;
  return undefined;
}

function notWeft(buf: Uint8Array): ProtocolError {
  const isWeave = buf.length >= WEAVE_MAGIC.length && WEAVE_MAGIC.every((b, i) => buf[i] === b);
  const hint = isWeave ? ' (this looks like a Weave Net router; weft does not speak its protocol)' : '';
  return new ProtocolError(`not a weft peer: it sent ${describeBytes(buf)}${hint}`);
}
