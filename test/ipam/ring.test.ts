import t from 'tap';
import fc from 'fast-check';
import { parseCidr, parseIpv4 } from '../../src/net/ipv4.js';
import { type PeerName, peerNameFromNumber } from '../../src/net/peer-name.js';
import {
  type Ring,
  type Token,
  TAKEOVER_VERSION_BUMP,
  allocatableIn,
  checkRing,
  createRing,
  grantRange,
  mergeRings,
  ownedCounts,
  ownedIntervals,
  ownerOf,
  reportFree,
  ringEntries,
  transferOwnership,
} from '../../src/ipam/ring.js';

const RANGE = parseCidr('10.0.0.0/24');
const PEERS = [1, 2, 3, 4].map((n) => peerNameFromNumber(0x020000000000 + n));
const [A, B, C, D] = PEERS as [PeerName, PeerName, PeerName, PeerName];
const MEMBERS = [A, B, C];

/** Any structurally valid ring over RANGE with the fixed members. */
const ringArb: fc.Arbitrary<Ring> = fc
  .uniqueArray(fc.integer({ min: 1, max: 255 }), { maxLength: 8 })
  .chain((offsets) => {
    const starts = [0, ...offsets].sort((x, y) => x - y);
    return fc
      .tuple(
        ...starts.map((s, i) =>
          fc.record({
            owner: fc.constantFrom(...PEERS),
            version: fc.integer({ min: 1, max: 4 }),
            freeFraction: fc.double({ min: 0, max: 1, noNaN: true }),
            start: fc.constant(s),
            end: fc.constant(starts[i + 1] ?? 256),
          }),
        ),
      )
      .map((specs) => ({
        range: RANGE,
        members: MEMBERS,
        tokens: specs.map((s) => ({
          start: RANGE.start + s.start,
          owner: s.owner,
          version: s.version,
          free: Math.floor(s.freeFraction * allocatableIn(RANGE, RANGE.start + s.start, RANGE.start + s.end)),
        })),
      }));
  });

function mergedRing(a: Ring, b: Ring): Ring {
  const r = mergeRings(a, b);
  if (!r.ok) throw new Error(r.message);
  return r.ring;
}

t.test('generated rings are valid', async (t) => {
  fc.assert(fc.property(ringArb, (r) => checkRing(r) === undefined));
  t.pass();
});

t.test('merge is commutative, associative and idempotent', async (t) => {
  fc.assert(
    fc.property(ringArb, ringArb, ringArb, (a, b, c) => {
      const ab = mergedRing(a, b);
      const ba = mergedRing(b, a);
      t.same(ab.tokens, ba.tokens);
      t.same(mergedRing(a, a).tokens, a.tokens);
      t.same(mergedRing(ab, b).tokens, ab.tokens);
      t.same(mergedRing(mergedRing(a, b), c).tokens, mergedRing(a, mergedRing(b, c)).tokens);
      t.equal(checkRing(ab), undefined);
      // Forks are seen the same from both sides.
      const f1 = mergeRings(a, b);
      const f2 = mergeRings(b, a);
      if (f1.ok && f2.ok) t.same(f1.forks, f2.forks);
    }),
    { numRuns: 300 },
  );
});

t.test('merge reports unchanged when nothing is new, and keeps the newer version of a token', async (t) => {
  const base = createRing(RANGE, MEMBERS);
  const r = mergeRings(base, base);
  t.ok(r.ok && !r.changed && r.ring === base);
  const newer = transferOwnership(base, C, A, 1).ring;
  const m = mergeRings(base, newer);
  t.ok(m.ok && m.changed);
  t.same(ownedCounts(mergedRing(base, newer)), ownedCounts(newer));
  t.same(mergedRing(newer, base).tokens, newer.tokens, 'an older replica changes nothing');
});

t.test('a merge that would take addresses in use is refused, naming the range and both owners', async (t) => {
  const base = createRing(RANGE, MEMBERS); // A: .0-.85, B: .86-.170, C: .171-.255
  // Two peers both took C's range (two rmpeers): A and B each think they own it.
  const takenByA = transferOwnership(base, C, A, TAKEOVER_VERSION_BUMP).ring;
  const takenByB = transferOwnership(transferOwnership(base, C, B, TAKEOVER_VERSION_BUMP).ring, B, B, 1).ring;
  const inUseOnA = (start: number, end: number): boolean => start <= parseIpv4('10.0.0.171') && parseIpv4('10.0.0.171') < end;
  const refused = mergeRings(takenByA, takenByB, { self: A, inUse: inUseOnA });
  t.equal(refused.ok, false);
  if (!refused.ok) {
    t.equal(refused.reason, 'ownership');
    t.same(refused.conflicts, [{ start: parseIpv4('10.0.0.171'), end: parseIpv4('10.0.1.0'), from: A, owner: B }]);
    t.match(refused.message, `peer ${B} says it owns 10.0.0.171-10.0.0.255, which ${A} owns`);
  }
  t.equal(ownerOf(takenByA, parseIpv4('10.0.0.200')), A, 'our replica is untouched');

  // Nothing in use there: the other claim wins and the merge says what we gave up.
  const yielded = mergeRings(takenByA, takenByB, { self: A, inUse: () => false });
  t.ok(yielded.ok);
  if (yielded.ok) {
    t.equal(ownerOf(yielded.ring, parseIpv4('10.0.0.200')), B);
    t.same(yielded.yielded.map((y) => [y.from, y.owner]), [[A, B]]);
  }

  // Same version, different owners: a fork, decided the same way everywhere and reported.
  const sameVersionB = transferOwnership(base, C, B, TAKEOVER_VERSION_BUMP).ring;
  const fork = mergeRings(takenByA, sameVersionB);
  const forkBack = mergeRings(sameVersionB, takenByA);
  t.ok(fork.ok && forkBack.ok);
  if (fork.ok && forkBack.ok) {
    t.same(fork.ring.tokens, forkBack.ring.tokens);
    t.equal(fork.forks.length, 1);
    t.same(fork.forks[0]?.owners, [A, B]);
  }
  // The owner with addresses in use refuses the fork's other side even at the same version.
  const forkRefused = mergeRings(takenByA, sameVersionB, { self: A, inUse: () => true });
  t.equal(forkRefused.ok, false, 'B > A wins the tie, so A would lose addresses in use');
});

t.test('rings of another range or other members are refused', async (t) => {
  const ours = createRing(RANGE, MEMBERS);
  const otherMembers = createRing(RANGE, [A, B, D]);
  const r1 = mergeRings(ours, otherMembers);
  t.ok(!r1.ok && r1.reason === 'members' && /seeded by different peers/.test(r1.message));
  const otherRange = createRing(parseCidr('10.0.1.0/24'), MEMBERS);
  const r2 = mergeRings(ours, otherRange);
  t.ok(!r2.ok && r2.reason === 'range' && /received: 10\.0\.1\.0\/24, ours: 10\.0\.0\.0\/24/.test(r2.message));
});

t.test('grantRange moves exactly the span, and the change wins every merge', async (t) => {
  fc.assert(
    fc.property(ringArb, fc.nat(), fc.nat(), fc.constantFrom(...PEERS), (ring, x, y, to) => {
      const self = ring.tokens[x % ring.tokens.length]?.owner as PeerName;
      const spans = ownedIntervals(ring, self);
      const span = spans[x % spans.length];
      if (!span || self === to) return;
      const size = span.end - span.start;
      const start = span.start + (y % size);
      const end = start + 1 + ((x + y) % (span.end - start));
      const granted = grantRange(ring, self, start, end, to);
      t.equal(checkRing(granted), undefined);
      for (let a = RANGE.start; a < RANGE.start + 256; a++) {
        const expected = a >= start && a < end ? to : ownerOf(ring, a);
        if (ownerOf(granted, a) !== expected) t.fail(`address ${a}: ${ownerOf(granted, a)} != ${expected}`);
      }
      t.same(mergedRing(ring, granted).tokens, granted.tokens, 'the owner\'s change wins');
      t.same(mergedRing(granted, ring).tokens, granted.tokens);
    }),
    { numRuns: 300 },
  );
  const base = createRing(RANGE, MEMBERS);
  t.throws(() => grantRange(base, A, parseIpv4('10.0.0.80'), parseIpv4('10.0.0.90'), D), RangeError, 'not all ours');
});

t.test('transferOwnership moves every token and counts the addresses', async (t) => {
  const base = createRing(RANGE, MEMBERS);
  const { ring, addresses } = transferOwnership(base, B, D, TAKEOVER_VERSION_BUMP);
  t.equal(addresses, 85);
  t.equal(ownedCounts(ring).get(D), 85);
  t.equal(ownedCounts(ring).get(B), undefined);
  t.ok(ring.tokens.filter((tk: Token) => tk.owner === D).every((tk) => tk.version === 1 + TAKEOVER_VERSION_BUMP));
  t.equal(transferOwnership(base, D, A, 1).addresses, 0);
});

t.test('reportFree bumps only the tokens whose count changed', async (t) => {
  const base = createRing(RANGE, MEMBERS);
  t.equal(reportFree(base, A, (s, e) => allocatableIn(RANGE, s, e)), base, 'same counts, same ring');
  const r = reportFree(base, A, () => 3);
  const entries = ringEntries(r);
  t.same(entries.map((e) => [e.owner, e.version, e.free]), [
    [A, 2, 3],
    [B, 1, 85],
    [C, 1, 84],
  ]);
});

t.test('checkRing finds broken rings', async (t) => {
  const base = createRing(RANGE, MEMBERS);
  const broken: Array<[string, Ring]> = [
    ['first token', { ...base, tokens: base.tokens.slice(1) }],
    ['sorted', { ...base, tokens: [...base.tokens].reverse() }],
    ['version', { ...base, tokens: base.tokens.map((tk) => ({ ...tk, version: 0 })) }],
    ['free', { ...base, tokens: base.tokens.map((tk) => ({ ...tk, free: 1000 })) }],
    ['owner', { ...base, tokens: base.tokens.map((tk) => ({ ...tk, owner: 'nobody' as PeerName })) }],
    ['outside', { ...base, tokens: [...base.tokens, { start: parseIpv4('10.0.1.5'), owner: A, version: 1, free: 0 }] }],
    ['members', { ...base, members: [] }],
  ];
  for (const [what, ring] of broken) t.not(checkRing(ring), undefined, what);
});
