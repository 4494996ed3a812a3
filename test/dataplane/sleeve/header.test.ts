import t from 'tap';
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import {
  MESSAGE_HEADER_LENGTH,
  SLEEVE_HEADER_LENGTH,
  SLEEVE_MAGIC,
  SleeveFormatError,
  chunkMessageHeader,
  chunkPayload,
  chunkStride,
  decodeChunk,
  messageHeaderBytes,
  overlayMtu,
  writeChunkHeader,
  type Chunk,
  type FormatErrorReason,
  type MessageHeader,
} from '../../../src/dataplane/sleeve/header.js';
import { messageHeader } from './arbitraries.js';

const REASONS: readonly FormatErrorReason[] = ['short', 'magic', 'version', 'kind', 'flags', 'sequence', 'chunk-count', 'chunk-index', 'chunk-length'];

const sample: MessageHeader = {
  kind: 1,
  vnetHdr: true,
  sealed: true,
  fromDialler: false,
  keyPhase: 1,
  srcPeer: 0x02_11_22_33_44_55,
  dstPeer: 0x0a_bb_cc_dd_ee_ff,
  connectionUid: 0x0102030405060708n,
  sequence: 2 ** 40 + 7,
  chunkCount: 3,
};

function encode(h: MessageHeader, index: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(SLEEVE_HEADER_LENGTH + payload.length);
  writeChunkHeader(b, 0, h, index, payload.length);
  b.set(payload, SLEEVE_HEADER_LENGTH);
  return b;
}

function reasonOf(r: Chunk | SleeveFormatError): string {
  return r instanceof SleeveFormatError ? r.reason : 'ok';
}

t.test('the layout is the documented one, byte for byte', async () => {
  const b = encode(sample, 1, Uint8Array.of(0xaa, 0xbb));
  deepStrictEqual(
    b.toString('hex'),
    [
      'f7', '01', '01', '0b', // magic, version, kind frame, flags vnet|sealed|key phase 1
      '021122334455', '0abbccddeeff', // source, destination
      '0102030405060708', // connection uid
      '0000010000000007', // sequence 2^40 + 7
      '03', '01', '0002', // count, index, length
      'aabb',
    ].join(''),
  );
  deepStrictEqual(Buffer.from(messageHeaderBytes(sample)), b.subarray(0, MESSAGE_HEADER_LENGTH));
});

t.test('encode then decode gives back every field, the payload and the AAD bytes', async () => {
  fc.assert(
    fc.property(messageHeader(), fc.nat(), fc.uint8Array({ maxLength: 200, size: 'max' }), (h, i, payload) => {
      const index = i % h.chunkCount;
      const b = encode(h, index, payload);
      const r = decodeChunk(b, 0, b.length);
      if (r instanceof SleeveFormatError) throw new Error(`refused: ${r.detail}`);
      const { chunkIndex, chunkLength, bytes, offset, ...fields } = r;
      deepStrictEqual(fields, { ...h });
      equal(chunkIndex, index);
      equal(chunkLength, payload.length);
      equal(bytes, b);
      equal(offset, 0);
      deepStrictEqual(Buffer.from(chunkPayload(r)), Buffer.from(payload));
      deepStrictEqual(Buffer.from(chunkMessageHeader(r)), Buffer.from(messageHeaderBytes(h)));
    }),
  );
});

t.test('a chunk inside a larger buffer decodes at its offset', async () => {
  const inner = encode(sample, 2, Uint8Array.of(1, 2, 3));
  const outer = Buffer.concat([Buffer.alloc(5, 9), inner, Buffer.alloc(4, 9)]);
  const r = decodeChunk(outer, 5, inner.length);
  ok(!(r instanceof SleeveFormatError));
  deepStrictEqual([...chunkPayload(r)], [1, 2, 3]);
  equal(reasonOf(decodeChunk(outer, 5, inner.length + 1)), 'chunk-length');
});

t.test('malformed headers are refused with the reason that names them', async () => {
  const good = encode(sample, 1, Uint8Array.of(7, 7, 7));
  const with_ = (at: number, value: number): Buffer => {
    const b = Buffer.from(good);
    b[at] = value;
    return b;
  };
  const cases: Array<[string, Uint8Array, number, FormatErrorReason]> = [
    ['empty', new Uint8Array(0), 0, 'short'],
    ['one byte short of a header', good.subarray(0, SLEEVE_HEADER_LENGTH - 1), SLEEVE_HEADER_LENGTH - 1, 'short'],
    ['payload cut', good.subarray(0, good.length - 1), good.length - 1, 'short'],
    ['wrong magic', with_(0, 0x57), good.length, 'magic'],
    ['wrong version', with_(1, 2), good.length, 'version'],
    ['kind 0', with_(2, 0), good.length, 'kind'],
    ['unknown kind 6', with_(2, 6), good.length, 'kind'],
    ['reserved flag', with_(3, 0x10), good.length, 'flags'],
    ['key phase on a plain message', with_(3, 0x09), good.length, 'flags'],
    ['sequence 2^53', with_(24 + 1, 0x20), good.length, 'sequence'],
    ['count 0', with_(32, 0), good.length, 'chunk-count'],
    ['index = count', with_(33, 3), good.length, 'chunk-index'],
    ['index > count', with_(33, 200), good.length, 'chunk-index'],
    ['length says less than follows', with_(35, 2), good.length, 'chunk-length'],
    ['length says more than follows', with_(35, 4), good.length, 'short'],
  ];
  for (const [name, bytes, length, reason] of cases) {
    const r = decodeChunk(bytes, 0, Math.min(length, bytes.length));
    equal(reasonOf(r), reason, name);
    if (r instanceof SleeveFormatError) ok(r.detail.length > 0);
  }
  equal(reasonOf(decodeChunk(good, 0, good.length)), 'ok');
  // A region past the end of the buffer is "short", not a read out of bounds.
  equal(reasonOf(decodeChunk(good, 10, good.length)), 'short');
  equal(reasonOf(decodeChunk(good, -1, good.length)), 'short');
});

t.test('random bytes never throw: a chunk or a SleeveFormatError with a known reason', async () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120, size: 'max' }), fc.boolean(), (raw, plausible) => {
      const b = Uint8Array.from(raw);
      if (plausible && b.length >= 2) {
        b[0] = SLEEVE_MAGIC; // get past the first checks more often
        b[1] = 1;
      }
      const r = decodeChunk(b, 0, b.length);
      if (r instanceof SleeveFormatError) ok(REASONS.includes(r.reason), r.reason);
      else equal(r.chunkLength, b.length - SLEEVE_HEADER_LENGTH);
    }),
    { numRuns: 5000 },
  );
});

t.test('one changed byte of a valid chunk decodes to a valid chunk or a known refusal', async () => {
  fc.assert(
    fc.property(messageHeader(), fc.uint8Array({ maxLength: 40, size: 'max' }), fc.nat(), fc.integer({ min: 1, max: 255 }), (h, payload, at, xor) => {
      const b = encode(h, 0, payload);
      b[at % b.length]! ^= xor;
      const r = decodeChunk(b, 0, b.length);
      if (r instanceof SleeveFormatError) ok(REASONS.includes(r.reason));
    }),
    { numRuns: 3000 },
  );
});

t.test('our own out-of-range values are a RangeError, before anything is written', async (t) => {
  const b = Buffer.alloc(64);
  const bad: Array<[string, MessageHeader, number, number]> = [
    ['kind', { ...sample, kind: 9 as never }, 0, 0],
    ['key phase 2', { ...sample, keyPhase: 2 }, 0, 0],
    ['key phase on a plain message', { ...sample, sealed: false, keyPhase: 1 }, 0, 0],
    ['source peer', { ...sample, srcPeer: 2 ** 48 }, 0, 0],
    ['destination peer', { ...sample, dstPeer: -1 }, 0, 0],
    ['sequence', { ...sample, sequence: 2 ** 53 }, 0, 0],
    ['fractional sequence', { ...sample, sequence: 1.5 }, 0, 0],
    ['count', { ...sample, chunkCount: 256 }, 0, 0],
    ['uid', { ...sample, connectionUid: 2n ** 64n }, 0, 0],
    ['index', sample, 3, 0],
    ['length', sample, 0, 65536],
  ];
  for (const [name, h, index, length] of bad) {
    t.throws(() => writeChunkHeader(b, 0, h, index, length), RangeError, name);
  }
  ok(b.every((x) => x === 0));
});

t.test('overlay MTU for a 1500-byte underlay: 1412 plain, 1396 encrypted', async () => {
  equal(chunkStride(1500), 1472);
  equal(chunkStride(1500, true), 1452);
  equal(overlayMtu(1500, { encrypted: false }), 1500 - 28 - 36 - 10 - 14);
  equal(overlayMtu(1500, { encrypted: false }), 1412);
  equal(overlayMtu(1500, { encrypted: true }), 1396);
  equal(overlayMtu(1500, { encrypted: false, vnetHdr: false }), 1422);
  equal(overlayMtu(9000, { encrypted: true }), 8896);
  equal(overlayMtu(1500, { encrypted: true, ipv6: true }), 1376);
  // Weave's default overlay MTU fits either way, and a full frame is then exactly one datagram.
  ok(overlayMtu(1500, { encrypted: true }) >= 1376);
  equal(14 + 10 + 1396 + 16 + SLEEVE_HEADER_LENGTH + 28, 1500);
});

t.test('chunkStride refuses an underlay MTU no IPv4 link may have', async (t) => {
  t.throws(() => chunkStride(575), RangeError);
  t.throws(() => chunkStride(65536), RangeError);
  t.throws(() => chunkStride(1500.5), RangeError);
  equal(chunkStride(576), 548);
});
