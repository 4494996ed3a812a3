import t from 'tap';
import { deepStrictEqual, equal } from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader, MAX_FRAME_SIZE, encodeFrame } from '../../src/mesh/frame-reader.js';
import { refusal } from '../lib/refusal.js';

const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Cuts `bytes` at the given (unsorted, possibly repeated) offsets. */
function cut(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.slice(from, p)); // copies: as a socket would hand them over
    from = p;
  }
  return chunks;
}

const header = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);

t.test('a frame is a u32 big-endian length and the payload', async (t) => {
  t.same([...encodeFrame(Uint8Array.of(7, 8, 9))], [0, 0, 0, 3, 7, 8, 9]);
  t.same([...encodeFrame(new Uint8Array(0))], [0, 0, 0, 0]);
  t.same([...encodeFrame(new Uint8Array(0x010203)).subarray(0, 4)], [0, 1, 2, 3]);
});

t.test('encodeFrame accepts exactly MAX_FRAME_SIZE and refuses one byte more', async (t) => {
  t.equal(encodeFrame(new Uint8Array(MAX_FRAME_SIZE)).length, MAX_FRAME_SIZE + 4);
  t.throws(() => encodeFrame(new Uint8Array(MAX_FRAME_SIZE + 1)), RangeError);
});

t.test('many frames in one chunk, including empty ones', async (t) => {
  const payloads = [Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3), new Uint8Array(0)];
  const reader = new FrameReader();
  const frames = reader.push(concat(payloads.map(encodeFrame)));
  t.same(frames.map((f) => [...f]), payloads.map((p) => [...p]));
  t.equal(reader.buffered, 0);
});

t.test('property: the frames written come out, whatever the chunking', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (payloads, offsets) => {
        const stream = concat(payloads.map(encodeFrame));
        const reader = new FrameReader();
        const got = cut(stream, offsets).flatMap((chunk) => reader.push(chunk));
        deepStrictEqual(got.map((f) => [...f]), payloads.map((p) => [...p]));
        equal(reader.buffered, 0);
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 random streams and chunkings');
});

t.test('property: one byte at a time', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }), (payloads) => {
      const stream = concat(payloads.map(encodeFrame));
      const reader = new FrameReader();
      const got: Uint8Array[] = [];
      for (let i = 0; i < stream.length; i++) got.push(...reader.push(stream.subarray(i, i + 1)));
      deepStrictEqual(got.map((f) => [...f]), payloads.map((p) => [...p]));
    }),
    { numRuns: 100 },
  );
  t.pass('100 random streams');
});

t.test('buffered counts the bytes received but not yet returned', async (t) => {
  const reader = new FrameReader();
  t.equal(reader.buffered, 0);
  t.same(reader.push(Uint8Array.of(0, 0)), []);
  t.equal(reader.buffered, 2, 'half a header');
  t.same(reader.push(Uint8Array.of(0, 5, 1, 2)), []);
  t.equal(reader.buffered, 6, 'a header and two bytes of a 5-byte body');
  t.same(reader.push(Uint8Array.of(3, 4, 5, 0, 0)).map((f) => [...f]), [[1, 2, 3, 4, 5]]);
  t.equal(reader.buffered, 2, 'half of the next header');
});

t.test('a frame inside one chunk is a view of it, not a copy', async (t) => {
  const chunk = concat([encodeFrame(Uint8Array.of(1, 2, 3)), encodeFrame(Uint8Array.of(4))]);
  const [a, b] = new FrameReader().push(chunk);
  t.equal(a?.buffer, chunk.buffer);
  t.equal(b?.buffer, chunk.buffer);
});

t.test('a frame spread over chunks keeps no view of them', async (t) => {
  const stream = encodeFrame(Uint8Array.from({ length: 100 }, (_, i) => i));
  const first = stream.slice(0, 50);
  const second = stream.slice(50);
  const reader = new FrameReader();
  t.same(reader.push(first), []);
  first.fill(0xee); // the caller may reuse a chunk once push has returned without a frame of it
  const [frame] = reader.push(second);
  t.same([...frame!], Array.from({ length: 100 }, (_, i) => i));
});

t.test('a 10 MiB frame in 1 KiB chunks, and then a small one', async (t) => {
  const big = Uint8Array.from({ length: MAX_FRAME_SIZE }, (_, i) => (i * 7) & 255);
  const stream = concat([encodeFrame(big), encodeFrame(Uint8Array.of(42))]);
  const reader = new FrameReader();
  const got: Uint8Array[] = [];
  const started = performance.now();
  for (let i = 0; i < stream.length; i += 1024) got.push(...reader.push(stream.subarray(i, i + 1024)));
  t.comment(`10 MiB frame reassembled from 1 KiB chunks in ${(performance.now() - started).toFixed(0)} ms`);
  t.equal(got.length, 2);
  t.equal(got[0]!.length, MAX_FRAME_SIZE);
  t.ok(Buffer.from(got[0]!).equals(big), 'same bytes');
  t.same([...got[1]!], [42]);
});

t.test('a length over the limit is refused as soon as its 4 bytes are in', async (t) => {
  const reader = new FrameReader();
  t.equal(
    refusal(() => reader.push(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3))),
    `peer announced a frame of 4294967295 bytes, more than the limit of ${MAX_FRAME_SIZE}`,
  );
  t.match(refusal(() => reader.push(Uint8Array.of(1))), /4294967295/, 'and stays failed');

  const split = new FrameReader();
  t.same(split.push(Uint8Array.of(0x00, 0xa0)), []);
  t.match(refusal(() => split.push(Uint8Array.of(0x00, 0x01))), /frame of 10485761 bytes/, 'MAX + 1, header split');

  const atLimit = new FrameReader();
  t.same(atLimit.push(header(MAX_FRAME_SIZE)), [], 'exactly MAX is accepted');
  t.equal(atLimit.buffered, 4, 'only its header is held');
});
