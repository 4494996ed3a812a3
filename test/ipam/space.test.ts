import t from 'tap';
import fc from 'fast-check';
import { parseCidr } from '../../src/net/ipv4.js';
import { type Interval } from '../../src/ipam/interval.js';
import { Space } from '../../src/ipam/space.js';

const RANGE = parseCidr('10.0.0.0/26'); // 64 addresses
const S = RANGE.start;

/** A straightforward model: walk every address. */
function modelLowest(held: Set<number>, owned: Interval[]): number | undefined {
  for (const span of owned) {
    for (let a = span.start; a < span.end; a++) {
      if (a !== S && a !== S + 63 && !held.has(a)) return a;
    }
  }
  return undefined;
}

function modelLargestRun(held: Set<number>, owned: Interval[]): number {
  let best = 0;
  for (const span of owned) {
    let run = 0;
    for (let a = span.start; a < span.end; a++) {
      if (a !== S && a !== S + 63 && !held.has(a)) best = Math.max(best, ++run);
      else run = 0;
    }
  }
  return best;
}

const ownedArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 64 }), { minLength: 2, maxLength: 8 })
  .map((cuts) => {
    const sorted = [...cuts].sort((a, b) => a - b);
    const spans: Interval[] = [];
    for (let i = 0; i + 1 < sorted.length; i += 2) spans.push({ start: S + (sorted[i] as number), end: S + (sorted[i + 1] as number) });
    return spans.filter((s) => s.end > s.start);
  });

t.test('lowest free, free counts and largest run agree with a walk over every address', async (t) => {
  fc.assert(
    fc.property(ownedArb, fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 63 })), { maxLength: 60 }), (owned, ops) => {
      const space = new Space(RANGE);
      const held = new Set<number>();
      for (const [add, offset] of ops) {
        const a = S + offset;
        const id = `c${offset}`;
        if (add && !held.has(a) && a !== S && a !== S + 63) {
          space.add(id, a);
          held.add(a);
        } else if (!add && held.has(a)) {
          t.equal(space.remove(id), a);
          held.delete(a);
        }
      }
      t.equal(space.lowestFree(owned), modelLowest(held, owned));
      const run = space.largestFreeRun(owned);
      t.equal(run ? run.end - run.start : 0, modelLargestRun(held, owned));
      for (const span of owned) {
        let free = 0;
        for (let a = span.start; a < span.end; a++) if (a !== S && a !== S + 63 && !held.has(a)) free++;
        t.equal(space.freeIn(span.start, span.end), free);
      }
      t.equal(space.size, held.size);
      t.same(space.entries().map((e) => e.address), [...held].sort((x, y) => x - y));
    }),
    { numRuns: 200 },
  );
});

t.test('the first and last address of the range are never handed out', async (t) => {
  const space = new Space(RANGE);
  t.equal(space.lowestFree([{ start: S, end: S + 64 }]), S + 1);
  t.equal(space.lowestFree([{ start: S + 63, end: S + 64 }]), undefined);
  t.throws(() => space.add('x', S));
  t.throws(() => space.add('x', S + 63));
  t.equal(space.freeIn(S, S + 64), 62);
});

t.test('one address per id, one id per address', async (t) => {
  const space = new Space(RANGE, [{ id: 'a', address: S + 5 }]);
  t.throws(() => space.add('a', S + 6), /already holds/);
  t.throws(() => space.add('b', S + 5), /already held/);
  t.equal(space.holderOf(S + 5), 'a');
  t.equal(space.addressOf('a'), S + 5);
  t.equal(space.remove('zz'), undefined);
  const copy = space.clone();
  copy.remove('a');
  t.equal(space.addressOf('a'), S + 5, 'a clone is independent');
});
