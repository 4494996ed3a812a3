// Garbage from a peer must close that connection with a ProtocolError: never another exception
// (which would be a crash or an unlogged failure), never a hang. Each test feeds random or
// mutated bytes to one stage of the receive path, and the last ones to the whole path in order.
import t from 'tap';
import { deepStrictEqual, equal } from 'node:assert/strict';
import fc from 'fast-check';
import { peerNameFromNumber } from '../../src/net/peer-name.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/mesh/envelope.js';
import { FrameReader, encodeFrame } from '../../src/mesh/frame-reader.js';
import {
  PROTOCOL_MAX_VERSION,
  PROTOCOL_MIN_VERSION,
  checkEncryptionAgreement,
  encodePreamble,
  negotiateVersion,
  parsePreamble,
  type Preamble,
} from '../../src/mesh/preamble.js';
import { ProtocolError } from '../../src/mesh/protocol-error.js';
import { MessageOpener, MessageSealer, deriveSessionKey, generateKeyPair, type KeyPair } from '../../src/mesh/session-crypto.js';

/** Runs fn; a ProtocolError is an accepted outcome, anything else thrown fails the property. */
function survives<T>(fn: () => T): T | ProtocolError {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
}

const concat = (parts: readonly Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));
const weft = Uint8Array.of(0x77, 0x65, 0x66, 0x74);

const validMessages: Message[] = [
  { type: 'heartbeat' },
  {
    type: 'hello',
    hello: {
      name: peerNameFromNumber(0x02_11_22_33_44_55),
      nickname: 'node-1',
      uid: 42n,
      connId: 7n,
      shortId: 99,
      overlays: ['fastdp', 'sleeve'],
      listenPort: 6783,
      software: 'weft 0.1.0',
    },
  },
  {
    type: 'gossip',
    gossip: { kind: 'unicast', channel: 'ipam', src: peerNameFromNumber(5), dst: peerNameFromNumber(6), payload: Uint8Array.of(1, 2, 3) },
  },
];
const validEncoded = validMessages.map(encodeMessage);

/** Random bytes, or random bytes behind a plausible start, which reach deeper into a parser. */
const garbage = (plausibleStarts: readonly Uint8Array[]) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.tuple(fc.constantFrom(...plausibleStarts), fc.uint8Array({ maxLength: 100 })).map(([a, b]) => concat([a, b])),
  );

/** Mutations of valid bytes: a flipped bit, a cut, an inserted or deleted byte. */
const mutated = (valid: readonly Uint8Array[]) =>
  fc
    .tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 7 }), fc.constantFrom('flip', 'cut', 'insert', 'delete'), fc.integer({ min: 0, max: 255 }))
    .map(([bytes, at, bit, how, value]) => {
      const i = at % (bytes.length + 1);
      const copy = Uint8Array.from(bytes);
      if (how === 'flip' && bytes.length > 0) copy[i % bytes.length]! ^= 1 << bit;
      if (how === 'cut') return copy.subarray(0, i);
      if (how === 'insert') return concat([copy.subarray(0, i), Uint8Array.of(value), copy.subarray(i)]);
      if (how === 'delete') return concat([copy.subarray(0, i), copy.subarray(i + 1)]);
      return copy;
    });

t.test('parsePreamble: a preamble, need-more, or a ProtocolError', async (t) => {
  const valid = [encodePreamble({ minVersion: 1, maxVersion: 1 }), encodePreamble({ minVersion: 1, maxVersion: 2, publicKey: new Uint8Array(32).fill(5) })];
  fc.assert(
    fc.property(fc.oneof(garbage([weft, Uint8Array.of(0x77, 0x65, 0x66, 0x74, 1, 1)]), mutated(valid)), (bytes) => {
      const result = survives(() => parsePreamble(bytes));
      if (result === undefined || result instanceof ProtocolError) return;
      // What it accepted is exactly what a peer would have encoded.
      deepStrictEqual([...encodePreamble(result.preamble)], [...bytes.subarray(0, result.consumed)]);
    }),
    { numRuns: 3000 },
  );
  t.pass('3000 inputs');
});

t.test('FrameReader: frames accounting for every byte, or a ProtocolError', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat({ max: 400 }), { maxLength: 10 }), (bytes, cuts) => {
      const reader = new FrameReader();
      const points = [...new Set(cuts)].filter((c) => c < bytes.length).sort((a, b) => a - b);
      let from = 0;
      let framed = 0;
      for (const p of [...points, bytes.length]) {
        const frames = survives(() => reader.push(bytes.subarray(from, p)));
        if (frames instanceof ProtocolError) return;
        framed += frames.reduce((n, f) => n + 4 + f.length, 0);
        from = p;
      }
      equal(framed + reader.buffered, bytes.length);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 streams');
});

t.test('decodeMessage: a valid Message, or a ProtocolError', async (t) => {
  const starts = [Uint8Array.of(0x0a), Uint8Array.of(0x12, 0x00), Uint8Array.of(0x1a), ...validEncoded.map((v) => v.subarray(0, 3))];
  fc.assert(
    fc.property(fc.oneof(garbage(starts), mutated(validEncoded)), (bytes) => {
      const m = survives(() => decodeMessage(bytes));
      if (m instanceof ProtocolError) return;
      // Whatever is accepted passes our own rules too: it can be sent on unchanged.
      const again = decodeMessage(encodeMessage(m));
      equal(again.type, m.type);
    }),
    { numRuns: 5000 },
  );
  t.pass('5000 inputs');
});

t.test('MessageOpener: anything but the genuine next message is a ProtocolError', async (t) => {
  const key = deriveSessionKey(generateKeyPair(), generateKeyPair().publicKey, 'pw');
  const sealed = [new MessageSealer(key, true).seal(Uint8Array.of(1, 2, 3))];
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 100 }), mutated(sealed)), (bytes) => {
      if (bytes.length === sealed[0]!.length && bytes.every((b, i) => b === sealed[0]![i])) return; // unchanged
      const opened = survives(() => new MessageOpener(key, false).open(bytes));
      if (!(opened instanceof ProtocolError)) throw new Error('garbage opened');
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 inputs');
});

// ---- the whole receive path, as the connection shell drives it ----

interface Side {
  readonly preamble: Preamble;
  readonly keys?: KeyPair;
}

function side(password?: string): Side {
  if (password === undefined) return { preamble: { minVersion: PROTOCOL_MIN_VERSION, maxVersion: PROTOCOL_MAX_VERSION } };
  const keys = generateKeyPair();
  return { preamble: { minVersion: PROTOCOL_MIN_VERSION, maxVersion: PROTOCOL_MAX_VERSION, publicKey: keys.publicKey }, keys };
}

/** What the dialler writes: its preamble, then the messages, sealed when there is a password. */
function dialledStream(dialler: Side, acceptor: Side, password: string | undefined, messages: readonly Message[]): Uint8Array {
  const sealer = password !== undefined ? new MessageSealer(deriveSessionKey(dialler.keys!, acceptor.preamble.publicKey!, password), true) : undefined;
  return concat([encodePreamble(dialler.preamble), ...messages.map((m) => encodeFrame(sealer ? sealer.seal(encodeMessage(m)) : encodeMessage(m)))]);
}

/** The acceptor's receive path over a chunked stream: the messages it took, then how it ended. */
function receive(acceptor: Side, password: string | undefined, chunks: readonly Uint8Array[]): { messages: Message[]; error?: ProtocolError } {
  const messages: Message[] = [];
  let pending: Uint8Array = new Uint8Array(0);
  let frames: FrameReader | undefined;
  let opener: MessageOpener | undefined;
  const outcome = survives(() => {
    for (let chunk of chunks) {
      if (!frames) {
        pending = concat([pending, chunk]);
        const parsed = parsePreamble(pending);
        if (!parsed) continue;
        negotiateVersion(acceptor.preamble, parsed.preamble);
        checkEncryptionAgreement(acceptor.preamble, parsed.preamble);
        if (password !== undefined) {
          opener = new MessageOpener(deriveSessionKey(acceptor.keys!, parsed.preamble.publicKey!, password), false);
        }
        frames = new FrameReader();
        chunk = pending.subarray(parsed.consumed);
      }
      for (const frame of frames.push(chunk)) messages.push(decodeMessage(opener ? opener.open(frame) : frame));
    }
  });
  return outcome instanceof ProtocolError ? { messages, error: outcome } : { messages };
}

function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.slice(from, p));
    from = p;
  }
  return out;
}

t.test('the whole path delivers a genuine stream, with or without a password', async (t) => {
  for (const password of [undefined, 'pw']) {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...validMessages), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (messages, cuts) => {
        const dialler = side(password);
        const acceptor = side(password);
        const got = receive(acceptor, password, chunked(dialledStream(dialler, acceptor, password, messages), cuts));
        equal(got.error, undefined);
        equal(JSON.stringify(got.messages, big), JSON.stringify(messages, big));
      }),
      { numRuns: 100 },
    );
  }
  t.pass('200 streams');
});

function big(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value instanceof Uint8Array ? [...value] : value;
}

t.test('the whole path: mutated streams deliver a prefix of the messages, then a ProtocolError at most', async (t) => {
  for (const password of [undefined, 'pw']) {
    const dialler = side(password);
    const acceptor = side(password);
    const stream = dialledStream(dialler, acceptor, password, validMessages);
    fc.assert(
      fc.property(mutated([stream]), fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
        receive(acceptor, password, chunked(bytes, cuts)); // throws for anything but a ProtocolError
      }),
      { numRuns: 1000 },
    );
    // With a password, a changed bit is never delivered: the messages taken are genuine ones.
    // Every bit of the stream, flipped in turn.
    if (password !== undefined) {
      for (let i = 0; i < stream.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const bytes = Uint8Array.from(stream);
          bytes[i]! ^= 1 << bit;
          const got = receive(acceptor, password, [bytes]);
          const expected = validMessages.slice(0, got.messages.length);
          equal(JSON.stringify(got.messages, big), JSON.stringify(expected, big));
          // The preamble itself is not authenticated: a raised maxVersion (byte 5) still
          // negotiates version 1. Every other flip is caught.
          if (got.messages.length === validMessages.length && i !== 5) throw new Error(`a flipped bit at ${i}.${bit} went unnoticed`);
        }
      }
    }
  }
  t.pass('mutated streams');
});

t.test('the whole path: the named kinds of garbage each end with a ProtocolError', async (t) => {
  const acceptor = side();
  const pre = encodePreamble(side().preamble);
  const cases: [string, Uint8Array, RegExp][] = [
    ['random bytes', Uint8Array.of(0x9b, 0x31, 0x07, 0xee, 0x52), /^not a weft peer/],
    ['a frame announcing 4 GiB', concat([pre, Uint8Array.of(0xff, 0xff, 0xff, 0xff)]), /announced a frame of 4294967295 bytes/],
    ['a frame whose message is cut short', concat([pre, encodeFrame(validEncoded[1]!.subarray(0, 10))]), /^undecodable message/],
    ['a valid frame of an unknown type', concat([pre, encodeFrame(Uint8Array.of(0x3a, 0x00))]), /^message of unknown type/],
    ['an encrypted peer to a plain one', encodePreamble(side('pw').preamble), /peer requested an encrypted connection, but no password/],
    ['an incompatible version', concat([weft, Uint8Array.of(7, 9, 0)]), /remote version range \[7,9\] is incompatible with ours \[1,1\]/],
  ];
  for (const [what, bytes, message] of cases) {
    const got = receive(acceptor, undefined, [bytes]);
    t.match(got.error?.message, message, what);
  }
  // A stream that stops inside a frame is not an error by itself: the reader waits, holding only
  // what arrived, and the shell's heartbeat timeout ends the connection.
  const reader = new FrameReader();
  t.same(reader.push(encodeFrame(validEncoded[1]!).subarray(0, 9)), []);
  t.equal(reader.buffered, 9);
});

t.test('a peer with another password is refused on its first message', async (t) => {
  const dialler = side('one');
  const acceptor = side('two');
  const got = receive(acceptor, 'two', [dialledStream(dialler, acceptor, 'one', [validMessages[1]!])]);
  t.same(got.messages, []);
  t.match(got.error?.message, /^message authentication failed \(wrong password/);
});
