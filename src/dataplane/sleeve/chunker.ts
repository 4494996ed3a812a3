// Cutting one sealed message into MTU-sized chunks, and finding the chunks in what the socket
// hands up. Never rely on IP fragmentation (DESIGN §6): a message bigger than one datagram goes
// as several chunks, each a complete UDP datagram with its own sleeve header.
//
// Send side: the chunks are laid out back to back, every one exactly `stride` bytes except the
// message's last, so that one buffer goes out in ONE send() on a socket with UDP_SEGMENT = stride
// (the kernel cuts it into datagrams). Where the kernel lacks UDP_SEGMENT the same buffer is sent
// stride by stride.
//
// Receive side: with UDP_GRO the kernel coalesces consecutive datagrams of one size from one
// sender into one buffer (the last may be shorter), and Node gives no cmsg saying the size; the
// first chunk's own length field tells the stride, and every chunk is checked on its own.
import {
  MAX_CHUNKS,
  MAX_MESSAGE_LENGTH,
  MESSAGE_HEADER_LENGTH,
  SLEEVE_HEADER_LENGTH,
  SleeveFormatError,
  decodeChunk,
  writeMessageHeader,
  type Chunk,
  type MessageHeader,
} from './header.js';

/** The largest UDP payload of one IPv4 send, with or without UDP_SEGMENT. */
export const MAX_UDP_PAYLOAD = 65507;
/**
 * Segments per UDP_SEGMENT send: the kernel's UDP_MAX_SEGMENTS was 64 until 6.x raised it to 128;
 * 64 works everywhere.
 */
export const MAX_GSO_SEGMENTS = 64;

/** Payload bytes of a full chunk. */
export function chunkPayloadSize(stride: number): number {
  return stride - SLEEVE_HEADER_LENGTH;
}

/**
 * How many chunks a message body of `bodyLength` bytes (sealed: tag included) takes. Throws a
 * RangeError for a body we never send (larger than MAX_MESSAGE_LENGTH or than 255 chunks).
 */
export function chunkCountFor(bodyLength: number, stride: number): number {
  checkStride(stride);
  if (!Number.isInteger(bodyLength) || bodyLength < 0 || bodyLength > MAX_MESSAGE_LENGTH) {
    throw new RangeError(`message of ${bodyLength} bytes: at most ${MAX_MESSAGE_LENGTH}`);
  }
  const count = Math.max(1, Math.ceil(bodyLength / chunkPayloadSize(stride)));
  if (count > MAX_CHUNKS) throw new RangeError(`message of ${bodyLength} bytes needs ${count} chunks of stride ${stride}, at most ${MAX_CHUNKS}`);
  return count;
}

/** Chunks that fit one send: at most MAX_GSO_SEGMENTS and MAX_UDP_PAYLOAD bytes. */
export function chunksPerSend(stride: number, maxSendBytes = MAX_UDP_PAYLOAD): number {
  checkStride(stride);
  return Math.max(1, Math.min(MAX_GSO_SEGMENTS, Math.floor(maxSendBytes / stride)));
}

/**
 * Where the buffers of one message's sends come from (`size` bytes each, not zeroed): new ones by
 * default; a sender that sends synchronously, before it packs again, can hand out the same memory
 * each time (SendArena), sparing an allocation and the GC work per message.
 */
export type SendAllocator = (size: number) => Buffer;

/**
 * One block of memory handed out again for each message: reset() before packing a message, then
 * each allocation takes the next region, so the sends of one message never overlap. The buffers
 * are valid until the next reset(): for a sender that sends them synchronously.
 */
export class SendArena {
  private readonly block: Buffer;
  private used = 0;

  constructor(bytes = 2 * (MAX_UDP_PAYLOAD + 64)) {
    this.block = Buffer.allocUnsafeSlow(bytes);
  }

  reset(): void {
    this.used = 0;
  }

  readonly allocate: SendAllocator = (size) => {
    // A message bigger than the arena (never, at its default size) still gets its memory.
    if (this.used + size > this.block.length) return Buffer.allocUnsafe(size);
    const b = this.block.subarray(this.used, this.used + size);
    this.used += size;
    return b;
  };
}

/**
 * Lays out a message as chunks: returns the buffers to send, each for ONE send() with
 * UDP_SEGMENT = stride (usually one buffer: a 62 KB super-frame takes 44 chunks of 1472 B). The
 * body may come in pieces (AEAD ciphertext and tag) and is copied once, into the chunks.
 * `header.chunkCount` must be chunkCountFor(body length, stride): it is part of the AAD, so it is
 * fixed before sealing.
 */
export function layoutChunks(
  header: MessageHeader,
  body: Uint8Array | readonly Uint8Array[],
  stride: number,
  maxSendBytes = MAX_UDP_PAYLOAD,
  allocate: SendAllocator = Buffer.allocUnsafe,
): Buffer[] {
  // Plain Uint8Array views: subarray() on a Buffer goes through its species constructor, which
  // made the ~90 small copies of a super-frame cost 4 times what the bytes do (measured).
  const pieces: readonly Uint8Array[] = (body instanceof Uint8Array ? [body] : body).map(plainView);
  let total = 0;
  for (const p of pieces) total += p.length;
  const count = chunkCountFor(total, stride);
  if (header.chunkCount !== count) throw new RangeError(`header says ${header.chunkCount} chunks, the body takes ${count}`);
  const full = chunkPayloadSize(stride);
  const perSend = chunksPerSend(stride, maxSendBytes);
  const sends: Buffer[] = [];
  let pieceIndex = 0;
  let pieceOffset = 0;
  let remaining = total;
  // The message header is the same in every chunk: encode it once (its 64-bit uid costs BigInt
  // arithmetic), then copy its bytes; only the chunk index and length differ per chunk.
  const messageHeader = new Uint8Array(MESSAGE_HEADER_LENGTH);
  writeMessageHeader(messageHeader, 0, header);
  for (let first = 0; first < count; first += perSend) {
    const n = Math.min(perSend, count - first);
    const bytesInSend = Math.min(remaining, n * full);
    const buffer = allocate(n * SLEEVE_HEADER_LENGTH + bytesInSend);
    const send = plainView(buffer);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const length = Math.min(full, remaining);
      send.set(messageHeader, at);
      send[at + MESSAGE_HEADER_LENGTH] = first + i;
      send[at + MESSAGE_HEADER_LENGTH + 1] = length >>> 8;
      send[at + MESSAGE_HEADER_LENGTH + 2] = length & 0xff;
      at += SLEEVE_HEADER_LENGTH;
      // Copy `length` bytes from the pieces, which need not line up with chunk boundaries.
      let need = length;
      while (need > 0) {
        const piece = pieces[pieceIndex]!;
        const take = Math.min(need, piece.length - pieceOffset);
        send.set(piece.subarray(pieceOffset, pieceOffset + take), at);
        at += take;
        need -= take;
        pieceOffset += take;
        if (pieceOffset === piece.length) {
          pieceIndex++;
          pieceOffset = 0;
        }
      }
      remaining -= length;
      while (pieceIndex < pieces.length && pieces[pieceIndex]!.length === 0) pieceIndex++;
    }
    sends.push(buffer);
  }
  return sends;
}

/**
 * The chunks of one received buffer: a single datagram, or a UDP_GRO batch of datagrams of one
 * size (`stride`; only the last may be shorter). Without a `stride` the first chunk's length
 * field gives it; if that first chunk is malformed the whole buffer is one error, since nothing
 * then says where the next chunk starts. Each segment is decoded on its own, so one bad segment
 * costs only itself. The chunks are views into `bytes` (no copy).
 */
export function splitDatagram(received: Uint8Array, stride?: number): Array<Chunk | SleeveFormatError> {
  // The chunks' views (and the reassembler's copies from them) are cut from a plain Uint8Array:
  // see plainView.
  const bytes = plainView(received);
  let segment = stride;
  if (segment === undefined) {
    if (bytes.length < SLEEVE_HEADER_LENGTH) return [decodeChunk(bytes, 0, bytes.length)];
    segment = Math.min(bytes.length, SLEEVE_HEADER_LENGTH + ((bytes[34]! << 8) | bytes[35]!));
    const first = decodeChunk(bytes, 0, segment);
    if (first instanceof SleeveFormatError) return [first];
  } else if (!Number.isInteger(segment) || segment < SLEEVE_HEADER_LENGTH) {
    throw new RangeError(`stride ${segment} is shorter than a sleeve header`);
  }
  const out: Array<Chunk | SleeveFormatError> = [];
  for (let at = 0; at < bytes.length; at += segment) {
    out.push(decodeChunk(bytes, at, Math.min(segment, bytes.length - at)));
  }
  if (bytes.length === 0) out.push(decodeChunk(bytes, 0, 0));
  return out;
}

function checkStride(stride: number): void {
  if (!Number.isInteger(stride) || stride <= SLEEVE_HEADER_LENGTH || stride > MAX_UDP_PAYLOAD) {
    throw new RangeError(`stride ${stride} out of range ${SLEEVE_HEADER_LENGTH + 1}..${MAX_UDP_PAYLOAD}`);
  }
}

/** `bytes` itself, or a plain Uint8Array over the same memory if it is a Buffer (or another subclass). */
export function plainView(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
