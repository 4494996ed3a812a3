import t from 'tap';
import { deepStrictEqual } from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import {
  MAX_MESSAGES,
  MessageOpener,
  MessageSealer,
  SEAL_OVERHEAD,
  deriveSessionKey,
  generateKeyPair,
  keyPairFromSecretKey,
  type KeyPair,
} from '../../src/mesh/session-crypto.js';
import { refusal } from '../lib/refusal.js';

const AUTH_FAILED = 'message authentication failed (wrong password, or a replayed or altered message)';
const fixedPair = (seed: number): KeyPair => keyPairFromSecretKey(Uint8Array.from({ length: 32 }, (_, i) => (seed * 31 + i) & 255));
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Both ends of one connection: the dialler (outbound) and the acceptor. */
function session(password = 'secret') {
  const dialler = generateKeyPair();
  const acceptor = generateKeyPair();
  const dk = deriveSessionKey(dialler, acceptor.publicKey, password);
  const ak = deriveSessionKey(acceptor, dialler.publicKey, password);
  return {
    diallerSeal: new MessageSealer(dk, true),
    diallerOpen: new MessageOpener(dk, true),
    acceptorSeal: new MessageSealer(ak, false),
    acceptorOpen: new MessageOpener(ak, false),
  };
}

t.test('both ends derive the same key: SHA-256(X25519 ‖ password), checked against node:crypto', async (t) => {
  const a = fixedPair(1);
  const b = fixedPair(2);
  const jwk = (pair: KeyPair) => ({
    kty: 'OKP',
    crv: 'X25519',
    x: Buffer.from(pair.publicKey).toString('base64url'),
    d: Buffer.from(pair.secretKey).toString('base64url'),
  });
  const shared = diffieHellman({
    privateKey: createPrivateKey({ key: jwk(a), format: 'jwk' }),
    publicKey: createPublicKey({ key: { ...jwk(b), d: undefined }, format: 'jwk' }),
  });
  const expected = createHash('sha256').update(shared).update('pässword', 'utf8').digest();
  const ab = deriveSessionKey(a, b.publicKey, 'pässword');
  t.same([...ab], [...expected]);
  t.same([...deriveSessionKey(b, a.publicKey, 'pässword')], [...ab]);
  t.same([...deriveSessionKey(b, a.publicKey, text('pässword'))], [...ab], 'a string is its UTF-8 bytes');
  t.equal(ab.length, 32);
});

t.test('another password or another key pair gives another key', async (t) => {
  const a = fixedPair(1);
  const b = fixedPair(2);
  const key = Buffer.from(deriveSessionKey(a, b.publicKey, 'one'));
  t.notOk(key.equals(deriveSessionKey(a, b.publicKey, 'two')));
  t.notOk(key.equals(deriveSessionKey(a, fixedPair(3).publicKey, 'one')));
  t.notOk(Buffer.from(generateKeyPair().secretKey).equals(generateKeyPair().secretKey), 'fresh key pairs');
});

t.test('a low-order, malformed or non-canonical public key is refused', async (t) => {
  const ours = generateKeyPair();
  const lowOrder = [
    new Uint8Array(32), // 0
    Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0)), // 1
    Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'), // order 8
    Buffer.from('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', 'hex'), // order 8
    Buffer.from('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'), // p - 1
  ];
  for (const key of lowOrder) {
    t.equal(refusal(() => deriveSessionKey(ours, key, 'pw')), 'peer sent a weak (low-order) public key');
  }
  t.match(refusal(() => deriveSessionKey(ours, new Uint8Array(31), 'pw')), /public key must be 32 bytes, not 31/);
  const theirs = Uint8Array.from(generateKeyPair().publicKey);
  t.equal(theirs[31]! & 0x80, 0, 'tweetnacl never sets the top bit');
  theirs[31]! |= 0x80; // the same key to X25519, in another encoding
  t.equal(refusal(() => deriveSessionKey(ours, theirs, 'pw')), 'peer sent a non-canonical public key (top bit set)');
});

t.test('the nonce is the direction bit and a big-endian counter', async (t) => {
  const key = new Uint8Array(32).fill(9);
  const nonce = (dialler: boolean, n: bigint): Uint8Array => {
    const b = Buffer.alloc(24);
    b[0] = dialler ? 0x80 : 0;
    b.writeBigUInt64BE(n, 16);
    return b;
  };
  const plain = text('hello');
  for (const outbound of [true, false]) {
    const sealer = new MessageSealer(key, outbound);
    for (let n = 0n; n < 3n; n++) {
      t.same([...sealer.seal(plain)], [...nacl.secretbox(plain, nonce(outbound, n), key)], `message ${n}, outbound ${outbound}`);
    }
    const far = 2 ** 40 + 5;
    sealer.skipTo(far);
    t.same([...sealer.seal(plain)], [...nacl.secretbox(plain, nonce(outbound, BigInt(far)), key)], 'high counter bytes');
  }
});

t.test('property: many messages both ways, interleaved, round-trip', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 200 })), { maxLength: 60 }), (script) => {
      const s = session();
      for (const [fromDialler, plain] of script) {
        const sealed = (fromDialler ? s.diallerSeal : s.acceptorSeal).seal(plain);
        if (sealed.length !== plain.length + SEAL_OVERHEAD) throw new Error('unexpected overhead');
        deepStrictEqual([...(fromDialler ? s.acceptorOpen : s.diallerOpen).open(sealed)], [...plain]);
      }
    }),
    { numRuns: 50 },
  );
  t.pass('50 random conversations');
});

t.test('a replayed message is refused, and the opener stays failed', async (t) => {
  const s = session();
  const m0 = s.diallerSeal.seal(text('zero'));
  const m1 = s.diallerSeal.seal(text('one'));
  const m2 = s.diallerSeal.seal(text('two'));
  t.same([...s.acceptorOpen.open(m0)], [...text('zero')]);
  t.equal(refusal(() => s.acceptorOpen.open(m0)), AUTH_FAILED, 'm0 again, in the place of m1');
  // The failed attempt took number 1, so m2 carries the number expected next: only the failed
  // state keeps it out.
  t.equal(refusal(() => s.acceptorOpen.open(m2)), AUTH_FAILED, 'even a genuine message afterwards');
  t.equal(refusal(() => s.acceptorOpen.open(m1)), AUTH_FAILED);
});

t.test('reordered or dropped messages are refused', async (t) => {
  const s = session();
  s.diallerSeal.seal(text('zero'));
  const m1 = s.diallerSeal.seal(text('one'));
  t.equal(refusal(() => s.acceptorOpen.open(m1)), AUTH_FAILED, 'm1 before m0');
  const s2 = session();
  s2.diallerSeal.seal(text('lost'));
  t.equal(refusal(() => s2.acceptorOpen.open(s2.diallerSeal.seal(text('next')))), AUTH_FAILED, 'after a dropped one');
});

t.test('property: a truncated or bit-flipped message is refused', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(), fc.integer({ min: 0, max: 7 }), fc.boolean(), (plain, at, bit, truncate) => {
      const s = session();
      const sealed = s.diallerSeal.seal(plain);
      const bad = truncate ? sealed.subarray(0, at % sealed.length) : Uint8Array.from(sealed);
      if (!truncate) bad[at % bad.length]! ^= 1 << bit;
      if (refusal(() => s.acceptorOpen.open(bad)) !== AUTH_FAILED) throw new Error('accepted');
    }),
    { numRuns: 300 },
  );
  t.pass('300 corruptions');
});

t.test('with different passwords the first message fails to open', async (t) => {
  const dialler = generateKeyPair();
  const acceptor = generateKeyPair();
  const sealer = new MessageSealer(deriveSessionKey(dialler, acceptor.publicKey, 'right'), true);
  const opener = new MessageOpener(deriveSessionKey(acceptor, dialler.publicKey, 'wrong'), false);
  t.equal(refusal(() => opener.open(sealer.seal(text('hello')))), AUTH_FAILED);
});

t.test('the two directions are independent', async (t) => {
  const key = deriveSessionKey(fixedPair(1), fixedPair(2).publicKey, 'pw');
  const fromDialler = new MessageSealer(key, true).seal(text('x'));
  const fromAcceptor = new MessageSealer(key, false).seal(text('x'));
  t.notSame([...fromDialler], [...fromAcceptor], 'same key, same counter, other nonce');
  t.equal(refusal(() => new MessageOpener(key, true).open(fromDialler)), AUTH_FAILED, 'the dialler cannot open its own direction');
  t.equal(refusal(() => new MessageOpener(key, false).open(fromAcceptor)), AUTH_FAILED, 'nor the acceptor');
  t.same([...new MessageOpener(key, false).open(fromDialler)], [...text('x')]);
  t.same([...new MessageOpener(key, true).open(fromAcceptor)], [...text('x')]);
});

t.test('the counter never wraps', async (t) => {
  const key = new Uint8Array(32).fill(3);
  const sealer = new MessageSealer(key, true);
  const opener = new MessageOpener(key, false);
  sealer.skipTo(MAX_MESSAGES - 1);
  opener.skipTo(MAX_MESSAGES - 1);
  t.same([...opener.open(sealer.seal(text('last')))], [...text('last')], 'the last number is still used');
  t.throws(() => sealer.seal(text('one too many')), RangeError);
  t.match(refusal(() => opener.open(new Uint8Array(40))), /more messages than a session key may seal/);
});

t.test('a bad session key is our bug: RangeError', async (t) => {
  t.throws(() => new MessageSealer(new Uint8Array(31), true), RangeError);
  t.throws(() => new MessageOpener(new Uint8Array(33), true), RangeError);
});

t.test('measurement: seal + open of 1 KiB messages', async (t) => {
  const s = session();
  const plain = new Uint8Array(1024).fill(7);
  const count = 20_000;
  const started = performance.now();
  for (let i = 0; i < count; i++) s.acceptorOpen.open(s.diallerSeal.seal(plain));
  const seconds = (performance.now() - started) / 1000;
  t.comment(`seal+open 1 KiB: ${Math.round(count / seconds)} msg/s, ${((count * 1024) / seconds / 2 ** 20).toFixed(1)} MiB/s`);
  t.pass('measured');
});
