// Thousands of random histories of a whole cluster of IPAM cores: allocate, release, claim, join,
// leave, kill, restart from disk, rmpeer, partitions and heals, time passing. After every step no
// address may have two owners and no address may be held twice; allocate must be idempotent.
import t from 'tap';
import fc from 'fast-check';
import { parseCidr } from '../../src/net/ipv4.js';
import { type PeerName, peerNameFromNumber } from '../../src/net/peer-name.js';
import { type IpamMode } from '../../src/ipam/allocator.js';
import { ownedCounts } from '../../src/ipam/ring.js';
import { Cluster, findViolation } from './cluster-sim.js';

const NAMES: PeerName[] = Array.from({ length: 10 }, (_, i) => peerNameFromNumber(0x02_00_00_00_00_00 + ((i * 0x9e37) % 0x10000)));

type Op =
  | { k: 'alloc'; p: number; c: number }
  | { k: 'release'; p: number; c: number }
  | { k: 'claim'; p: number; c: number; off: number }
  | { k: 'join'; observer: boolean }
  | { k: 'leave'; p: number }
  | { k: 'kill'; p: number }
  | { k: 'restart'; p: number }
  | { k: 'rmpeer'; p: number; v: number }
  | { k: 'partition'; mask: number }
  | { k: 'heal' }
  | { k: 'tick'; dt: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ k: fc.constant('alloc' as const), p: fc.nat(20), c: fc.nat(12) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('release' as const), p: fc.nat(20), c: fc.nat(12) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('claim' as const), p: fc.nat(20), c: fc.nat(12), off: fc.nat(255) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('join' as const), observer: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('leave' as const), p: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('kill' as const), p: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('restart' as const), p: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('rmpeer' as const), p: fc.nat(20), v: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('partition' as const), mask: fc.nat(255) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('heal' as const) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('tick' as const), dt: fc.constantFrom(100, 700, 2100, 5000) }) },
);

const setupArb = fc.record({
  consensus: fc.boolean(),
  initial: fc.integer({ min: 1, max: 5 }),
  prefix: fc.constantFrom(26, 27, 28),
  primeAll: fc.boolean(),
});

const stats = { runs: 0, steps: 0, allocated: 0, donations: 0, takeovers: 0, takenAddresses: 0, leaves: 0, restarts: 0, claims: 0, timeouts: 0, consensusRings: 0 };

type Setup = typeof setupArb extends fc.Arbitrary<infer S> ? S : never;

function runHistory(setup: Setup, ops: Op[]): void {
  const range = parseCidr(`10.9.0.0/${setup.prefix}`);
  const cluster = new Cluster({ range });
  const initial = NAMES.slice(0, setup.initial);
  const modeOf = (observer: boolean): IpamMode =>
    observer
      ? { kind: 'observer' }
      : setup.consensus
        ? { kind: 'consensus', peers: setup.initial }
        : { kind: 'seed', members: initial };
  let nextName = setup.initial;
  const left = new Set<PeerName>(); // left gracefully; may still own space if nobody heard
  const expected = new Map<string, number>(); // "peer/id" -> address, from the replies
  const fail = (what: string): never => {
    throw new Error(`${what} (after ${stats.steps} steps in total)`);
  };

  const processReplies = (): void => {
    for (const { peer, reply } of cluster.takeReplies()) {
      if (reply.kind === 'allocate' || reply.kind === 'claim') {
        if (!reply.ok) {
          stats.timeouts++;
          continue;
        }
        const key = `${peer}/${reply.id}`;
        const before = expected.get(key);
        if (before !== undefined && before !== reply.address) fail(`${key} got ${reply.address}, had ${before}`);
        expected.set(key, reply.address);
        if (reply.kind === 'allocate') stats.allocated++;
        else stats.claims++;
      } else if (reply.kind === 'release' && reply.ok) {
        expected.delete(`${peer}/${reply.id}`);
      }
    }
    // What the replies said is exactly what the peers hold, restarts or not.
    for (const [peer, ipam] of cluster.live) {
      for (const a of ipam.allocations()) {
        if (expected.get(`${peer}/${a.id}`) !== a.address) fail(`${peer}/${a.id} holds ${a.address} unannounced`);
      }
    }
    for (const [key, address] of expected) {
      const [peer, id] = key.split('/') as [PeerName, string];
      const ipam = cluster.live.get(peer);
      if (ipam && ipam.lookup(id) !== address) fail(`${key} lost ${address}`);
    }
  };
  const check = (label: string): void => {
    processReplies();
    const violation = findViolation(cluster);
    if (violation) fail(`${label}: ${violation}`);
    const refused = cluster.events.find((e) => e.event.kind === 'merge-refused' || e.event.kind === 'fork');
    if (refused) fail(`${label}: unexpected ${JSON.stringify(refused.event)}`);
    stats.steps++;
  };

  for (const name of initial) cluster.start(name, modeOf(false));
  if (setup.primeAll) for (const name of initial) cluster.act(name, (ipam) => ipam.prime(cluster.now));
  check('start');

  for (const op of ops) {
    const live = [...cluster.live.keys()];
    const pick = (n: number): PeerName | undefined => live[n % Math.max(1, live.length)];
    const deadline = cluster.now + 3000;
    switch (op.k) {
      case 'alloc': {
        const p = pick(op.p);
        if (!p) break;
        const id = `c${op.c}`;
        const held = cluster.live.get(p)?.lookup(id);
        cluster.act(p, (ipam) => ipam.allocate(id, cluster.now, deadline));
        if (held !== undefined && cluster.live.get(p)?.lookup(id) !== held) fail('allocate is not idempotent');
        break;
      }
      case 'release': {
        const p = pick(op.p);
        if (p) cluster.act(p, (ipam) => ipam.release(`c${op.c}`, cluster.now));
        break;
      }
      case 'claim': {
        const p = pick(op.p);
        if (p) cluster.act(p, (ipam) => ipam.claim(`c${op.c}`, range.start + (op.off % 2 ** (32 - setup.prefix)), cluster.now, deadline));
        break;
      }
      case 'join': {
        const name = NAMES[nextName];
        if (!name) break;
        nextName++;
        const anchor = live[0];
        const group = anchor ? (cluster.group.get(anchor) ?? 0) : 0;
        // A voter joining a consensus cluster must find the ring (consensus=N counts voters that
        // start before the ring exists); with no ring in its group it comes as an observer.
        const ringHere = live.some((p) => cluster.group.get(p) === group && cluster.live.get(p)?.ring);
        cluster.start(name, modeOf(op.observer || (setup.consensus && !ringHere)), group);
        break;
      }
      case 'leave': {
        const p = pick(op.p);
        if (!p || live.length < 2) break;
        cluster.leave(p);
        left.add(p);
        for (const key of [...expected.keys()]) if (key.startsWith(`${p}/`)) expected.delete(key);
        stats.leaves++;
        break;
      }
      case 'kill': {
        const p = pick(op.p);
        if (p) cluster.kill(p);
        break;
      }
      case 'restart': {
        const candidates = [...live, ...cluster.dead];
        const p = candidates[op.p % Math.max(1, candidates.length)];
        if (!p) break;
        cluster.restart(p);
        stats.restarts++;
        break;
      }
      case 'rmpeer': {
        // Only as an operator may: the victim is dead or gone, only one peer does it, and the
        // victim's last changes have reached us: nobody is partitioned away and no other dead
        // peer (which may restart) holds news we have not heard.
        const victims = [...cluster.dead, ...left];
        const victim = victims[op.v % Math.max(1, victims.length)];
        const p = pick(op.p);
        if (!victim || !p || cluster.partitioned() || [...cluster.dead].some((d) => d !== victim)) break;
        const ipam = cluster.live.get(p);
        const expectedCount = (ipam?.ring && ownedCounts(ipam.ring).get(victim)) || 0;
        cluster.act(p, (i) => i.rmpeer(victim, cluster.now));
        const reply = cluster.replies.find((r) => r.reply.kind === 'rmpeer')?.reply;
        if (reply?.kind !== 'rmpeer' || !reply.ok) return fail(`rmpeer refused: ${JSON.stringify(reply)}`);
        if (reply.addresses !== expectedCount) fail(`rmpeer took ${reply.addresses}, victim owned ${expectedCount}`);
        if (ipam?.ring && ownedCounts(ipam.ring).get(victim) !== undefined) fail('victim still owns space');
        if (expectedCount > 0) {
          stats.takeovers++;
          stats.takenAddresses += expectedCount;
        }
        if (cluster.dead.has(victim)) cluster.forget(victim);
        left.delete(victim);
        for (const key of [...expected.keys()]) if (key.startsWith(`${victim}/`)) expected.delete(key);
        break;
      }
      case 'partition': {
        if (live.length < 2) break;
        cluster.partition((peer) => (op.mask >> live.indexOf(peer)) & 1);
        break;
      }
      case 'heal':
        cluster.heal();
        break;
      case 'tick':
        cluster.tick(op.dt);
        break;
    }
    check(JSON.stringify(op));
  }

  // Heal, let time pass: every running peer converges on one ring.
  cluster.heal();
  for (let i = 0; i < 4; i++) cluster.tick(2100);
  check('final');
  const rings = [...cluster.live.values()].map((ipam) => JSON.stringify(ipam.ring ?? null));
  if (new Set(rings).size > 1) fail('rings differ after healing');
  stats.donations += cluster.events.filter((e) => e.event.kind === 'space-donated').length;
  if (setup.consensus && cluster.events.some((e) => e.event.kind === 'ring-created')) stats.consensusRings++;
  stats.runs++;
}

t.test('random cluster histories keep every address with one owner and one holder', async (t) => {
  const started = Date.now();
  fc.assert(
    fc.property(setupArb, fc.array(opArb, { minLength: 20, maxLength: 80 }), (setup, ops) => {
      runHistory(setup, ops);
    }),
    { numRuns: 3000, seed: 20250301 },
  );
  t.comment(`stats ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
  t.ok(stats.runs >= 3000, 'all histories ran');
  t.ok(stats.allocated > 10_000, 'many allocations');
  t.ok(stats.donations > 500, 'donations happened');
  t.ok(stats.takeovers > 50, 'rmpeer took over space');
  t.ok(stats.leaves > 100 && stats.restarts > 500, 'leaves and restarts happened');
  t.ok(stats.claims > 100, 'claims succeeded');
  t.ok(stats.consensusRings > 800, 'consensus made rings in many histories');
});
