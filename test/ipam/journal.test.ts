import t from 'tap';
import fc from 'fast-check';
import { applyJournal, diffAllocations, encodeJournalEntry } from '../../src/ipam/journal.js';
import { formatIpv4 } from '../../src/net/ipv4.js';

type Alloc = { id: string; address: number };
const snapshotOf = (allocs: readonly Alloc[]): { allocations: { id: string; address: string }[] } =>
  ({ allocations: allocs.map((a) => ({ id: a.id, address: formatIpv4(a.address) })) });
const asMap = (value: unknown): Map<string, string> =>
  new Map((value as { allocations: { id: string; address: string }[] }).allocations.map((a) => [a.id, a.address]));

const states = fc.array(
  fc.uniqueArray(fc.record({ id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), address: fc.integer({ min: 1, max: 9 }) }), { selector: (a) => a.id, maxLength: 6 }),
  { minLength: 1, maxLength: 12 },
);

t.test('a snapshot plus the journal of later changes gives the latest state, also when replayed twice', async (t) => {
  fc.assert(fc.property(states, (history) => {
    const [first, ...rest] = history as [Alloc[], ...Alloc[][]];
    let journal = '';
    let before = new Map(first.map((a) => [a.id, a.address]));
    for (const next of rest) {
      const e = diffAllocations(before, next);
      if (e) journal += encodeJournalEntry(e);
      before = new Map(next.map((a) => [a.id, a.address]));
    }
    const last = history[history.length - 1]!;
    const want = asMap(snapshotOf(last));
    const once = applyJournal(snapshotOf(first), journal).value;
    t.same(asMap(once), want);
    // A crash after the snapshot of the final state but before the journal was emptied.
    t.same(asMap(applyJournal(snapshotOf(last), journal).value), want);
  }), { numRuns: 300 });
});

t.test('a torn last line is dropped; a damaged earlier line is corruption', async (t) => {
  const snap = snapshotOf([{ id: 'a', address: 1 }]);
  const good = encodeJournalEntry({ set: [['b', '0.0.0.2']], del: ['a'] });
  const r = applyJournal(snap, good + '{"set":[["c","0.0.');
  t.equal(r.torn, true);
  t.equal(r.applied, 1);
  t.same([...asMap(r.value)], [['b', '0.0.0.2']]);
  t.throws(() => applyJournal(snap, `{"set":[["c",1]],"del":[]}\n${good}`), { name: "JournalError", message: /line 1 has a malformed allocation/ });
  t.throws(() => applyJournal(snap, `nonsense\n`), { name: "JournalError", message: /line 1 is not JSON/ });
  t.equal(diffAllocations(new Map([['a', 1]]), [{ id: 'a', address: 1 }]), undefined, 'no change, no line');
});
