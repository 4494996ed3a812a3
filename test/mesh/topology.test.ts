// The topology values: merge order, the old-incarnation rule, deltas, forgetting, the digest.
import t from 'tap';
import { deepStrictEqual } from 'node:assert/strict';
import fc from 'fast-check';
import { peerNameFromNumber, type PeerName } from '../../src/net/peer-name.js';
import {
  applyDelta,
  applyDeltas,
  createTopology,
  diffRecords,
  lostConnections,
  mergeRecords,
  removeUnreachable,
  removeUnreachableAmong,
  selfRecord,
  setLocalConnections,
  topologyHash,
  type ConnectionSummary,
  type PeerRecord,
  type Topology,
} from '../../src/mesh/topology.js';

const N = (i: number): PeerName => peerNameFromNumber(0x0200_0000_0000 + i);
const conn = (i: number, established = true): ConnectionSummary => ({
  name: N(i),
  address: `10.0.0.${i}:6783`,
  outbound: i % 2 === 0,
  established,
});
const rec = (i: number, version: number, conns: number[], uid = BigInt(1000 + i)): PeerRecord => ({
  name: N(i),
  nickname: `host-${i}`,
  uid,
  version,
  shortId: i,
  connections: conns.map((c) => conn(c)),
});
const topo = (self: number, records: PeerRecord[]): Topology => ({
  self: N(self),
  peers: new Map(records.map((r) => [r.name, r])),
});
const names = (tp: Topology): string[] => [...tp.peers.keys()].sort();

t.test('a new topology holds only our own record at version 1', async (t) => {
  const tp = createTopology({ name: N(1), nickname: 'a', uid: 7n, shortId: 3 });
  t.same(names(tp), [N(1)]);
  t.same(selfRecord(tp), { name: N(1), nickname: 'a', uid: 7n, shortId: 3, version: 1, connections: [] });
});

t.test('our version goes up only when our connections really change', async (t) => {
  const tp = createTopology({ name: N(1), nickname: 'a', uid: 7n, shortId: 3 });
  const a = setLocalConnections(tp, [conn(3), conn(2)]);
  t.ok(a.changed);
  t.equal(selfRecord(a.topology).version, 2);
  t.same(selfRecord(a.topology).connections.map((c) => c.name), [N(2), N(3)], 'sorted by name');
  const same = setLocalConnections(a.topology, [conn(2), conn(3)]);
  t.notOk(same.changed, 'same set in another order');
  t.equal(same.topology, a.topology);
  const est = setLocalConnections(a.topology, [conn(2), conn(3, false)]);
  t.ok(est.changed, 'a state change counts');
  t.equal(selfRecord(est.topology).version, 3);
  const dup = setLocalConnections(tp, [conn(2, false), conn(2), conn(1)]);
  t.same(selfRecord(dup.topology).connections, [conn(2)], 'one per peer, established wins, never ourselves');
});

t.test('merge keeps the newer record: higher version, then higher uid', async (t) => {
  const base = topo(1, [rec(1, 1, []), rec(2, 5, [3])]);
  const older = mergeRecords(base, [rec(2, 4, [])]);
  t.equal(older.topology, base, 'an older record changes nothing');
  t.same(older.newInfo, []);
  const sameVersionLowerUid = mergeRecords(base, [rec(2, 5, [], 1n)]);
  t.same(sameVersionLowerUid.newInfo, []);
  const sameVersionHigherUid = mergeRecords(base, [rec(2, 5, [], 99999n)]);
  t.same(sameVersionHigherUid.newInfo.map((r) => r.uid), [99999n]);
  const newer = mergeRecords(base, [rec(2, 6, [4]), rec(5, 1, [])]);
  t.same(newer.newInfo.map((r) => `${r.name}@${r.version}`).sort(), [`${N(2)}@6`, `${N(5)}@1`]);
  t.same(names(newer.topology), [N(1), N(2), N(5)], 'peers named only in connection lists are not added');
  t.equal(base.peers.get(N(2))!.version, 5, 'the input is not modified');
});

t.test('a record of an old incarnation of ourselves raises our version beyond it', async (t) => {
  const base = topo(1, [rec(1, 3, [2], 50n), rec(2, 1, [1])]);
  const r = mergeRecords(base, [rec(1, 9, [4], 40n)]);
  t.ok(r.selfBumped);
  t.equal(selfRecord(r.topology).version, 10);
  t.equal(selfRecord(r.topology).uid, 50n, 'our own record is kept');
  t.same(selfRecord(r.topology).connections, [conn(2)]);
  t.same(r.newInfo, [selfRecord(r.topology)], 'our record is news');
  const stale = mergeRecords(base, [rec(1, 2, [], 40n)]);
  t.notOk(stale.selfBumped, 'an old incarnation we already beat changes nothing');
  const deltaAboutUs = applyDeltas(base, [{ ...diffRecords(rec(1, 3, [], 40n), rec(1, 4, [2], 40n)) }]);
  t.ok(deltaAboutUs.selfBumped, 'deltas about an old incarnation bump us too');
  t.equal(selfRecord(deltaAboutUs.topology).version, 5);
});

t.test('deltas apply only to the exact base; others are reported as needing the full record', async (t) => {
  const v1 = rec(2, 1, [1, 3]);
  const v2 = rec(2, 2, [1, 4]);
  const v3 = rec(2, 3, [4]);
  const d12 = diffRecords(v1, v2);
  const d23 = diffRecords(v2, v3);
  t.same(d12.upserts.map((c) => c.name), [N(4)]);
  t.same(d12.removes, [N(3)]);
  const base = topo(1, [rec(1, 1, [2]), v1]);
  const ok = applyDeltas(base, [d12, d23]);
  t.same(ok.topology.peers.get(N(2)), v3, 'a chain in one batch');
  t.same(ok.needFull, []);
  const gap = applyDeltas(base, [d23]);
  t.equal(gap.topology, base);
  t.same(gap.needFull, [{ name: N(2), uid: v3.uid, version: 3 }]);
  const old = applyDeltas(topo(1, [rec(1, 1, [2]), v3]), [d12]);
  t.same(old.needFull, [], 'a delta older than our copy is simply old news');
  const unknown = applyDeltas(topo(1, [rec(1, 1, [])]), [d12]);
  t.same(unknown.needFull.map((v) => v.name), [N(2)], 'a delta for a peer we do not know');
  const otherUid = applyDeltas(topo(1, [rec(1, 1, [2]), rec(2, 1, [1, 3], 5n)]), [d12]);
  t.same(otherUid.needFull.map((v) => v.version), [2], 'a delta for another incarnation does not fit');
});

const connsArb = fc.uniqueArray(
  fc.record({ i: fc.integer({ min: 2, max: 30 }), established: fc.boolean(), port: fc.integer({ min: 1, max: 3 }) }),
  { selector: (c) => c.i, maxLength: 12 },
);
const toConns = (cs: { i: number; established: boolean; port: number }[]): ConnectionSummary[] =>
  cs.map((c) => ({ name: N(c.i), address: `10.0.0.${c.i}:${c.port}`, outbound: c.i % 3 === 0, established: c.established }));

t.test('applying the diff of two versions gives the later version', async () => {
  fc.assert(
    fc.property(connsArb, connsArb, (a, b) => {
      const from = setLocalConnections(createTopology({ name: N(1), nickname: 'x', uid: 3n, shortId: 0 }), toConns(a));
      const to = setLocalConnections(from.topology, toConns(b));
      const r1 = selfRecord(from.topology);
      const r2 = selfRecord(to.topology);
      if (!to.changed) return;
      const d = diffRecords(r1, r2);
      deepStrictEqual(applyDelta(r1, d), r2);
      deepStrictEqual(lostConnections(r1, r2).sort(), d.removes.slice().sort());
    }),
  );
});

/** A random directed "who lists whom" graph over peers 1..n, self = 1. */
const graphArb = fc.integer({ min: 1, max: 14 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    edges: fc.array(fc.tuple(fc.integer({ min: 1, max: n }), fc.integer({ min: 1, max: n })), { maxLength: 40 }),
    cut: fc.array(fc.nat(), { maxLength: 6 }),
  }),
);

function graphTopology(n: number, edges: [number, number][]): Topology {
  const lists = new Map<number, Set<number>>();
  for (let i = 1; i <= n; i++) lists.set(i, new Set());
  for (const [a, b] of edges) if (a !== b) lists.get(a)!.add(b);
  return topo(1, [...lists].map(([i, s]) => rec(i, 1, [...s].sort((x, y) => x - y))));
}

/** Reachability by the definition: repeatedly add peers listed by a reached peer. */
function reachableByDefinition(tp: Topology): Set<PeerName> {
  const reached = new Set<PeerName>([tp.self]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of tp.peers.values()) {
      if (!reached.has(r.name)) continue;
      for (const c of r.connections) {
        if (tp.peers.has(c.name) && !reached.has(c.name)) {
          reached.add(c.name);
          grew = true;
        }
      }
    }
  }
  return reached;
}

t.test('removeUnreachable forgets exactly the peers no reached peer lists', async () => {
  fc.assert(
    fc.property(graphArb, ({ n, edges }) => {
      const tp = graphTopology(n, edges);
      const { topology, removed } = removeUnreachable(tp);
      const want = reachableByDefinition(tp);
      deepStrictEqual(names(topology), [...want].sort());
      deepStrictEqual(removed.map((r) => r.name).sort(), names(tp).filter((x) => !want.has(x as PeerName)));
    }),
  );
});

t.test('the cheap check finds the same peers when told who lost connections', async () => {
  fc.assert(
    fc.property(graphArb, ({ n, edges, cut }) => {
      // Start from a topology where everyone is reachable, then cut some edges.
      const start = removeUnreachable(graphTopology(n, edges)).topology;
      const kept = edges.filter((_, i) => !cut.includes(i % Math.max(1, edges.length)));
      const cutTp = graphTopology(n, kept);
      const after: Topology = { self: start.self, peers: new Map([...start.peers.keys()].map((k) => [k, cutTp.peers.get(k)!])) };
      const suspects = new Set<PeerName>();
      for (const [k, r] of start.peers) for (const x of lostConnections(r, after.peers.get(k)!)) suspects.add(x);
      const full = removeUnreachable(after);
      const cheap = removeUnreachableAmong(after, suspects);
      deepStrictEqual(names(cheap.topology), names(full.topology));
    }),
  );
});

t.test('either direction listed by a reachable peer keeps a peer', async (t) => {
  // 1 lists 2; 3 lists 2 but nobody reached lists 3; 4 is listed by 2.
  const tp = topo(1, [rec(1, 1, [2]), rec(2, 1, [4]), rec(3, 1, [2]), rec(4, 1, [])]);
  const { topology, removed } = removeUnreachable(tp);
  t.same(names(topology), [N(1), N(2), N(4)]);
  t.same(removed.map((r) => r.name), [N(3)]);
  t.same(removeUnreachableAmong(tp, new Set([N(4)])).removed, [], 'stops once the suspects are found');
  t.same(removeUnreachableAmong(tp, new Set([N(3)])).removed.map((r) => r.name), [N(3)]);
});

t.test('the topology hash depends on the set of (name, uid, version) only', async (t) => {
  const a = topo(1, [rec(1, 1, [2]), rec(2, 3, [1]), rec(3, 1, [])]);
  const b = topo(1, [rec(3, 1, [2]), rec(2, 3, []), rec(1, 1, [2])]);
  t.same(Buffer.from(topologyHash(a)), Buffer.from(topologyHash(b)), 'order and content do not matter');
  t.equal(topologyHash(a).length, 16);
  const c = topo(1, [rec(1, 1, [2]), rec(2, 4, [1]), rec(3, 1, [])]);
  const d = topo(1, [rec(1, 1, [2]), rec(2, 3, [1], 77n), rec(3, 1, [])]);
  const e = topo(1, [rec(1, 1, [2]), rec(2, 3, [1])]);
  for (const other of [c, d, e]) t.notSame(Buffer.from(topologyHash(other)), Buffer.from(topologyHash(a)));
});
