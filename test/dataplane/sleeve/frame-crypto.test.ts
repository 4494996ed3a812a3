import t from 'tap';
import { deepStrictEqual, equal, notDeepStrictEqual, ok } from 'node:assert/strict';
import { createCipheriv, hkdfSync } from 'node:crypto';
import fc from 'fast-check';
import {
  FRAME_CIPHER,
  FrameOpener,
  FrameSealer,
  KEY_UPDATE_AFTER_BLOCKS,
  KEY_UPDATE_AFTER_MESSAGES,
  MAX_BLOCKS_PER_MESSAGE,
  REKEY_AFTER_MESSAGES,
  nextKey,
  deriveDirectionKey,
  deriveFrameKeys,
  type FrameCipherName,
} from '../../../src/dataplane/sleeve/frame-crypto.js';
import { AEAD_TAG_LENGTH, MAX_MESSAGE_LENGTH, MAX_SEQUENCE } from '../../../src/dataplane/sleeve/header.js';
import { bytes } from './arbitraries.js';

const CIPHERS: readonly FrameCipherName[] = ['chacha20-poly1305', 'aes-256-gcm'];
const session = bytes(32, 99);
const UID = 0x1122334455667788n;
const aad = bytes(33, 5);

/** Both ends of a connection: what the dialler seals the listener opens, and the reverse. */
function ends(cipher: FrameCipherName, key = session) {
  const d = deriveFrameKeys(key, UID, true);
  const l = deriveFrameKeys(key, UID, false);
  return {
    diallerSeal: new FrameSealer(d.send, true, { cipher }),
    diallerOpen: new FrameOpener(d.receive, false, { cipher }),
    listenerSeal: new FrameSealer(l.send, false, { cipher }),
    listenerOpen: new FrameOpener(l.receive, true, { cipher }),
  };
}

const joined = (pieces: readonly Uint8Array[]): Buffer => Buffer.concat(pieces);

t.test('both ends derive matching keys; the two directions differ; all is bound to uid and purpose', async () => {
  const d = deriveFrameKeys(session, UID, true);
  const l = deriveFrameKeys(session, UID, false);
  deepStrictEqual(d.send, l.receive);
  deepStrictEqual(d.receive, l.send);
  notDeepStrictEqual(d.send, d.receive);
  equal(d.send.length, 32);
  notDeepStrictEqual(deriveFrameKeys(session, UID + 1n, true).send, d.send);
  notDeepStrictEqual(deriveFrameKeys(session, UID, true, 'probes').send, d.send);
  notDeepStrictEqual(deriveFrameKeys(bytes(32, 98), UID, true).send, d.send);
  // The documented derivation: HKDF-SHA256, salt = uid (8 bytes BE), info names purpose and direction.
  const salt = Buffer.from('1122334455667788', 'hex');
  deepStrictEqual(Buffer.from(d.send), Buffer.from(hkdfSync('sha256', session, salt, 'weft sleeve v1 frames dialler->listener', 32)));
  deepStrictEqual(Buffer.from(l.send), Buffer.from(hkdfSync('sha256', session, salt, 'weft sleeve v1 frames listener->dialler', 32)));
});

t.test('keys: wrong sizes and odd purpose labels are refused', async (t) => {
  t.throws(() => deriveDirectionKey(bytes(31, 1), UID, true), RangeError);
  t.throws(() => deriveDirectionKey(session, UID, true, 'Frames and more'), RangeError);
  t.throws(() => new FrameSealer(bytes(16, 1), true), RangeError);
  t.throws(() => new FrameOpener(bytes(33, 1), true), RangeError);
});

for (const cipher of CIPHERS) {
  t.test(`${cipher}: seal then open gives the body back, whole or in pieces, any size`, async () => {
    const e = ends(cipher);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000, size: 'max' }), fc.nat(), (plain, cut) => {
        const seq = e.diallerSeal.nextSequence;
        const at = cut % (plain.length + 1);
        const sealed = joined(e.diallerSeal.seal(seq, 0, aad, [plain.subarray(0, at), plain.subarray(at)]));
        equal(sealed.length, plain.length + AEAD_TAG_LENGTH);
        deepStrictEqual(e.listenerOpen.open(seq, 0, aad, sealed), Buffer.from(plain));
      }),
      { numRuns: 200 },
    );
    const big = bytes(64 * 1024, 3);
    const seq = e.listenerSeal.nextSequence;
    deepStrictEqual(e.diallerOpen.open(seq, 0, aad, joined(e.listenerSeal.seal(seq, 0, aad, big))), Buffer.from(big));
  });

  t.test(`${cipher}: any flipped bit in the header (AAD), the body or the tag is rejected`, async () => {
    const e = ends(cipher);
    const plain = bytes(200, 8);
    const sealed = joined(e.diallerSeal.seal(0, 0, aad, plain));
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 7 }), fc.boolean(), (at, bit, inHeader) => {
        const a = Buffer.from(aad);
        const s = Buffer.from(sealed);
        if (inHeader) a[at % a.length]! ^= 1 << bit;
        else s[at % s.length]! ^= 1 << bit;
        equal(e.listenerOpen.open(0, 0, a, s), null);
      }),
      { numRuns: 500 },
    );
    // Every single bit, exhaustively, for the header.
    for (let i = 0; i < aad.length * 8; i++) {
      const a = Buffer.from(aad);
      a[i >> 3]! ^= 1 << (i & 7);
      equal(e.listenerOpen.open(0, 0, a, sealed), null);
    }
    equal(e.listenerOpen.open(1, 0, aad, sealed), null, 'another sequence number');
    equal(e.listenerOpen.open(0, 0, aad, sealed.subarray(0, sealed.length - 1)), null, 'truncated');
    equal(e.listenerOpen.open(0, 0, aad, sealed.subarray(0, 15)), null, 'shorter than a tag');
    equal(e.listenerOpen.open(-1, 0, aad, sealed), null, 'not a sequence number');
    deepStrictEqual(e.listenerOpen.open(0, 0, aad, sealed), Buffer.from(plain), 'the original still opens');
  });

  t.test(`${cipher}: a message sealed for one direction does not open in the other`, async () => {
    const e = ends(cipher);
    const sealed = joined(e.diallerSeal.seal(0, 0, aad, bytes(100, 1)));
    equal(e.diallerOpen.open(0, 0, aad, sealed), null, 'reflected back to the dialler');
    ok(e.listenerOpen.open(0, 0, aad, sealed));
    // Even with one key for both directions (a bug elsewhere), the nonce's direction byte separates them.
    const k = bytes(32, 4);
    const s2 = joined(new FrameSealer(k, true, { cipher }).seal(0, 0, aad, bytes(100, 1)));
    equal(new FrameOpener(k, false, { cipher }).open(0, 0, aad, s2), null);
    ok(new FrameOpener(k, true, { cipher }).open(0, 0, aad, s2));
    // Another connection's keys.
    const other = ends(cipher, bytes(32, 77));
    equal(other.listenerOpen.open(0, 0, aad, sealed), null);
  });

  t.test(`${cipher}: the nonce is the documented one: direction byte, three zeros, 64-bit sequence`, async () => {
    const key = bytes(32, 6);
    const sealer = new FrameSealer(key, false, { cipher, keyUpdateAfterMessages: MAX_SEQUENCE });
    const seq = 2 ** 40 + 3;
    sealer.skipTo(seq);
    const plain = bytes(50, 2);
    const ours = joined(sealer.seal(seq, 0, aad, plain));
    const nonce = Buffer.from('02000000' + '0000010000000003', 'hex');
    const c = createCipheriv(cipher as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    deepStrictEqual(ours, Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]));
  });
}

t.test('sequence numbers: handed out in order, never reused or skipped, refused past 2^53 − 1', async (t) => {
  const s = new FrameSealer(bytes(32, 1), true);
  equal(s.cipher, FRAME_CIPHER);
  s.seal(0, 0, aad, bytes(1, 1));
  t.throws(() => s.seal(0, 0, aad, bytes(1, 1)), RangeError, 'reuse');
  t.throws(() => s.seal(2, 0, aad, bytes(1, 1)), RangeError, 'skip');
  equal(s.nextSequence, 1);
  equal(s.needsRekey, false);
  s.skipTo(REKEY_AFTER_MESSAGES - 1);
  equal(s.needsRekey, false);
  s.seal(REKEY_AFTER_MESSAGES - 1, s.phaseOf(REKEY_AFTER_MESSAGES - 1), aad, bytes(1, 1));
  equal(s.needsRekey, true);
  equal(s.exhausted, false);
  s.skipTo(MAX_SEQUENCE);
  s.seal(MAX_SEQUENCE, s.phaseOf(MAX_SEQUENCE), aad, bytes(1, 1));
  equal(s.exhausted, true);
  t.throws(() => s.seal(MAX_SEQUENCE + 1, 0, aad, bytes(1, 1)), RangeError);
  ok(REKEY_AFTER_MESSAGES <= MAX_SEQUENCE / 2 ** 4, 'the rekey signal comes well before the end');
});

t.test('opening never throws on garbage', async () => {
  const o = new FrameOpener(bytes(32, 1), true);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200, size: 'max' }), fc.uint8Array({ maxLength: 40, size: 'max' }), fc.double(), (sealed, a, seq) => {
      equal(o.open(seq, 0, a, sealed), null);
    }),
    { numRuns: 500 },
  );
});

/** Seals `sizes.length` messages with a small key-update limit; returns them with their phases. */
function sealMany(sealer: FrameSealer, sizes: readonly number[]) {
  return sizes.map((size, i) => {
    const phase = sealer.keyPhase;
    const plain = bytes(size, i + 1);
    return { seq: i, phase, plain, sealed: joined(sealer.seal(i, phase, aad, plain)) };
  });
}

t.test('key updates: the phase flips every keyUpdateAfterMessages, and the opener follows', async () => {
  const d = deriveFrameKeys(session, UID, true);
  const sealer = new FrameSealer(d.send, true, { keyUpdateAfterMessages: 2 });
  const opener = new FrameOpener(deriveFrameKeys(session, UID, false).receive, true);
  // A new key every second message.
  const msgs = sealMany(sealer, Array<number>(20).fill(1024));
  deepStrictEqual(msgs.map((m) => m.phase).slice(0, 6), [0, 0, 1, 1, 0, 0]);
  equal(sealer.keyEpoch, 10);
  for (const m of msgs) deepStrictEqual(opener.open(m.seq, m.phase, aad, m.sealed), Buffer.from(m.plain), `message ${m.seq}`);
  equal(opener.keyEpoch, 9, 'the last update has sealed nothing yet');
  // The documented derivation of the next key.
  deepStrictEqual(Buffer.from(nextKey(d.send)), Buffer.from(hkdfSync('sha256', d.send, new Uint8Array(0), 'weft sleeve v1 key update', 32)));
  ok(KEY_UPDATE_AFTER_BLOCKS * 16 <= 2 ** 38, 'at most 256 GiB per AES-GCM key');
  ok(KEY_UPDATE_AFTER_MESSAGES * MAX_BLOCKS_PER_MESSAGE <= KEY_UPDATE_AFTER_BLOCKS, 'even messages of the largest size stay within the block limit');
  ok(MAX_BLOCKS_PER_MESSAGE >= Math.ceil(MAX_MESSAGE_LENGTH / 16) + 1);
});

t.test('key updates survive reordering across an update and the loss of some messages', async () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 10, maxLength: 80, size: 'max' }),
      fc.array(fc.boolean(), { minLength: 80, maxLength: 80 }),
      fc.array(fc.boolean(), { minLength: 80, maxLength: 80 }),
      (sizes, swaps, losses) => {
        // An update every 3 messages.
        const sealer = new FrameSealer(bytes(32, 3), false, { keyUpdateAfterMessages: 3 });
        const opener = new FrameOpener(bytes(32, 3), false);
        const msgs = sealMany(sealer, sizes);
        // Neighbours swap (reordering by one place); some messages are lost, never two in a row.
        for (let i = 0; i + 1 < msgs.length; i += 2) if (swaps[i]) [msgs[i], msgs[i + 1]] = [msgs[i + 1]!, msgs[i]!];
        const delivered = msgs.filter((_, i) => !(losses[i] && !losses[i - 1]));
        for (const m of delivered) deepStrictEqual(opener.open(m.seq, m.phase, aad, m.sealed), Buffer.from(m.plain), `message ${m.seq}`);
      },
    ),
    { numRuns: 200 },
  );
});

t.test('a forged message in the other phase does not move the opener to the next key', async () => {
  const sealer = new FrameSealer(bytes(32, 3), true, { keyUpdateAfterMessages: 1 });
  const opener = new FrameOpener(bytes(32, 3), true);
  const [first, second] = sealMany(sealer, [100, 100]);
  equal(first!.phase, 0);
  equal(second!.phase, 1);
  const forged = Buffer.from(second!.sealed);
  forged[0]! ^= 1;
  equal(opener.open(second!.seq, 1, aad, forged), null);
  equal(opener.open(second!.seq, 0, aad, second!.sealed), null, 'the wrong phase');
  equal(opener.keyEpoch, 0);
  ok(opener.open(first!.seq, 0, aad, first!.sealed));
  ok(opener.open(second!.seq, 1, aad, second!.sealed));
  equal(opener.keyEpoch, 1);
  equal(opener.open(0, 2, aad, first!.sealed), null, 'a phase that is neither 0 nor 1');
});

t.test('the sealer refuses a header with the wrong key phase', async (t) => {
  const s = new FrameSealer(bytes(32, 1), true, { keyUpdateAfterMessages: 1 });
  t.throws(() => s.seal(0, 1, aad, bytes(10, 1)), RangeError);
  s.seal(0, 0, aad, bytes(10, 1));
  equal(s.keyPhase, 1);
  t.throws(() => s.seal(1, 0, aad, bytes(10, 1)), RangeError);
});
