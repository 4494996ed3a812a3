import t from 'tap';
import { deepStrictEqual } from 'node:assert/strict';
import fc from 'fast-check';
import { weft } from '../../src/proto.js';
import { peerNameFromNumber, type PeerName } from '../../src/net/peer-name.js';
import {
  decodeMessage,
  encodeMessage,
  type GossipKind,
  type GossipMessage,
  type Hello,
  type Message,
} from '../../src/mesh/envelope.js';
import { refusal } from '../lib/refusal.js';

/**
 * Contents only: payloads come back as Buffers (views of the frame), and fast-check's records
 * have no prototype.
 */
function plain(m: Message): unknown {
  switch (m.type) {
    case 'hello':
      return { type: m.type, hello: { ...m.hello, overlays: [...m.hello.overlays] } };
    case 'heartbeat':
      return { type: m.type };
    case 'gossip':
      return { type: m.type, gossip: { ...m.gossip, payload: [...m.gossip.payload] } };
  }
}

const name = (n: number): PeerName => peerNameFromNumber(n);
const hello: Hello = {
  name: name(0x02_11_22_33_44_55),
  nickname: 'node-1',
  uid: 0x0102030405060708n,
  connId: 0xfedcba9876543210n,
  shortId: 17,
  overlays: ['fastdp', 'sleeve'],
  listenPort: 6783,
  software: 'weft 0.1.0',
};
const gossip: GossipMessage = { kind: 'broadcast', channel: 'topology', src: name(2), payload: Uint8Array.of(1, 2, 3) };

// ---- round trips ----

t.test('each message type round-trips', async (t) => {
  const messages: Message[] = [
    { type: 'hello', hello },
    { type: 'hello', hello: { ...hello, overlays: [], software: '', shortId: 0, uid: 2n ** 64n - 1n, name: name(2 ** 48 - 1) } },
    { type: 'heartbeat' },
    { type: 'gossip', gossip },
    { type: 'gossip', gossip: { ...gossip, kind: 'neighbour', payload: new Uint8Array(0) } },
    { type: 'gossip', gossip: { ...gossip, kind: 'unicast', dst: name(3) } },
  ];
  for (const m of messages) t.same(plain(decodeMessage(encodeMessage(m))), plain(m), m.type);
});

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const text = (min: number, maxChars: number, maxBytes: number) =>
  fc.string({ unit: 'grapheme', minLength: min, maxLength: maxChars })
    .filter((s) => !CONTROL.test(s) && Buffer.byteLength(s) <= maxBytes);
const peerName = fc.integer({ min: 1, max: 2 ** 48 - 1 }).map(peerNameFromNumber);
const uid = fc.bigInt({ min: 1n, max: 2n ** 64n - 1n });
const helloArb: fc.Arbitrary<Hello> = fc.record({
  name: peerName,
  nickname: text(1, 60, 255),
  uid,
  connId: uid,
  shortId: fc.integer({ min: 0, max: 4095 }),
  overlays: fc.array(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), { maxLength: 4 }),
  listenPort: fc.integer({ min: 1, max: 65535 }),
  software: text(0, 30, 255),
});
const gossipArb: fc.Arbitrary<GossipMessage> = fc
  .record({
    kind: fc.constantFrom<GossipKind>('neighbour', 'broadcast', 'unicast'),
    channel: fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,63}$/), text(1, 16, 64)),
    src: peerName,
    dst: peerName,
    payload: fc.uint8Array({ maxLength: 300 }),
  })
  .map(({ dst, ...g }) => (g.kind === 'unicast' ? { ...g, dst } : g));
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  helloArb.map((h): Message => ({ type: 'hello', hello: h })),
  fc.constant<Message>({ type: 'heartbeat' }),
  gossipArb.map((g): Message => ({ type: 'gossip', gossip: g })),
);

t.test('property: every valid message round-trips', async (t) => {
  fc.assert(
    fc.property(messageArb, (m) => {
      deepStrictEqual(plain(decodeMessage(encodeMessage(m))), plain(m));
    }),
    { numRuns: 500 },
  );
  t.pass('500 messages');
});

// ---- refusals ----

const wireHello: weft.Hello.$Properties = {
  name: 0x02_11_22_33_44_55,
  nickname: 'node-1',
  uid: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
  connId: Uint8Array.of(8, 7, 6, 5, 4, 3, 2, 1),
  shortId: 17,
  overlays: ['sleeve'],
  listenPort: 6783,
  software: 'weft',
};
const wireGossip: weft.Gossip.$Properties = { kind: weft.Gossip.Kind.BROADCAST, channel: 'ipam', src: 2, payload: Uint8Array.of(9) };
const withHello = (over: Partial<weft.Hello.$Properties>): Uint8Array =>
  weft.Envelope.encode({ hello: { ...wireHello, ...over } }).finish();
const withGossip = (over: Partial<weft.Gossip.$Properties>): Uint8Array =>
  weft.Envelope.encode({ gossip: { ...wireGossip, ...over } }).finish();

/** An Envelope whose Hello ends with raw field bytes, for values protobufjs would not write. */
function helloWithRawField(over: Partial<weft.Hello.$Properties>, raw: readonly number[]): Uint8Array {
  const inner = [...weft.Hello.encode({ ...wireHello, ...over }).finish(), ...raw];
  if (inner.length > 127) throw new Error('test helper handles one-byte lengths only');
  return Uint8Array.from([0x0a, inner.length, ...inner]);
}

t.test('the wire fixtures are valid as they stand', async (t) => {
  t.equal(decodeMessage(withHello({})).type, 'hello');
  t.equal(decodeMessage(withGossip({})).type, 'gossip');
});

t.test('undecodable bytes and messages of unknown type are refused', async (t) => {
  t.match(refusal(() => decodeMessage(Uint8Array.of(0x0a, 0x05, 0x08))), /^undecodable message of 3 bytes: /);
  t.match(refusal(() => decodeMessage(Uint8Array.of(0xff, 0xff, 0xff))), /^undecodable message/);
  t.equal(refusal(() => decodeMessage(new Uint8Array(0))), 'message of unknown type (0 bytes)', 'an empty envelope');
  t.equal(refusal(() => decodeMessage(Uint8Array.of(0x22, 0x00))), 'message of unknown type (2 bytes)', 'a body field this version lacks');
  t.equal(refusal(() => decodeMessage(Uint8Array.of(0x08, 0x01))), 'message of unknown type (2 bytes)', 'hello with the wrong wire type');
  t.match(refusal(() => decodeMessage(helloWithRawField({}, [0x12, 0x02, 0xc3, 0x28]))), /^undecodable message/, 'invalid UTF-8');
});

t.test('a known message with fields this version lacks is accepted (forward compatible)', async (t) => {
  t.same(decodeMessage(Uint8Array.of(0x12, 0x02, 0x08, 0x01)), { type: 'heartbeat' });
  t.equal(decodeMessage(helloWithRawField({}, [0x78, 0x05])).type, 'hello'); // field 15, varint
});

t.test('hello: name', async (t) => {
  t.equal(refusal(() => decodeMessage(withHello({ name: 0 }))), 'invalid hello from peer: name 0 is not a 48-bit peer name');
  t.match(refusal(() => decodeMessage(withHello({ name: 2 ** 48 }))), /name 281474976710656 is not a 48-bit peer name/);
  const max64 = [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
  t.match(refusal(() => decodeMessage(helloWithRawField({}, max64))), /^invalid hello from peer: name \d+ is not a 48-bit peer name$/);
  t.equal(decodeMessage(withHello({ name: 2 ** 48 - 1 })).type, 'hello', 'the largest name is fine');
});

t.test('hello: uid and connId', async (t) => {
  for (const field of ['uid', 'connId'] as const) {
    t.equal(refusal(() => decodeMessage(withHello({ [field]: new Uint8Array(7) }))), `invalid hello from peer: ${field} must be 8 bytes, got 7`);
    t.match(refusal(() => decodeMessage(withHello({ [field]: new Uint8Array(9) }))), /must be 8 bytes, got 9/);
    t.match(refusal(() => decodeMessage(withHello({ [field]: null }))), /must be 8 bytes, got 0/);
    t.equal(refusal(() => decodeMessage(withHello({ [field]: new Uint8Array(8) }))), `invalid hello from peer: ${field} must be a non-zero 64-bit value`);
  }
});

t.test('hello: shortId, listenPort', async (t) => {
  t.equal(decodeMessage(withHello({ shortId: 4095 })).type, 'hello');
  t.equal(refusal(() => decodeMessage(withHello({ shortId: 4096 }))), 'invalid hello from peer: shortId 4096 is not a 12-bit value');
  t.equal(refusal(() => decodeMessage(withHello({ listenPort: 0 }))), 'invalid hello from peer: listenPort 0 is not a TCP port');
  t.match(refusal(() => decodeMessage(withHello({ listenPort: 65536 }))), /listenPort 65536 is not a TCP port/);
  t.equal(decodeMessage(withHello({ listenPort: 65535 })).type, 'hello');
});

t.test('hello: nickname, software, overlays', async (t) => {
  t.equal(refusal(() => decodeMessage(withHello({ nickname: '' }))), 'invalid hello from peer: nickname is empty');
  t.equal(decodeMessage(withHello({ nickname: 'x'.repeat(255) })).type, 'hello', '255 bytes');
  t.match(refusal(() => decodeMessage(withHello({ nickname: 'x'.repeat(256) }))), /nickname is 256 bytes long, more than 255/);
  t.match(refusal(() => decodeMessage(withHello({ nickname: 'é'.repeat(128) }))), /nickname is 256 bytes long/, 'counted in UTF-8 bytes');
  t.equal(
    refusal(() => decodeMessage(withHello({ nickname: 'evil\nINFO forged line' }))),
    'invalid hello from peer: nickname "evil\\nINFO forged line" contains control characters',
  );
  for (const c of ['\u0000', '\u001b', '\u007f', '\u0085']) {
    t.match(refusal(() => decodeMessage(withHello({ nickname: `a${c}b` }))), /contains control characters/, JSON.stringify(c));
  }
  t.match(refusal(() => decodeMessage(withHello({ software: 'x'.repeat(256) }))), /software is 256 bytes long/);
  t.match(refusal(() => decodeMessage(withHello({ software: 'v1\r\n' }))), /software .* contains control characters/);
  t.match(refusal(() => decodeMessage(withHello({ overlays: [''] }))), /overlays\[0\] is empty/);
  t.match(refusal(() => decodeMessage(withHello({ overlays: ['sleeve', 'x'.repeat(33)] }))), /overlays\[1\] is 33 bytes long/);
  t.match(refusal(() => decodeMessage(withHello({ overlays: Array<string>(17).fill('a') }))), /17 overlays, more than 16/);
});

t.test('gossip: kind, channel, src, dst', async (t) => {
  t.equal(refusal(() => decodeMessage(withGossip({ channel: '' }))), 'invalid gossip from peer: channel is empty');
  t.equal(decodeMessage(withGossip({ channel: 'c'.repeat(64) })).type, 'gossip');
  t.match(refusal(() => decodeMessage(withGossip({ channel: 'c'.repeat(65) }))), /channel is 65 bytes long, more than 64/);
  t.match(refusal(() => decodeMessage(withGossip({ channel: 'a\tb' }))), /channel "a\\tb" contains control characters/);
  t.equal(refusal(() => decodeMessage(withGossip({ kind: weft.Gossip.Kind.UNICAST }))), 'invalid gossip from peer: unicast without dst');
  t.equal(refusal(() => decodeMessage(withGossip({ kind: 3 as weft.Gossip.Kind }))), 'invalid gossip from peer: unknown kind 3');
  t.match(refusal(() => decodeMessage(withGossip({ kind: -1 as weft.Gossip.Kind }))), /unknown kind -1/);
  t.equal(refusal(() => decodeMessage(withGossip({ src: 0 }))), 'invalid gossip from peer: src 0 is not a 48-bit peer name');
  t.match(refusal(() => decodeMessage(withGossip({ kind: weft.Gossip.Kind.UNICAST, dst: 2 ** 48 }))), /dst 281474976710656 is not/);
});

t.test('gossip: dst is kept for unicast only', async (t) => {
  const unicast = decodeMessage(withGossip({ kind: weft.Gossip.Kind.UNICAST, dst: 0x0a }));
  t.equal(unicast.type === 'gossip' && unicast.gossip.dst, '00:00:00:00:00:0a');
  const broadcast = decodeMessage(withGossip({ dst: 0x0a }));
  t.equal(broadcast.type === 'gossip' && broadcast.gossip.dst, undefined);
});

t.test('encoding a message that breaks the rules is our bug: RangeError', async (t) => {
  const bad: Message[] = [
    { type: 'hello', hello: { ...hello, shortId: 5000 } },
    { type: 'hello', hello: { ...hello, name: '00:00:00:00:00:00' as PeerName } },
    { type: 'hello', hello: { ...hello, name: 'nonsense' as PeerName } },
    { type: 'hello', hello: { ...hello, uid: 0n } },
    { type: 'hello', hello: { ...hello, connId: 2n ** 64n } },
    { type: 'hello', hello: { ...hello, nickname: '' } },
    { type: 'hello', hello: { ...hello, listenPort: 0 } },
    { type: 'gossip', gossip: { ...gossip, channel: '' } },
    { type: 'gossip', gossip: { ...gossip, kind: 'unicast' } },
    { type: 'gossip', gossip: { ...gossip, kind: 'multicast' as GossipKind } },
    { type: 'gossip', gossip: { ...gossip, kind: 'toString' as GossipKind } },
  ];
  for (const m of bad) t.throws(() => encodeMessage(m), RangeError, JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
});
