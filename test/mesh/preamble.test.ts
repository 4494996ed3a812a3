import t from 'tap';
import fc from 'fast-check';
import {
  PROTOCOL_MAX_VERSION,
  PROTOCOL_MIN_VERSION,
  checkEncryptionAgreement,
  encodePreamble,
  negotiateVersion,
  parsePreamble,
  preambleLength,
  type Preamble,
} from '../../src/mesh/preamble.js';
import { refusal } from '../lib/refusal.js';

const key = Uint8Array.from({ length: 32 }, (_, i) => i + 100);
const plain: Preamble = { minVersion: PROTOCOL_MIN_VERSION, maxVersion: PROTOCOL_MAX_VERSION };
const encrypted: Preamble = { ...plain, publicKey: key };
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

t.test('the layout is "weft", min, max, flags and the key', async (t) => {
  t.same([...encodePreamble({ minVersion: 1, maxVersion: 3 })], [0x77, 0x65, 0x66, 0x74, 1, 3, 0]);
  const enc = encodePreamble({ minVersion: 2, maxVersion: 2, publicKey: key });
  t.same([...enc.subarray(0, 7)], [0x77, 0x65, 0x66, 0x74, 2, 2, 1]);
  t.same([...enc.subarray(7)], [...key]);
  t.equal(enc.length, preambleLength(encrypted));
});

t.test('round trip, leaving the bytes after the preamble unconsumed', async (t) => {
  for (const p of [plain, encrypted, { minVersion: 1, maxVersion: 255 }]) {
    const wire = new Uint8Array([...encodePreamble(p), 0, 0, 0, 9, 42]);
    const parsed = parsePreamble(wire);
    t.ok(parsed);
    t.same(parsed!.preamble, p);
    t.equal(parsed!.consumed, preambleLength(p));
  }
});

t.test('the public key is a copy, not a view of the socket chunk', async (t) => {
  const wire = encodePreamble(encrypted);
  const parsed = parsePreamble(wire)!;
  wire.fill(0);
  t.same([...parsed.preamble.publicKey!], [...key]);
});

t.test('every proper prefix needs more bytes', async (t) => {
  for (const p of [plain, encrypted]) {
    const wire = encodePreamble(p);
    for (let n = 0; n < wire.length; n++) t.equal(parsePreamble(wire.subarray(0, n)), undefined, `prefix ${n}`);
  }
});

t.test('a stranger is refused on its first byte, with what it sent shown', async (t) => {
  t.match(refusal(() => parsePreamble(ascii('G'))), /^not a weft peer: it sent "G" \(47\)$/);
  t.match(refusal(() => parsePreamble(ascii('GET / HTTP/1.1\r\nHost: x\r\n'))), /^not a weft peer: it sent "GET \/ HTTP\/1\.1\.\." \(47 45 54 20 2f .* …\)$/);
  t.match(refusal(() => parsePreamble(bytes(0x77, 0x65, 0x66, 0x00))), /not a weft peer: it sent "wef\." \(77 65 66 00\)/);
  t.match(refusal(() => parsePreamble(bytes(0x16, 0x03, 0x01))), /not a weft peer: .*16 03 01/); // a TLS client hello
});

t.test('a Weave Net router is named as such', async (t) => {
  t.match(refusal(() => parsePreamble(new Uint8Array([...ascii('weave'), 1, 2]))), /not a weft peer: .*Weave Net router/);
});

t.test('an invalid version range or unknown flags are refused', async (t) => {
  const withTail = (min: number, max: number, flags: number): Uint8Array => new Uint8Array([...ascii('weft'), min, max, flags]);
  t.match(refusal(() => parsePreamble(withTail(0, 1, 0))), /invalid preamble: protocol versions must be 1\.\.255, got \[0,1\]/);
  t.match(refusal(() => parsePreamble(withTail(3, 2, 0))), /invalid preamble: protocol version range \[3,2\] is empty/);
  t.match(refusal(() => parsePreamble(withTail(1, 1, 2))), /invalid preamble: unknown flags 0x02/);
  t.match(refusal(() => parsePreamble(withTail(1, 1, 0x81))), /unknown flags 0x81/);
});

t.test('encoding our own bad preamble is a RangeError', async (t) => {
  t.throws(() => encodePreamble({ minVersion: 0, maxVersion: 1 }), RangeError);
  t.throws(() => encodePreamble({ minVersion: 2, maxVersion: 1 }), RangeError);
  t.throws(() => encodePreamble({ minVersion: 1, maxVersion: 256 }), RangeError);
  t.throws(() => encodePreamble({ minVersion: 1, maxVersion: 1, publicKey: new Uint8Array(31) }), RangeError);
});

t.test('version negotiation picks the highest common version', async (t) => {
  t.equal(negotiateVersion({ minVersion: 1, maxVersion: 3 }, { minVersion: 2, maxVersion: 5 }), 3);
  t.equal(negotiateVersion({ minVersion: 2, maxVersion: 5 }, { minVersion: 1, maxVersion: 3 }), 3);
  t.equal(negotiateVersion(plain, plain), 1);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 5 }),
      (aMin, aSpan, bMin, bSpan) => {
        const a = { minVersion: aMin, maxVersion: aMin + aSpan };
        const b = { minVersion: bMin, maxVersion: bMin + bSpan };
        const common = [];
        for (let v = 1; v <= 14; v++) if (v >= aMin && v <= a.maxVersion && v >= bMin && v <= b.maxVersion) common.push(v);
        if (common.length === 0) {
          if (!refusal(() => negotiateVersion(a, b)).includes('is incompatible')) throw new Error('accepted');
        } else {
          const v = negotiateVersion(a, b);
          if (v !== Math.max(...common) || negotiateVersion(b, a) !== v) throw new Error(`bad choice ${v}`);
        }
      }),
  );
});

t.test('incompatible versions: the message names both ranges', async (t) => {
  t.equal(refusal(() => negotiateVersion({ minVersion: 1, maxVersion: 2 }, { minVersion: 3, maxVersion: 4 })),
    'remote version range [3,4] is incompatible with ours [1,2]');
  t.equal(refusal(() => negotiateVersion({ minVersion: 5, maxVersion: 6 }, { minVersion: 1, maxVersion: 4 })),
    'remote version range [1,4] is incompatible with ours [5,6]');
});

t.test('both ends must agree on encryption', async (t) => {
  checkEncryptionAgreement(plain, plain);
  checkEncryptionAgreement(encrypted, { ...plain, publicKey: new Uint8Array(32).fill(1) });
  t.equal(refusal(() => checkEncryptionAgreement(encrypted, plain)), 'password specified, but peer requested an unencrypted connection');
  t.equal(refusal(() => checkEncryptionAgreement(plain, encrypted)), 'peer requested an encrypted connection, but no password was specified');
});
