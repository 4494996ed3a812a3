// Routes: every peer computes the same paths; unicast chains reach their destination over
// established symmetric links without loops; a broadcast reaches every reachable peer once.
import t from 'tap';
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import { peerNameFromNumber, type PeerName } from '../../src/net/peer-name.js';
import { meshGraphArb, meshPeer, meshRecords, type MeshGraph } from '../lib/random-mesh.js';
import { computeRoutes, type Routes } from '../../src/mesh/routes.js';
import type { ConnectionSummary, PeerRecord, Topology } from '../../src/mesh/topology.js';

const N = meshPeer;
type Graph = MeshGraph;
const graphArb = meshGraphArb({ minPeers: 1, maxPeers: 24, extraPerPeer: 3, kinds: ['both', 'both', 'oneSided', 'halfEstablished'] });
/** The peers map every peer holds (the same data), connection lists in a shuffled order. */
const build = (g: Graph): Map<PeerName, PeerRecord> => meshRecords(g, 'shuffled');

/** Adjacency by the definitions, computed independently of the code under test. */
function adjacency(peers: Map<PeerName, PeerRecord>, establishedSymmetric: boolean): Map<PeerName, Set<PeerName>> {
  const adj = new Map<PeerName, Set<PeerName>>();
  for (const r of peers.values()) {
    const s = new Set<PeerName>();
    for (const c of r.connections) {
      const back = peers.get(c.name)?.connections.find((x) => x.name === r.name);
      if (!establishedSymmetric || (c.established && back?.established === true)) s.add(c.name);
    }
    adj.set(r.name, s);
  }
  return adj;
}

function distances(adj: Map<PeerName, Set<PeerName>>, from: PeerName): Map<PeerName, number> {
  const dist = new Map([[from, 0]]);
  const queue = [from];
  for (let i = 0; i < queue.length; i++) {
    for (const q of adj.get(queue[i]!) ?? []) {
      if (!dist.has(q)) {
        dist.set(q, dist.get(queue[i]!)! + 1);
        queue.push(q);
      }
    }
  }
  return dist;
}

function routesOfAll(peers: Map<PeerName, PeerRecord>): Map<PeerName, Routes> {
  return new Map([...peers.keys()].map((p) => [p, computeRoutes({ self: p, peers } satisfies Topology)]));
}

function checkUnicast(
  peers: Map<PeerName, PeerRecord>,
  routes: Map<PeerName, Routes>,
  establishedSymmetric: boolean,
): void {
  const adj = adjacency(peers, establishedSymmetric);
  for (const p of peers.keys()) {
    const table = establishedSymmetric ? routes.get(p)!.unicast : routes.get(p)!.unicastAll;
    const dist = distances(adj, p);
    deepStrictEqual([...table.keys()].sort(), [...dist.keys()].filter((d) => d !== p).sort(), 'exactly the reachable peers');
    for (const d of table.keys()) {
      // Follow each peer's own next hop: a shortest path, over the right kind of link.
      let cur = p;
      let hops = 0;
      while (cur !== d) {
        const r = establishedSymmetric ? routes.get(cur)!.unicast : routes.get(cur)!.unicastAll;
        const next = r.get(d);
        ok(next !== undefined, `${cur} has no route to ${d}`);
        ok(adj.get(cur)!.has(next), `${cur} -> ${next} is not a usable link`);
        cur = next;
        hops++;
        ok(hops <= peers.size, 'a loop');
      }
      equal(hops, dist.get(d), 'a shortest path');
    }
  }
}

function checkBroadcast(
  peers: Map<PeerName, PeerRecord>,
  routes: Map<PeerName, Routes>,
  establishedSymmetric: boolean,
): void {
  const adj = adjacency(peers, establishedSymmetric);
  for (const source of peers.keys()) {
    const received = new Map<PeerName, number>();
    const queue = [source];
    for (let i = 0; i < queue.length; i++) {
      const cur = queue[i]!;
      const r = routes.get(cur)!;
      for (const hop of establishedSymmetric ? r.broadcast(source) : r.broadcastAll(source)) {
        ok(adj.get(cur)!.has(hop), `${cur} passes a broadcast over ${cur} -> ${hop}, not a usable link`);
        received.set(hop, (received.get(hop) ?? 0) + 1);
        queue.push(hop);
        ok(queue.length <= peers.size * peers.size, 'a broadcast storm');
      }
    }
    const reachable = [...distances(adj, source).keys()].filter((q) => q !== source).sort();
    deepStrictEqual([...received.keys()].sort(), reachable, `every peer reachable from ${source} hears it`);
    for (const [q, count] of received) equal(count, 1, `${q} hears ${source}'s broadcast ${count} times`);
  }
}

t.test('unicast next hops lead every peer along a shortest established symmetric path', async (t) => {
  fc.assert(
    fc.property(graphArb, (g) => {
      const peers = build(g);
      checkUnicast(peers, routesOfAll(peers), true);
    }),
  );
  t.pass('checked');
});

t.test('unicastAll next hops lead every peer along a shortest listed path', async (t) => {
  fc.assert(
    fc.property(graphArb, (g) => {
      const peers = build(g);
      checkUnicast(peers, routesOfAll(peers), false);
    }),
  );
  t.pass('checked');
});

t.test('a broadcast from any source reaches every reachable peer exactly once', async (t) => {
  fc.assert(
    fc.property(graphArb, (g) => {
      const peers = build(g);
      const routes = routesOfAll(peers);
      checkBroadcast(peers, routes, true);
      checkBroadcast(peers, routes, false);
    }),
  );
  t.pass('checked');
});

t.test('the same topology gives the same routes whatever the order of its data', async (t) => {
  fc.assert(
    fc.property(graphArb, fc.nat(), (g, otherShuffle) => {
      const a = build(g);
      const b = build({ ...g, shuffle: otherShuffle });
      for (const p of a.keys()) {
        const ra = computeRoutes({ self: p, peers: a });
        const rb = computeRoutes({ self: p, peers: b });
        deepStrictEqual(new Map([...ra.unicast].sort()), new Map([...rb.unicast].sort()));
        deepStrictEqual(new Map([...ra.unicastAll].sort()), new Map([...rb.unicastAll].sort()));
        for (const s of a.keys()) {
          deepStrictEqual([...ra.broadcast(s)].sort(), [...rb.broadcast(s)].sort());
          deepStrictEqual([...ra.broadcastAll(s)].sort(), [...rb.broadcastAll(s)].sort());
        }
      }
    }),
  );
  t.pass('checked');
});

t.test('ties go to the lower name, so peers agree on one path', async (t) => {
  // A square 1-2-4, 1-3-4: both 2 and 3 lead from 1 to 4; the lower name wins.
  const M = (i: number): PeerName => peerNameFromNumber(0x0200_0000_0000 + i);
  const link = (i: number): ConnectionSummary => ({ name: M(i), address: '', outbound: false, established: true });
  const record = (i: number, to: number[]): PeerRecord => ({
    name: M(i), nickname: '', uid: 1n, version: 1, shortId: 0, connections: to.map(link),
  });
  const peers = new Map([record(1, [3, 2]), record(2, [1, 4]), record(3, [1, 4]), record(4, [3, 2])].map((r) => [r.name, r]));
  const r1 = computeRoutes({ self: M(1), peers });
  t.equal(r1.unicast.get(M(4)), M(2));
  t.same(r1.broadcast(M(1)), [M(2), M(3)], 'the source sends to all its neighbours');
  const r2 = computeRoutes({ self: M(2), peers });
  const r3 = computeRoutes({ self: M(3), peers });
  t.same(r2.broadcast(M(1)), [M(4)], '2 comes first in 1\'s tree and passes it on to 4');
  t.same(r3.broadcast(M(1)), [], '3 does not');
  t.same(computeRoutes({ self: M(1), peers }).broadcast(peerNameFromNumber(0x0300_0000_0000)), [], 'unknown source');
});

t.test('half-established and one-sided links carry gossip but not data', async (t) => {
  const M = (i: number): PeerName => peerNameFromNumber(0x0200_0000_0000 + i);
  const peers = new Map<PeerName, PeerRecord>([
    [M(1), { name: M(1), nickname: '', uid: 1n, version: 1, shortId: 0, connections: [{ name: M(2), address: '', outbound: true, established: true }] }],
    [M(2), { name: M(2), nickname: '', uid: 2n, version: 1, shortId: 0, connections: [{ name: M(1), address: '', outbound: false, established: false }] }],
  ]);
  const r = computeRoutes({ self: M(1), peers });
  t.equal(r.unicast.size, 0);
  t.equal(r.unicastAll.get(M(2)), M(2));
  t.same(r.broadcast(M(1)), []);
  t.same(r.broadcastAll(M(1)), [M(2)]);
});
