// The sleeve's per-datagram header (UDP 6783). It is fixed binary, not protobuf, because it is
// read and written for every chunk of every frame. Every UDP datagram (or every segment of a
// UDP_GSO/UDP_GRO batch) is one chunk: this header, then a slice of one sealed message.
//
//   off len  field
//    0   1   magic 0xF7
//    1   1   version (1)
//    2   1   kind: 1 frame, 2 heartbeat, 3 heartbeat-ack, 4 PMTU probe, 5 PMTU ack
//    3   1   flags: 0x01 the message body starts with a 10-byte virtio_net_hdr
//                   0x02 the body is sealed (AEAD ciphertext + 16-byte tag)
//                   0x04 sent by the side that dialled the connection (its direction)
//                   0x08 key phase: which of two successive keys sealed it (sealed only;
//                        frame-crypto.ts changes keys long before AES-GCM's data limit)
//                   other bits must be zero
//    4   6   source peer: the peer that captured the frame (48-bit name)
//   10   6   destination peer: the frame's final peer, so peers in the middle relay it by name
//            without knowing any MAC (Weave did the same per frame)
//   16   8   connection uid: the mesh connection of this hop (both ends compute the same XOR of
//            their connection ids); the receiver finds the connection, and so the key, by it
//   24   8   sequence: the message id of this direction of the connection, counting from 0;
//            also the AEAD nonce counter. Below 2^53 (see MAX_SEQUENCE)
//   32   1   chunk count: chunks of the message (1..255)
//   33   1   chunk index (0..count-1)
//   34   2   chunk length: payload bytes that follow this header
//   36       payload
//
// Multi-byte fields are big-endian. Bytes 0..32 (MESSAGE_HEADER_LENGTH: everything but the index
// and length of the chunk) are the same in every chunk of a message: they are the AEAD's
// associated data, so a peer that alters any of them makes the whole message fail to open. The
// index and length are not authenticated one by one; a chunk put in the wrong place makes the
// reassembled message fail to open instead.
//
// Malformed input from the network is never thrown: decoding returns a SleeveFormatError value
// whose `reason` names a drop counter.
import { VIRTIO_NET_HDR_LEN } from '../tap/virtio-net-hdr.js';

/** First byte of every sleeve datagram. */
export const SLEEVE_MAGIC = 0xf7;
export const SLEEVE_VERSION = 1;

export const MessageKind = {
  Frame: 1,
  Heartbeat: 2,
  HeartbeatAck: 3,
  PmtuProbe: 4,
  PmtuAck: 5,
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];
const MAX_KIND = 5;

const FLAG_VNET_HDR = 0x01;
const FLAG_SEALED = 0x02;
const FLAG_FROM_DIALLER = 0x04;
const FLAG_KEY_PHASE = 0x08;
const KNOWN_FLAGS = FLAG_VNET_HDR | FLAG_SEALED | FLAG_FROM_DIALLER | FLAG_KEY_PHASE;

/** Bytes of the header that are the same in all chunks of a message (and the AEAD's AAD). */
export const MESSAGE_HEADER_LENGTH = 33;
/** Bytes of the header in front of every chunk's payload. */
export const SLEEVE_HEADER_LENGTH = 36;
export const MAX_CHUNKS = 255;
/**
 * Largest message (sealed body) we send or reassemble: a 64 KiB IP packet with its Ethernet
 * header, a VLAN tag, the virtio_net_hdr and the AEAD tag fits with room to spare, and the bound
 * keeps one reassembly slot small whatever a peer claims.
 */
export const MAX_MESSAGE_LENGTH = 96 * 1024;
/**
 * The wire field is 64 bits, but counters stay below 2^53 so that they are exact JS numbers
 * (no bigint per packet); a sender refuses to go past it (frame-crypto) and a receiver treats a
 * larger value as malformed. At 10 million messages a second that is 28 years of one connection.
 */
export const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/** IPv4 (20) + UDP (8) headers of the underlay. */
export const UDP_IPV4_OVERHEAD = 28;
/** IPv6 (40) + UDP (8) headers of the underlay. */
export const UDP_IPV6_OVERHEAD = 48;
/** The TAP's virtio_net_hdr in front of a frame (defined once, with the TAP's codec). */
export const VIRTIO_NET_HDR_LENGTH = VIRTIO_NET_HDR_LEN;
export const AEAD_TAG_LENGTH = 16;
/** The overlay frame's own Ethernet header (no VLAN tag: pods do not tag). */
export const ETHERNET_HEADER_LENGTH = 14;
/** The smallest underlay MTU an IPv4 host must accept (RFC 791); below it we refuse. */
export const MIN_UNDERLAY_MTU = 576;

export interface MessageHeader {
  readonly kind: MessageKind;
  /** The body starts with a virtio_net_hdr (the frame came from a VNET_HDR TAP). */
  readonly vnetHdr: boolean;
  /** The body is AEAD ciphertext and tag. */
  readonly sealed: boolean;
  /** Sent by the side that dialled the connection. */
  readonly fromDialler: boolean;
  /** The sealing key's phase (0 or 1; always 0 when not sealed). */
  readonly keyPhase: number;
  /** 48-bit peer name as a number (see peerNameFromNumber in src/net/peer-name.ts). */
  readonly srcPeer: number;
  readonly dstPeer: number;
  readonly connectionUid: bigint;
  readonly sequence: number;
  readonly chunkCount: number;
}

/** One decoded chunk: its header, and where its payload sits in the received bytes. */
export interface Chunk extends MessageHeader {
  readonly chunkIndex: number;
  /** Payload bytes: bytes[offset + SLEEVE_HEADER_LENGTH, + chunkLength). */
  readonly chunkLength: number;
  /** The received buffer (not copied) and where this chunk's header starts in it. */
  readonly bytes: Uint8Array;
  readonly offset: number;
}

export type FormatErrorReason =
  | 'short' // fewer bytes than a header, or than the header's chunk length
  | 'magic'
  | 'version'
  | 'kind'
  | 'flags' // reserved flag bits set
  | 'sequence' // at or beyond 2^53
  | 'chunk-count' // zero
  | 'chunk-index' // not below the count
  | 'chunk-length'; // disagrees with the datagram's size

/**
 * A datagram we refuse. A value, not a thrown exception (it does not extend Error: no stack is
 * captured for input a peer controls). `reason` is fit for a counter label; `detail` for a log.
 */
export class SleeveFormatError {
  constructor(
    readonly reason: FormatErrorReason,
    readonly detail: string,
  ) {}
}

const TWO_32 = 2 ** 32;

/**
 * Writes the message header (MESSAGE_HEADER_LENGTH bytes) at `offset`. Our own values out of range
 * are a bug of ours and throw a RangeError.
 */
export function writeMessageHeader(target: Uint8Array, offset: number, h: MessageHeader): void {
  checkOwnHeader(h);
  target[offset] = SLEEVE_MAGIC;
  target[offset + 1] = SLEEVE_VERSION;
  target[offset + 2] = h.kind;
  target[offset + 3] =
    (h.vnetHdr ? FLAG_VNET_HDR : 0) | (h.sealed ? FLAG_SEALED : 0) | (h.fromDialler ? FLAG_FROM_DIALLER : 0) | (h.keyPhase === 1 ? FLAG_KEY_PHASE : 0);
  writeU48(target, offset + 4, h.srcPeer);
  writeU48(target, offset + 10, h.dstPeer);
  const uid = BigInt.asUintN(64, h.connectionUid);
  writeU32(target, offset + 16, Number(uid >> 32n));
  writeU32(target, offset + 20, Number(uid & 0xffffffffn));
  writeU32(target, offset + 24, Math.floor(h.sequence / TWO_32));
  writeU32(target, offset + 28, h.sequence >>> 0);
  target[offset + 32] = h.chunkCount;
}

/** The message header alone, as the AEAD's associated data. */
export function messageHeaderBytes(h: MessageHeader): Uint8Array {
  const out = new Uint8Array(MESSAGE_HEADER_LENGTH);
  writeMessageHeader(out, 0, h);
  return out;
}

/** Writes a whole chunk header: the message header, then the chunk's index and payload length. */
export function writeChunkHeader(target: Uint8Array, offset: number, h: MessageHeader, index: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= h.chunkCount) throw new RangeError(`chunk index ${index} not below count ${h.chunkCount}`);
  if (!Number.isInteger(length) || length < 0 || length > 0xffff) throw new RangeError(`chunk length ${length} out of range`);
  writeMessageHeader(target, offset, h);
  target[offset + 33] = index;
  target[offset + 34] = length >>> 8;
  target[offset + 35] = length & 0xff;
}

/**
 * Decodes the chunk that starts at `offset` and occupies exactly `length` bytes (a datagram, or
 * one segment of a GRO batch): its chunk length must account for every byte after the header.
 */
export function decodeChunk(bytes: Uint8Array, offset: number, length: number): Chunk | SleeveFormatError {
  if (length < SLEEVE_HEADER_LENGTH || offset < 0 || offset + length > bytes.length) {
    return new SleeveFormatError('short', `${length} bytes, a sleeve header needs ${SLEEVE_HEADER_LENGTH}`);
  }
  const o = offset;
  if (bytes[o] !== SLEEVE_MAGIC) return new SleeveFormatError('magic', `magic 0x${hex2(bytes[o]!)} is not 0x${hex2(SLEEVE_MAGIC)}`);
  if (bytes[o + 1] !== SLEEVE_VERSION) return new SleeveFormatError('version', `version ${bytes[o + 1]!} is not ${SLEEVE_VERSION}`);
  const kind = bytes[o + 2]!;
  if (kind < 1 || kind > MAX_KIND) return new SleeveFormatError('kind', `unknown message kind ${kind}`);
  const flags = bytes[o + 3]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) return new SleeveFormatError('flags', `reserved flag bits set: 0x${hex2(flags)}`);
  if ((flags & (FLAG_KEY_PHASE | FLAG_SEALED)) === FLAG_KEY_PHASE) return new SleeveFormatError('flags', 'key phase on a message that is not sealed');
  const seqHigh = readU32(bytes, o + 24);
  if (seqHigh >= 2 ** 21) return new SleeveFormatError('sequence', 'sequence at or beyond 2^53');
  const count = bytes[o + 32]!;
  if (count === 0) return new SleeveFormatError('chunk-count', 'chunk count 0');
  const index = bytes[o + 33]!;
  if (index >= count) return new SleeveFormatError('chunk-index', `chunk index ${index} not below count ${count}`);
  const chunkLength = (bytes[o + 34]! << 8) | bytes[o + 35]!;
  if (chunkLength !== length - SLEEVE_HEADER_LENGTH) {
    const reason = chunkLength > length - SLEEVE_HEADER_LENGTH ? 'short' : 'chunk-length';
    return new SleeveFormatError(reason, `chunk length ${chunkLength} but ${length - SLEEVE_HEADER_LENGTH} bytes follow the header`);
  }
  return {
    kind: kind as MessageKind,
    vnetHdr: (flags & FLAG_VNET_HDR) !== 0,
    sealed: (flags & FLAG_SEALED) !== 0,
    fromDialler: (flags & FLAG_FROM_DIALLER) !== 0,
    keyPhase: (flags & FLAG_KEY_PHASE) >>> 3,
    srcPeer: readU48(bytes, o + 4),
    dstPeer: readU48(bytes, o + 10),
    connectionUid: uidOf(readU32(bytes, o + 16), readU32(bytes, o + 20)),
    sequence: seqHigh * TWO_32 + readU32(bytes, o + 28),
    chunkCount: count,
    chunkIndex: index,
    chunkLength,
    bytes,
    offset,
  };
}

// The last uid decoded: consecutive chunks (a GRO batch, a peer's stream) nearly always share it,
// and building a bigint per chunk is most of what decoding costs.
let lastUidHigh = -1;
let lastUidLow = -1;
let lastUid = 0n;

function uidOf(high: number, low: number): bigint {
  if (high !== lastUidHigh || low !== lastUidLow) {
    lastUid = (BigInt(high) << 32n) | BigInt(low);
    lastUidHigh = high;
    lastUidLow = low;
  }
  return lastUid;
}

/** The payload of a chunk, as a view of the received bytes. */
export function chunkPayload(c: Chunk): Uint8Array {
  const start = c.offset + SLEEVE_HEADER_LENGTH;
  return c.bytes.subarray(start, start + c.chunkLength);
}

/** The message header bytes of a chunk (its AAD), as a view of the received bytes. */
export function chunkMessageHeader(c: Chunk): Uint8Array {
  return c.bytes.subarray(c.offset, c.offset + MESSAGE_HEADER_LENGTH);
}

export interface MtuOptions {
  /** Frames are sealed (adds the AEAD tag). */
  readonly encrypted: boolean;
  /** Frames carry the virtio_net_hdr (default true: weft always sends it when it has it). */
  readonly vnetHdr?: boolean;
  /** The underlay is IPv6 (48 bytes of IP + UDP instead of 28). */
  readonly ipv6?: boolean;
}

/**
 * Size of one chunk datagram's UDP payload, header included: the largest that leaves the underlay
 * unfragmented. It is also the UDP_SEGMENT size, and the stride of a UDP_GRO batch.
 */
export function chunkStride(underlayMtu: number, ipv6 = false): number {
  if (!Number.isInteger(underlayMtu) || underlayMtu < MIN_UNDERLAY_MTU || underlayMtu > 65535) {
    throw new RangeError(`underlay MTU ${underlayMtu} out of range ${MIN_UNDERLAY_MTU}..65535`);
  }
  return underlayMtu - (ipv6 ? UDP_IPV6_OVERHEAD : UDP_IPV4_OVERHEAD);
}

/**
 * The overlay MTU (the IP MTU of the bridge and the pods) for which a full-size frame that is not
 * a GSO super-frame travels as exactly one chunk: underlay MTU − IP/UDP − sleeve header −
 * virtio_net_hdr − AEAD tag (when encrypted) − the frame's Ethernet header. Shown as `mtu=N`.
 */
export function overlayMtu(underlayMtu: number, options: MtuOptions): number {
  return (
    chunkStride(underlayMtu, options.ipv6 ?? false) -
    SLEEVE_HEADER_LENGTH -
    (options.vnetHdr ?? true ? VIRTIO_NET_HDR_LENGTH : 0) -
    (options.encrypted ? AEAD_TAG_LENGTH : 0) -
    ETHERNET_HEADER_LENGTH
  );
}

function checkOwnHeader(h: MessageHeader): void {
  if (!Number.isInteger(h.kind) || h.kind < 1 || h.kind > MAX_KIND) throw new RangeError(`unknown message kind ${h.kind}`);
  if (h.keyPhase !== 0 && (h.keyPhase !== 1 || !h.sealed)) throw new RangeError(`key phase ${h.keyPhase} (sealed: ${h.sealed})`);
  checkU48(h.srcPeer, 'source peer');
  checkU48(h.dstPeer, 'destination peer');
  if (!Number.isInteger(h.sequence) || h.sequence < 0 || h.sequence > MAX_SEQUENCE) throw new RangeError(`sequence ${h.sequence} out of range`);
  if (!Number.isInteger(h.chunkCount) || h.chunkCount < 1 || h.chunkCount > MAX_CHUNKS) throw new RangeError(`chunk count ${h.chunkCount} out of range`);
  if (h.connectionUid < 0n || h.connectionUid >= 1n << 64n) throw new RangeError('connection uid is not a 64-bit value');
}

function checkU48(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 48) throw new RangeError(`${what} ${n} is not a 48-bit name`);
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function writeU48(b: Uint8Array, o: number, v: number): void {
  const high = Math.floor(v / TWO_32);
  b[o] = high >>> 8;
  b[o + 1] = high & 0xff;
  writeU32(b, o + 2, v >>> 0);
}

function readU48(b: Uint8Array, o: number): number {
  return ((b[o]! << 8) | b[o + 1]!) * TWO_32 + readU32(b, o + 2);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
