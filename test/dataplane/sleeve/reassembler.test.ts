import t from 'tap';
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import { chunkCountFor, layoutChunks, splitDatagram } from '../../../src/dataplane/sleeve/chunker.js';
import {
  MAX_MESSAGE_LENGTH,
  SLEEVE_HEADER_LENGTH,
  SleeveFormatError,
  chunkStride,
  writeChunkHeader,
  type Chunk,
  type MessageHeader,
} from '../../../src/dataplane/sleeve/header.js';
import { ENTRY_OVERHEAD, Reassembler, type ReassemblyResult } from '../../../src/dataplane/sleeve/reassembler.js';
import { bytes } from './arbitraries.js';

const STRIDE = chunkStride(1500);
const FULL = STRIDE - SLEEVE_HEADER_LENGTH;

const header = (connectionUid: bigint, sequence: number, count: number): MessageHeader => ({
  kind: 1,
  vnetHdr: true,
  sealed: true,
  fromDialler: false,
  keyPhase: 0,
  srcPeer: 1,
  dstPeer: 2,
  connectionUid,
  sequence,
  chunkCount: count,
});

/** The chunks of a message of `length` bytes. */
function message(uid: bigint, sequence: number, length: number, seed = sequence + 1): { body: Uint8Array; chunks: Chunk[] } {
  const body = bytes(length, seed);
  const [send] = layoutChunks(header(uid, sequence, chunkCountFor(length, STRIDE)), body, STRIDE);
  const chunks = splitDatagram(send!).map((c) => {
    if (c instanceof SleeveFormatError) throw new Error(c.detail);
    return c;
  });
  return { body, chunks };
}

/** A hand-made chunk: any header fields, any length. */
function rawChunk(h: MessageHeader, index: number, payload: Uint8Array): Chunk {
  const b = Buffer.alloc(SLEEVE_HEADER_LENGTH + payload.length);
  writeChunkHeader(b, 0, h, index, payload.length);
  b.set(payload, SLEEVE_HEADER_LENGTH);
  const [c] = splitDatagram(b);
  if (!c || c instanceof SleeveFormatError) throw new Error('bad test chunk');
  return c;
}

const status = (r: ReassemblyResult): string => (r.status === 'rejected' ? `rejected:${r.reason}` : r.status);

t.test('in any order, with duplicates, the message completes exactly when its last missing chunk arrives', async () => {
  const { body, chunks } = message(1n, 5, 20_000);
  equal(chunks.length, 14);
  const r = new Reassembler();
  const order = [13, 3, 3, 0, 12, 1, 2, 13, 4, 5, 6, 7, 8, 9, 10, 11];
  const seen = new Set<number>();
  for (const i of order) {
    const res = r.accept(chunks[i]!, 0);
    const dup = seen.has(i);
    seen.add(i);
    if (seen.size < 14) equal(status(res), dup ? 'duplicate' : 'pending', `chunk ${i}`);
    else {
      ok(res.status === 'complete');
      deepStrictEqual(Buffer.from(res.message.body), Buffer.from(body));
      equal(res.message.aad.length, 33);
    }
  }
  deepStrictEqual({ ...r.stats, chunks: 0 }, { chunks: 0, completed: 1, duplicates: 2, rejected: 0, expired: 0, evicted: 0, pending: 0, bytesHeld: 0 });
});

t.test('a one-chunk message is returned at once, as a view of the datagram', async () => {
  const { body, chunks } = message(1n, 0, 100);
  const res = new Reassembler().accept(chunks[0]!, 0);
  ok(res.status === 'complete');
  equal(res.message.body.buffer, chunks[0]!.bytes.buffer);
  deepStrictEqual(Buffer.from(res.message.body), Buffer.from(body));
});

t.test('what it returns does not depend on the received buffers afterwards (they may be reused)', async () => {
  const { body, chunks } = message(1n, 0, 5000);
  const r = new Reassembler();
  for (const c of chunks.slice(0, -1)) r.accept(c, 0);
  for (const c of chunks.slice(0, -1)) (c.bytes as Buffer).fill(0, c.offset, c.offset + SLEEVE_HEADER_LENGTH + c.chunkLength);
  const res = r.accept(chunks.at(-1)!, 0);
  ok(res.status === 'complete');
  deepStrictEqual(Buffer.from(res.message.body), Buffer.from(body));
});

t.test('chunks that disagree with their message are refused, and do not spoil it', async () => {
  const { body, chunks } = message(7n, 3, 4000); // 3 chunks: 1436, 1436, 1128
  const r = new Reassembler();
  equal(status(r.accept(chunks[0]!, 0)), 'pending');
  // Another message header (kind) with the same uid and sequence.
  equal(status(r.accept(rawChunk({ ...header(7n, 3, 3), kind: 2 }, 1, bytes(FULL, 9)), 0)), 'rejected:inconsistent');
  // A middle chunk of another size.
  equal(status(r.accept(rawChunk(header(7n, 3, 3), 1, bytes(FULL - 1, 9)), 0)), 'rejected:chunk-length');
  // A final chunk longer than the others.
  equal(status(r.accept(rawChunk(header(7n, 3, 3), 2, bytes(FULL + 1, 9)), 0)), 'rejected:chunk-length');
  // An empty chunk of a multi-chunk message.
  equal(status(r.accept(rawChunk(header(7n, 3, 3), 1, new Uint8Array(0)), 0)), 'rejected:chunk-length');
  equal(status(r.accept(chunks[2]!, 0)), 'pending');
  const res = r.accept(chunks[1]!, 0);
  ok(res.status === 'complete');
  deepStrictEqual(Buffer.from(res.message.body), Buffer.from(body));
  equal(r.stats.rejected, 4);
});

t.test('a final chunk first, then a shorter middle one: refused (the final is never the longest)', async () => {
  const r = new Reassembler();
  equal(status(r.accept(rawChunk(header(1n, 0, 3), 2, bytes(500, 1)), 0)), 'pending');
  equal(status(r.accept(rawChunk(header(1n, 0, 3), 0, bytes(400, 1)), 0)), 'rejected:chunk-length');
  equal(status(r.accept(rawChunk(header(1n, 0, 3), 0, bytes(500, 1)), 0)), 'pending');
  const res = r.accept(rawChunk(header(1n, 0, 3), 1, bytes(500, 2)), 0);
  ok(res.status === 'complete');
  equal(res.message.body.length, 1500);
});

t.test('claims of huge messages are refused before anything is allocated', async () => {
  const r = new Reassembler();
  // 255 chunks of 60 000 bytes would be 15 MB.
  equal(status(r.accept(rawChunk(header(1n, 0, 255), 0, bytes(60_000, 1)), 0)), 'rejected:too-large');
  equal(status(r.accept(rawChunk(header(1n, 1, 255), 254, bytes(1000, 1)), 0)), 'rejected:too-large');
  equal(r.stats.bytesHeld, 0);
  // The largest message we accept.
  const n = Math.floor(MAX_MESSAGE_LENGTH / 1000);
  equal(status(r.accept(rawChunk(header(1n, 2, n), 0, bytes(1000, 1)), 0)), 'pending');
  ok(r.stats.bytesHeld <= MAX_MESSAGE_LENGTH + ENTRY_OVERHEAD);
});

t.test('incomplete messages expire after maxAgeMs, oldest first; the time is the caller’s', async () => {
  const r = new Reassembler({ maxAgeMs: 100 });
  const a = message(1n, 0, 3000);
  const b = message(1n, 1, 3000);
  r.accept(a.chunks[0]!, 1000);
  r.accept(b.chunks[0]!, 1050);
  equal(r.stats.pending, 2);
  equal(r.expire(1099), 0);
  equal(r.expire(1100), 1);
  equal(r.stats.pending, 1);
  // a is gone: its other chunks start afresh and never complete it.
  equal(status(r.accept(a.chunks[1]!, 1101)), 'pending');
  equal(status(r.accept(a.chunks[2]!, 1101)), 'pending');
  // b still completes in time.
  equal(status(r.accept(b.chunks[1]!, 1120)), 'pending');
  equal(status(r.accept(b.chunks[2]!, 1149)), 'complete');
  // Expiry also happens as chunks arrive.
  r.accept(message(2n, 0, 3000).chunks[0]!, 5000);
  deepStrictEqual([r.stats.pending, r.stats.expired], [1, 2]);
  equal(r.stats.bytesHeld > 0, true);
});

t.test('memory: per sender and in total, the oldest incomplete message is evicted first', async () => {
  const per = 3 * (ENTRY_OVERHEAD + 3 * FULL); // three 3-chunk messages per sender
  const r = new Reassembler({ maxBytesPerSender: per, maxBytesTotal: 2 * per });
  const first = (uid: bigint, seq: number) => message(uid, seq, 3000).chunks[0]!;
  for (let s = 0; s < 3; s++) equal(status(r.accept(first(1n, s), 0)), 'pending');
  equal(r.stats.bytesHeld, per);
  equal(status(r.accept(first(1n, 3), 0)), 'pending'); // evicts (1, 0)
  equal(r.stats.evicted, 1);
  equal(r.stats.pending, 3);
  const m1 = message(1n, 1, 3000);
  equal(status(r.accept(m1.chunks[1]!, 0)), 'pending'); // (1, 1) is still there
  equal(status(r.accept(m1.chunks[2]!, 0)), 'complete');
  // Another sender fills the rest, then pushes out the globally oldest.
  for (let s = 0; s < 4; s++) r.accept(first(2n, s), 0);
  ok(r.stats.bytesHeld <= 2 * per);
  const m0 = message(1n, 0, 3000);
  equal(status(r.accept(m0.chunks[1]!, 0)), 'pending'); // (1, 0) was evicted: starts again
});

t.test('bounds hold whatever arrives: random chunks from random senders never exceed them', async () => {
  const per = 64 * 1024;
  const total = 160 * 1024;
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          uid: fc.integer({ min: 1, max: 5 }),
          seq: fc.integer({ min: 0, max: 20 }),
          count: fc.integer({ min: 1, max: 40 }),
          index: fc.nat(),
          length: fc.integer({ min: 0, max: 4000 }),
          dt: fc.integer({ min: 0, max: 300 }),
        }),
        { maxLength: 300, size: 'max' },
      ),
      (ops) => {
        const r = new Reassembler({ maxBytesPerSender: per, maxBytesTotal: total, maxAgeMs: 1000 });
        let now = 0;
        for (const o of ops) {
          now += o.dt;
          const res = r.accept(rawChunk(header(BigInt(o.uid), o.seq, o.count), o.index % o.count, bytes(o.length, o.seq + 1)), now);
          if (res.status === 'complete') {
            ok(res.message.body.length <= MAX_MESSAGE_LENGTH);
          }
          ok(r.stats.bytesHeld <= total, 'total bound');
          ok(r.stats.bytesHeld >= 0);
        }
        // After everything expires, nothing is held.
        r.expire(now + 1000);
        deepStrictEqual([r.stats.pending, r.stats.bytesHeld], [0, 0]);
      },
    ),
    { numRuns: 300 },
  );
});

t.test('forgetSender releases one connection’s messages only', async () => {
  const r = new Reassembler();
  r.accept(message(1n, 0, 3000).chunks[0]!, 0);
  r.accept(message(2n, 0, 3000).chunks[0]!, 0);
  r.forgetSender(1n);
  equal(r.stats.pending, 1);
  r.forgetSender(99n);
  equal(r.stats.pending, 1);
  equal(status(r.accept(message(2n, 0, 3000).chunks[1]!, 0)), 'pending');
});
