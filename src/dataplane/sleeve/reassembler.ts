// Reassembly of chunked messages on the receiving side. UDP loses, duplicates and reorders
// datagrams, and anyone can send us chunks, so:
//   - a message is returned only when every one of its chunks has arrived, and all of them agree
//     on the message header (bytes 0..32, which are the AEAD's AAD) and on the chunk size;
//   - duplicates are ignored; chunks may come in any order;
//   - what is held is bounded: bytes per sender (the hop's connection uid) and in total, with the
//     oldest incomplete message evicted first, and incomplete messages expire after maxAgeMs;
//     every loss is counted. (lru-cache bounds one cache by size and age, but not each sender
//     within it, nor can it keep the slot being grown while it evicts: hence the bookkeeping.)
// It does not remember messages it completed: a second full copy of a message would be completed
// again. The receive path filters whole messages with the replay window (see inbound.ts), and
// checks the window before handing chunks here, so late chunks of a delivered message never open
// a slot.
//
// Pure: the time is passed in (milliseconds from any monotonic clock).
import { MAX_MESSAGE_LENGTH, MESSAGE_HEADER_LENGTH, SLEEVE_HEADER_LENGTH, type Chunk, type MessageHeader } from './header.js';
import { plainView } from './chunker.js';

export interface ReassemblerOptions {
  /** Bytes held for incomplete messages of one sender (connection). Default 4 MiB. */
  readonly maxBytesPerSender?: number;
  /** Bytes held for incomplete messages of all senders. Default 32 MiB. */
  readonly maxBytesTotal?: number;
  /** An incomplete message older than this is dropped. Default 1000 ms. */
  readonly maxAgeMs?: number;
}

export interface ReassembledMessage {
  readonly header: MessageHeader;
  /** The message header bytes (MESSAGE_HEADER_LENGTH), the AAD to open the body with. */
  readonly aad: Uint8Array;
  /**
   * The body. For a one-chunk message a view of the received buffer (no copy); otherwise a buffer
   * of its own.
   */
  readonly body: Uint8Array;
}

export type ReassemblyRejection =
  | 'inconsistent' // a chunk's message header differs from the other chunks' of its message
  | 'chunk-length' // a chunk's size does not fit the others' (or an empty non-final chunk)
  | 'too-large'; // the message would exceed MAX_MESSAGE_LENGTH or the memory bounds

export type ReassemblyResult =
  | { readonly status: 'complete'; readonly message: ReassembledMessage }
  | { readonly status: 'pending' }
  | { readonly status: 'duplicate' }
  | { readonly status: 'rejected'; readonly reason: ReassemblyRejection };

export interface ReassemblerStats {
  readonly chunks: number;
  readonly completed: number;
  readonly duplicates: number;
  readonly rejected: number;
  /** Incomplete messages dropped because they were too old. */
  readonly expired: number;
  /** Incomplete messages dropped to stay within the memory bounds. */
  readonly evicted: number;
  readonly pending: number;
  readonly bytesHeld: number;
}

/** Charged per incomplete message on top of its bytes, so that many tiny ones are bounded too. */
export const ENTRY_OVERHEAD = 256;

const PENDING: ReassemblyResult = Object.freeze({ status: 'pending' });
const DUPLICATE: ReassemblyResult = Object.freeze({ status: 'duplicate' });
const rejection = (reason: ReassemblyRejection): ReassemblyResult => Object.freeze({ status: 'rejected', reason });
const REJECTED = {
  inconsistent: rejection('inconsistent'),
  'chunk-length': rejection('chunk-length'),
  'too-large': rejection('too-large'),
} as const;

interface Sender {
  readonly uid: bigint;
  /** Incomplete messages by sequence, oldest first (Map keeps insertion order). */
  readonly pending: Map<number, Pending>;
  bytes: number;
}

interface Pending {
  readonly sender: Sender;
  readonly sequence: number;
  readonly createdAt: number;
  readonly header: MessageHeader;
  readonly aad: Uint8Array;
  readonly count: number;
  /** Payload bytes of every chunk but the last; -1 until a non-final chunk has arrived. */
  full: number;
  /** The final chunk's payload, kept aside while `full` (and so its place) is unknown. */
  lastAside: Uint8Array | undefined;
  lastLength: number;
  buffer: Uint8Array | undefined;
  readonly received: Uint8Array;
  receivedCount: number;
  cost: number;
}

export class Reassembler {
  private readonly maxPerSender: number;
  private readonly maxTotal: number;
  private readonly maxAge: number;
  private readonly senders = new Map<bigint, Sender>();
  /** Every incomplete message, oldest first. */
  private readonly byAge = new Set<Pending>();
  private held = 0;
  private expiredAt = Number.NaN;
  private counts = { chunks: 0, completed: 0, duplicates: 0, rejected: 0, expired: 0, evicted: 0 };

  constructor(options: ReassemblerOptions = {}) {
    this.maxPerSender = options.maxBytesPerSender ?? 4 * 1024 * 1024;
    this.maxTotal = options.maxBytesTotal ?? 32 * 1024 * 1024;
    this.maxAge = options.maxAgeMs ?? 1000;
  }

  get stats(): ReassemblerStats {
    return { ...this.counts, pending: this.byAge.size, bytesHeld: this.held };
  }

  /** Takes one chunk (from splitDatagram). Copies what it keeps: `chunk.bytes` may be reused. */
  accept(chunk: Chunk, nowMs: number): ReassemblyResult {
    this.counts.chunks++;
    // Once per distinct time: the chunks of one batch usually share it.
    if (nowMs !== this.expiredAt) this.expire(nowMs);
    if (chunk.chunkCount === 1) {
      // The common case for frames that are not super-frames: nothing to hold, nothing to copy.
      this.counts.completed++;
      const start = chunk.offset + SLEEVE_HEADER_LENGTH;
      return {
        status: 'complete',
        message: {
          header: chunk,
          aad: chunk.bytes.subarray(chunk.offset, chunk.offset + MESSAGE_HEADER_LENGTH),
          body: chunk.bytes.subarray(start, start + chunk.chunkLength),
        },
      };
    }
    const sender = this.senders.get(chunk.connectionUid);
    const existing = sender?.pending.get(chunk.sequence);
    const result = existing ? this.addTo(existing, chunk) : this.start(chunk, nowMs);
    if (result.status === 'rejected') this.counts.rejected++;
    else if (result.status === 'duplicate') this.counts.duplicates++;
    else if (result.status === 'complete') this.counts.completed++;
    return result;
  }

  /** Drops incomplete messages older than maxAgeMs; returns how many. */
  expire(nowMs: number): number {
    this.expiredAt = nowMs;
    let n = 0;
    for (const p of this.byAge) {
      if (nowMs - p.createdAt < this.maxAge) break; // the rest are younger
      this.remove(p);
      n++;
    }
    this.counts.expired += n;
    return n;
  }

  /** Drops what is held for a connection (it closed). */
  forgetSender(connectionUid: bigint): void {
    const sender = this.senders.get(connectionUid);
    if (!sender) return;
    for (const p of [...sender.pending.values()]) this.remove(p);
  }

  private start(chunk: Chunk, nowMs: number): ReassemblyResult {
    const last = chunk.chunkIndex === chunk.chunkCount - 1;
    if (chunk.chunkLength === 0) return REJECTED['chunk-length']; // only a one-chunk message may be empty
    if (!last && (chunk.chunkCount - 1) * chunk.chunkLength + 1 > MAX_MESSAGE_LENGTH) return REJECTED['too-large'];
    // Every chunk is at least as long as the final one.
    if (last && chunk.chunkCount * chunk.chunkLength > MAX_MESSAGE_LENGTH) return REJECTED['too-large'];
    const initialCost = ENTRY_OVERHEAD + (last ? chunk.chunkLength : chunk.chunkCount * chunk.chunkLength);
    const sender: Sender = this.senders.get(chunk.connectionUid) ?? { uid: chunk.connectionUid, pending: new Map(), bytes: 0 };
    if (!this.makeRoom(sender, initialCost, undefined)) return REJECTED['too-large'];
    // (Making room may have emptied the sender and so dropped it from the map.)
    this.senders.set(sender.uid, sender);
    const p: Pending = {
      sender,
      sequence: chunk.sequence,
      createdAt: nowMs,
      header: copyHeader(chunk),
      aad: copyOf(chunk.bytes, chunk.offset, MESSAGE_HEADER_LENGTH),
      count: chunk.chunkCount,
      full: -1,
      lastAside: undefined,
      lastLength: -1,
      buffer: undefined,
      received: new Uint8Array(chunk.chunkCount),
      receivedCount: 0,
      cost: 0,
    };
    sender.pending.set(p.sequence, p);
    this.byAge.add(p);
    this.charge(p, initialCost);
    this.store(p, chunk);
    return PENDING;
  }

  private addTo(p: Pending, chunk: Chunk): ReassemblyResult {
    if (!sameBytes(p.aad, chunk.bytes, chunk.offset)) return REJECTED.inconsistent;
    if (p.received[chunk.chunkIndex] === 1) return DUPLICATE;
    const last = chunk.chunkIndex === p.count - 1;
    const length = chunk.chunkLength;
    if (length === 0) return REJECTED['chunk-length'];
    if (last) {
      if (p.full >= 0 && length > p.full) return REJECTED['chunk-length'];
    } else if (p.full >= 0) {
      if (length !== p.full) return REJECTED['chunk-length'];
    } else {
      // The first non-final chunk: now the buffer's size is known.
      if (p.lastLength > length) return REJECTED['chunk-length'];
      if ((p.count - 1) * length + Math.max(1, p.lastLength) > MAX_MESSAGE_LENGTH) return REJECTED['too-large'];
      const cost = ENTRY_OVERHEAD + p.count * length;
      if (!this.makeRoom(p.sender, cost - p.cost, p)) {
        // It cannot be held at its real size: the whole message is lost (counted as evicted).
        this.remove(p);
        this.counts.evicted++;
        return REJECTED['too-large'];
      }
      this.charge(p, cost - p.cost);
    }
    this.store(p, chunk);
    if (p.receivedCount < p.count) return PENDING;
    this.remove(p);
    const total = (p.count - 1) * p.full + p.lastLength;
    return { status: 'complete', message: { header: p.header, aad: p.aad, body: p.buffer!.subarray(0, total) } };
  }

  /** Records a chunk that passed the checks: copies its payload into place. */
  private store(p: Pending, chunk: Chunk): void {
    const index = chunk.chunkIndex;
    const last = index === p.count - 1;
    const start = chunk.offset + SLEEVE_HEADER_LENGTH;
    const payload = chunk.bytes.subarray(start, start + chunk.chunkLength);
    if (!last && p.full < 0) {
      p.full = chunk.chunkLength;
      // Not zero-filled: only bytes every chunk has written are ever returned.
      // A plain Uint8Array over it: the per-chunk copies into a Buffer cost more (see plainView).
      p.buffer = plainView(Buffer.allocUnsafeSlow(p.count * p.full));
      if (p.lastAside) {
        p.buffer.set(p.lastAside, (p.count - 1) * p.full);
        p.lastAside = undefined;
      }
    }
    if (last) p.lastLength = chunk.chunkLength;
    if (p.buffer) p.buffer.set(payload, index * p.full);
    else p.lastAside = copyOf(payload, 0, payload.length);
    p.received[index] = 1;
    p.receivedCount++;
  }

  /**
   * Evicts the oldest incomplete messages (never `keep`) until `extra` more bytes fit the sender's
   * and the total bound. False when they cannot fit even then.
   */
  private makeRoom(sender: Sender, extra: number, keep: Pending | undefined): boolean {
    const keepCost = keep ? keep.cost : 0;
    if (keepCost + extra > this.maxPerSender || keepCost + extra > this.maxTotal) return false;
    while (sender.bytes + extra > this.maxPerSender) {
      const victim = firstOther(sender.pending.values(), keep);
      if (!victim) return false;
      this.remove(victim);
      this.counts.evicted++;
    }
    while (this.held + extra > this.maxTotal) {
      const victim = firstOther(this.byAge.values(), keep);
      if (!victim) return false;
      this.remove(victim);
      this.counts.evicted++;
    }
    return true;
  }

  private charge(p: Pending, bytes: number): void {
    p.cost += bytes;
    p.sender.bytes += bytes;
    this.held += bytes;
  }

  private remove(p: Pending): void {
    this.byAge.delete(p);
    p.sender.pending.delete(p.sequence);
    p.sender.bytes -= p.cost;
    this.held -= p.cost;
    p.cost = 0;
    if (p.sender.pending.size === 0) this.senders.delete(p.sender.uid);
  }
}

function firstOther(items: IterableIterator<Pending>, keep: Pending | undefined): Pending | undefined {
  for (const p of items) if (p !== keep) return p;
  return undefined;
}

/** A copy (not `slice`: on a Buffer that is a view, and the caller may reuse its buffer). */
function copyOf(b: Uint8Array, start: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(b.subarray(start, start + length));
  return out;
}

/**
 * Whether a chunk carries the message header of its slot. Bytes 16..31 (connection uid and
 * sequence) are equal already: the slot was found by them, and their encoding is one-to-one.
 */
function sameBytes(aad: Uint8Array, bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 16; i++) if (aad[i] !== bytes[offset + i]) return false;
  return aad[32] === bytes[offset + 32];
}

/** The message fields of a chunk, without its reference to the received buffer. */
function copyHeader(c: Chunk): MessageHeader {
  return {
    kind: c.kind,
    vnetHdr: c.vnetHdr,
    sealed: c.sealed,
    fromDialler: c.fromDialler,
    keyPhase: c.keyPhase,
    srcPeer: c.srcPeer,
    dstPeer: c.dstPeer,
    connectionUid: c.connectionUid,
    sequence: c.sequence,
    chunkCount: c.chunkCount,
  };
}
