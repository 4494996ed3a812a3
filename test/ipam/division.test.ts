import t from 'tap';
import fc from 'fast-check';
import { cidrSize, parseCidr } from '../../src/net/ipv4.js';
import { type PeerName, peerNameFromNumber } from '../../src/net/peer-name.js';
import { divideEvenly, normalizeMembers } from '../../src/ipam/division.js';
import { createRing, ownedCounts, ringEntries } from '../../src/ipam/ring.js';

const RANGE = parseCidr('10.32.0.0/12');

/** N distinct names in a scrambled order, so that the sort is exercised. */
function names(n: number, salt = 0): PeerName[] {
  return Array.from({ length: n }, (_, i) => peerNameFromNumber(((i * 7919 + salt * 104729) % 65521) * 4099 + 0x020000000000));
}

t.test('N = 1..64 initial members on 10.32.0.0/12: even, contiguous, sorted, exact', async (t) => {
  for (let n = 1; n <= 64; n++) {
    const members = names(n, n);
    const shares = divideEvenly(RANGE, members);
    const sizes = shares.map((s) => s.end - s.start);
    if (Math.max(...sizes) - Math.min(...sizes) > 1) t.fail(`uneven for ${n}`);
    if (sizes.reduce((a, b) => a + b, 0) !== cidrSize(RANGE)) t.fail(`not exact for ${n}`);
    const sorted = normalizeMembers(members);
    if (shares.some((s, i) => s.owner !== sorted[i])) t.fail(`not sorted for ${n}`);
    if (shares.some((s, i) => i > 0 && s.start !== shares[i - 1]?.end)) t.fail(`not contiguous for ${n}`);
    // The ring built from the division gives the same counts.
    const counts = ownedCounts(createRing(RANGE, members));
    if (sorted.some((m, i) => counts.get(m) !== sizes[i])) t.fail(`ring differs from division for ${n}`);
  }
  t.pass('checked N = 1..64');
});

t.test('three peers get a third each, not 50/25/25', async (t) => {
  const shares = divideEvenly(RANGE, names(3));
  t.same(shares.map((s) => s.end - s.start), [349526, 349525, 349525]);
});

t.test('any range, any member count (even more members than addresses)', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 30 }).chain((len) => fc.tuple(fc.constant(len), fc.integer({ min: 0, max: 2 ** len - 1 }))),
      fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 48 - 1 }), { minLength: 1, maxLength: 80 }),
      ([len, index], nums) => {
        const range = { start: index * 2 ** (32 - len), prefixLength: len };
        const members = nums.map(peerNameFromNumber);
        const shares = divideEvenly(range, members);
        const sizes = shares.map((s) => s.end - s.start);
        const ring = createRing(range, members);
        const entries = ringEntries(ring);
        return (
          Math.max(...sizes) - Math.min(...sizes) <= 1 &&
          sizes.reduce((a, b) => a + b, 0) === cidrSize(range) &&
          shares.every((s, i) => i === 0 || s.start === shares[i - 1]?.end) &&
          entries[0]?.start === range.start &&
          entries.every((e) => e.end > e.start)
        );
      },
    ),
  );
  t.pass('every generated division is even and exact');
});

t.test('duplicates collapse; no members is an error', async (t) => {
  const [a, b] = names(2);
  t.same(divideEvenly(RANGE, [a as PeerName, b as PeerName, a as PeerName]).length, 2);
  t.throws(() => divideEvenly(RANGE, []), RangeError);
});
