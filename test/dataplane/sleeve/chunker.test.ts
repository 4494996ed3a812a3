import t from 'tap';
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_GSO_SEGMENTS,
  MAX_UDP_PAYLOAD,
  chunkCountFor,
  chunkPayloadSize,
  chunksPerSend,
  layoutChunks,
  splitDatagram,
} from '../../../src/dataplane/sleeve/chunker.js';
import {
  MAX_MESSAGE_LENGTH,
  SLEEVE_HEADER_LENGTH,
  SleeveFormatError,
  chunkPayload,
  chunkStride,
  type Chunk,
  type MessageHeader,
} from '../../../src/dataplane/sleeve/header.js';
import { Reassembler } from '../../../src/dataplane/sleeve/reassembler.js';
import { bytes, messageHeader } from './arbitraries.js';

const base: MessageHeader = {
  kind: 1,
  vnetHdr: true,
  sealed: false,
  fromDialler: true,
  keyPhase: 0,
  srcPeer: 0x02_00_00_00_00_01,
  dstPeer: 0x02_00_00_00_00_02,
  connectionUid: 42n,
  sequence: 0,
  chunkCount: 1,
};

function chunksOf(sends: readonly Buffer[], stride: number): Chunk[] {
  // What a socket without UDP_GRO hands up: one datagram per `stride` bytes of each send.
  const out: Chunk[] = [];
  for (const send of sends) {
    for (let at = 0; at < send.length; at += stride) {
      const [c, ...rest] = splitDatagram(send.subarray(at, Math.min(at + stride, send.length)));
      equal(rest.length, 0);
      if (!c || c instanceof SleeveFormatError) throw new Error(`segment did not decode: ${c?.detail}`);
      out.push(c);
    }
  }
  return out;
}

t.test('a 62 KB super-frame on a 1500 underlay: 44 chunks of 1472 B in ONE send', async () => {
  const stride = chunkStride(1500);
  const body = bytes(62000 + 14 + 10 + 16, 1);
  const count = chunkCountFor(body.length, stride);
  equal(count, 44);
  const sends = layoutChunks({ ...base, chunkCount: count }, body, stride);
  equal(sends.length, 1);
  const send = sends[0]!;
  ok(send.length <= MAX_UDP_PAYLOAD);
  equal(send.length, body.length + count * SLEEVE_HEADER_LENGTH);
  const chunks = chunksOf(sends, stride);
  equal(chunks.length, 44);
  chunks.forEach((c, i) => {
    equal(c.chunkIndex, i);
    equal(c.chunkLength, i < 43 ? stride - SLEEVE_HEADER_LENGTH : body.length - 43 * (stride - SLEEVE_HEADER_LENGTH));
  });
  deepStrictEqual(Buffer.concat(chunks.map(chunkPayload)), Buffer.from(body));
});

t.test('layout invariants for any body, stride and split into pieces', async () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 576, max: 9000 }),
      fc.integer({ min: 0, max: 70_000 }),
      fc.array(fc.nat(), { maxLength: 4, size: 'max' }),
      fc.nat(),
      (mtu, length, cuts, seed) => {
        const stride = chunkStride(mtu);
        const count = Math.ceil(Math.max(1, length) / (stride - SLEEVE_HEADER_LENGTH));
        if (count > 255) return;
        const body = bytes(length, seed + 1);
        // The same body in pieces that do not line up with chunks (some of them empty).
        const points = [...new Set(cuts.map((c) => c % (length + 1)))].sort((a, b) => a - b);
        const pieces = [0, ...points].map((p, i, all) => body.subarray(p, all[i + 1] ?? length));
        equal(chunkCountFor(length, stride), count);
        const sends = layoutChunks({ ...base, chunkCount: count }, pieces, stride);
        const perSend = chunksPerSend(stride);
        ok(perSend <= MAX_GSO_SEGMENTS);
        for (const [i, send] of sends.entries()) {
          ok(send.length <= MAX_UDP_PAYLOAD, 'fits one send');
          ok(send.length <= perSend * stride);
          // Every segment but the message's very last is exactly one stride.
          if (i < sends.length - 1) equal(send.length, perSend * stride);
        }
        const chunks = chunksOf(sends, stride);
        equal(chunks.length, count);
        chunks.forEach((c, i) => {
          equal(c.chunkIndex, i);
          equal(c.chunkCount, count);
        });
        deepStrictEqual(Buffer.concat(chunks.map(chunkPayload)), Buffer.from(body));
      },
    ),
    { numRuns: 300 },
  );
});

t.test('a UDP_GRO batch (coalesced chunks, short last one) splits on the first chunk’s size', async () => {
  const stride = chunkStride(1500);
  const body = bytes(10_000, 7);
  const count = chunkCountFor(body.length, stride);
  const [send] = layoutChunks({ ...base, chunkCount: count }, body, stride);
  const found = splitDatagram(send!);
  equal(found.length, count);
  const chunks = found.filter((c): c is Chunk => !(c instanceof SleeveFormatError));
  equal(chunks.length, count);
  deepStrictEqual(Buffer.concat(chunks.map(chunkPayload)), Buffer.from(body));
  // The same with the stride given.
  equal(splitDatagram(send!, stride).filter((c) => c instanceof SleeveFormatError).length, 0);
  // Batches of one-chunk messages of one size coalesce too (heartbeats).
  const beat = layoutChunks({ ...base, kind: 2 }, new Uint8Array(0), stride)[0]!;
  const beats = splitDatagram(Buffer.concat([beat, beat, beat]));
  deepStrictEqual(beats.map((c) => (c instanceof SleeveFormatError ? c.reason : c.kind)), [2, 2, 2]);
});

t.test('one bad segment in a batch costs only itself; a bad first segment costs the batch', async () => {
  const stride = chunkStride(1500);
  const body = bytes(5000, 3);
  const count = chunkCountFor(body.length, stride);
  const [send] = layoutChunks({ ...base, chunkCount: count }, body, stride);
  const spoiled = Buffer.from(send!);
  spoiled[stride] = 0; // magic of the second chunk
  const r = splitDatagram(spoiled);
  deepStrictEqual(
    r.map((c) => (c instanceof SleeveFormatError ? c.reason : 'ok')),
    ['ok', 'magic', ...Array<string>(count - 2).fill('ok')],
  );
  const first = Buffer.from(send!);
  first[0] = 0;
  deepStrictEqual(splitDatagram(first).map((c) => (c instanceof SleeveFormatError ? c.reason : 'ok')), ['magic']);
  // Told the stride, the others survive a bad first one.
  deepStrictEqual(
    splitDatagram(first, stride).map((c) => (c instanceof SleeveFormatError ? c.reason : 'ok')),
    ['magic', ...Array<string>(count - 1).fill('ok')],
  );
  // A buffer too short for a header.
  deepStrictEqual(splitDatagram(new Uint8Array(5)).map((c) => (c as SleeveFormatError).reason), ['short']);
  deepStrictEqual(splitDatagram(new Uint8Array(0)).map((c) => (c as SleeveFormatError).reason), ['short']);
});

t.test('random buffers: splitting never throws and yields only chunks or format errors', async () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000, size: 'max' }), fc.option(fc.integer({ min: 36, max: 1500 })), (raw, stride) => {
      for (const c of splitDatagram(raw, stride ?? undefined)) {
        if (!(c instanceof SleeveFormatError)) ok(c.offset + SLEEVE_HEADER_LENGTH + c.chunkLength <= raw.length);
      }
    }),
    { numRuns: 2000 },
  );
});

t.test('chunks of random messages, shuffled, duplicated and partly lost: a message comes out whole or not at all', async () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          header: messageHeader(fc.constant(1)),
          length: fc.integer({ min: 0, max: 12_000 }),
          lose: fc.boolean(),
        }),
        { minLength: 1, maxLength: 6, size: 'max' },
      ),
      fc.integer({ min: 576, max: 3000 }),
      fc.infiniteStream(fc.nat()),
      (messages, mtu, random) => {
        const stride = chunkStride(mtu);
        const r = new Reassembler();
        const sent = new Map<string, { body: Uint8Array; complete: boolean }>();
        const pool: Chunk[] = [];
        messages.forEach((m, i) => {
          // Distinct (uid, sequence) per message, as on a real connection.
          const header = { ...m.header, sequence: i, chunkCount: chunkCountFor(m.length, stride) };
          const body = bytes(m.length, i + 11);
          const chunks = chunksOf(layoutChunks(header, body, stride), stride);
          const dropped = m.lose && chunks.length > 1 ? (random.next().value as number) % chunks.length : -1;
          sent.set(`${header.connectionUid}:${i}`, { body, complete: dropped < 0 });
          for (const [k, c] of chunks.entries()) {
            if (k === dropped) continue;
            pool.push(c);
            if ((random.next().value as number) % 4 === 0) pool.push(c); // duplicate
          }
        });
        for (let i = pool.length - 1; i > 0; i--) {
          const j = (random.next().value as number) % (i + 1);
          [pool[i], pool[j]] = [pool[j]!, pool[i]!];
        }
        const got = new Set<string>();
        for (const c of pool) {
          const res = r.accept(c, 0);
          if (res.status !== 'complete') continue;
          const key = `${res.message.header.connectionUid}:${res.message.header.sequence}`;
          // Whatever completes is exactly what was sent. (When every chunk of a message arrives
          // twice it completes twice: the replay window drops the copy, see link.test.ts.)
          const original = sent.get(key);
          ok(original?.complete, `incomplete ${key} delivered`);
          deepStrictEqual(Buffer.from(res.message.body), Buffer.from(original.body), key);
          got.add(key);
        }
        for (const [key, { complete }] of sent) equal(got.has(key), complete, key);
      },
    ),
    { numRuns: 150 },
  );
});

t.test('sizes we never send are a RangeError on our side', async (t) => {
  const stride = chunkStride(1500);
  t.throws(() => chunkCountFor(MAX_MESSAGE_LENGTH + 1, stride), RangeError);
  t.throws(() => chunkCountFor(-1, stride), RangeError);
  t.throws(() => chunkCountFor(10, SLEEVE_HEADER_LENGTH), RangeError);
  t.throws(() => chunkCountFor(60_000, 100), RangeError); // 938 chunks
  t.throws(() => layoutChunks({ ...base, chunkCount: 2 }, new Uint8Array(10), stride), RangeError);
  equal(chunkPayloadSize(stride), 1436);
  equal(chunksPerSend(1472), 44);
  equal(chunksPerSend(548), 64);
  equal(chunksPerSend(8972), 7);
});
