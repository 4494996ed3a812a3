// Length-prefixed framing of the mesh's TCP stream (DESIGN §4): a u32 big-endian length, then
// that many bytes (a protobuf Envelope, or its secretbox when the mesh has a password).
//
// The reader is fed whatever chunks the socket delivers and hands back whole frames. It is
// written for a hostile peer:
//   - a length above MAX_FRAME_SIZE (say 4 GiB) is refused the moment its 4 bytes are in,
//     before anything is allocated for it;
//   - memory follows what has actually arrived, never what a header announced, so a peer cannot
//     make us reserve 10 MiB by sending 4 bytes;
//   - a 10 MiB frame in 64 KiB chunks costs O(n) copying (the buffer doubles), not O(n²);
//     a frame that lies inside one chunk is returned as a view of it, with no copy at all.
import { ProtocolError } from './protocol-error.js';

export const MAX_FRAME_SIZE = 10 * 1024 * 1024;
export const FRAME_HEADER_LENGTH = 4;
/** First allocation for a frame that spans chunks: about one socket read. */
const MIN_CAPACITY = 64 * 1024;

/** Prefixes a payload with its length. Sending more than the peer accepts is our bug: RangeError. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_SIZE) {
    throw new RangeError(`frame of ${payload.length} bytes exceeds the limit of ${MAX_FRAME_SIZE}`);
  }
  const out = new Uint8Array(FRAME_HEADER_LENGTH + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, FRAME_HEADER_LENGTH);
  return out;
}

/**
 * Reassembles frames from a byte stream. Returned frames may be views of the chunks passed to
 * `push`, so a caller must not modify a chunk after pushing it (socket chunks never are).
 * After it has thrown once, the reader stays failed: the stream has lost its framing for good.
 */
export class FrameReader {
  /** The part of a length prefix received so far. */
  private readonly header = new Uint8Array(FRAME_HEADER_LENGTH);
  private headerFill = 0;
  /** Length of the frame being received, or -1 while its header is still incomplete. */
  private bodyLength = -1;
  /**
   * The part of that frame received so far, in a buffer that grows by doubling up to the frame's
   * length: memory stays within twice what has arrived (or 64 KiB), copying stays O(n), no piece of a
   * socket chunk is retained (a view would keep the whole chunk alive).
   */
  private partial = new Uint8Array(0);
  private partialLength = 0;
  private failure: ProtocolError | undefined;

  /** Bytes received but not yet returned in a frame (a partial header, or a header and part of a body). */
  get buffered(): number {
    return this.bodyLength < 0 ? this.headerFill : FRAME_HEADER_LENGTH + this.partialLength;
  }

  /** Takes the next chunk of the stream and returns the frames it completed, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure) throw this.failure;
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.bodyLength < 0) {
        offset = this.readHeader(chunk, offset);
        if (this.bodyLength < 0) break; // the chunk ended inside the header
        if (this.bodyLength === 0) {
          frames.push(new Uint8Array(0));
          this.bodyLength = -1;
          continue;
        }
      }
      const missing = this.bodyLength - this.partialLength;
      const available = chunk.length - offset;
      if (this.partialLength === 0 && available >= missing) {
        // The whole frame is in this chunk: hand out a view.
        frames.push(chunk.subarray(offset, offset + missing));
        offset += missing;
        this.bodyLength = -1;
        continue;
      }
      const take = Math.min(missing, available);
      this.append(chunk.subarray(offset, offset + take));
      offset += take;
      if (this.partialLength === this.bodyLength) frames.push(this.takeFrame());
    }
    return frames;
  }

  /** Reads (the rest of) a length prefix; sets bodyLength once all 4 bytes are in. */
  private readHeader(chunk: Uint8Array, offset: number): number {
    let length: number;
    if (this.headerFill === 0 && chunk.length - offset >= FRAME_HEADER_LENGTH) {
      length = readUint32(chunk, offset);
      offset += FRAME_HEADER_LENGTH;
    } else {
      const take = Math.min(FRAME_HEADER_LENGTH - this.headerFill, chunk.length - offset);
      this.header.set(chunk.subarray(offset, offset + take), this.headerFill);
      this.headerFill += take;
      offset += take;
      if (this.headerFill < FRAME_HEADER_LENGTH) return offset;
      this.headerFill = 0;
      length = readUint32(this.header, 0);
    }
    if (length > MAX_FRAME_SIZE) {
      this.failure = new ProtocolError(
        `peer announced a frame of ${length} bytes, more than the limit of ${MAX_FRAME_SIZE}`,
      );
      throw this.failure;
    }
    this.bodyLength = length;
    return offset;
  }

  private append(bytes: Uint8Array): void {
    const needed = this.partialLength + bytes.length;
    if (needed > this.partial.length) {
      const capacity = Math.min(this.bodyLength, Math.max(needed, 2 * this.partial.length, MIN_CAPACITY));
      const grown = new Uint8Array(capacity);
      grown.set(this.partial.subarray(0, this.partialLength));
      this.partial = grown;
    }
    this.partial.set(bytes, this.partialLength);
    this.partialLength = needed;
  }

  /** The completed frame; the buffer has grown to exactly its length by now. */
  private takeFrame(): Uint8Array {
    const frame = this.partial;
    this.partial = new Uint8Array(0);
    this.partialLength = 0;
    this.bodyLength = -1;
    return frame;
  }
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}
