// The reclaim decisions (pure): which step comes next for a registry, a node list and a peer, and
// a simulation of several peers racing through those steps on one optimistic store.
import t from 'tap';
import {
  applyStep, formatRegistry, nextReclaimStep, parseRegistry, removedWhileAway,
  type PeerEntry, type PeerRegistry, type Self,
} from '../../src/k8s/peer-registry.js';
import { parsePeerName, type PeerName } from '../../src/net/peer-name.js';
import { seededRandom } from '../../src/net/seeded-random.js';

const P = (n: number): PeerName => parsePeerName(`02:00:00:00:46:${n.toString(16).padStart(2, '0')}`);
const entry = (n: number, node: string, claimedBy?: number): PeerEntry => ({ peerName: P(n), nodeName: node, ...(claimedBy !== undefined ? { claimedBy: P(claimedBy) } : {}) });
const self = (n: number, node = `node-${n}`): Self => ({ peerName: P(n), nodeName: node });
const nodes = (...names: string[]): Set<string> => new Set(names);

t.test('a peer not in the registry registers first', async (t) => {
  t.same(nextReclaimStep([], nodes('node-1'), self(1)), { kind: 'register' });
  t.same(nextReclaimStep([entry(1, 'old-name')], nodes('node-1'), self(1)), { kind: 'register' }, 'also under another node name');
  t.same(applyStep([entry(1, 'old-name'), entry(2, 'node-2')], { kind: 'register' }, self(1)), [entry(2, 'node-2'), entry(1, 'node-1')]);
});

t.test('with every node present there is nothing to do', async (t) => {
  t.same(nextReclaimStep([entry(1, 'node-1'), entry(2, 'node-2')], nodes('node-1', 'node-2'), self(1)), { kind: 'done' });
});

t.test('a peer whose node is gone is claimed, then rmpeer\'d, then removed', async (t) => {
  let reg: PeerRegistry = [entry(1, 'node-1'), entry(2, 'node-2'), entry(3, 'node-3')];
  const n = nodes('node-1', 'node-2');
  const step1 = nextReclaimStep(reg, n, self(1));
  t.same(step1, { kind: 'claim', victim: entry(3, 'node-3') });
  reg = applyStep(reg, step1, self(1))!;
  t.same(reg.find((e) => e.peerName === P(3)), entry(3, 'node-3', 1), 'the claim names us');
  t.same(nextReclaimStep(reg, n, self(2)), { kind: 'done' }, 'another live peer leaves a claimed victim alone');
  const step2 = nextReclaimStep(reg, n, self(1));
  t.same(step2, { kind: 'rmpeer', victim: entry(3, 'node-3', 1) });
  reg = applyStep(reg, step2, self(1))!;
  t.same(reg, [entry(1, 'node-1'), entry(2, 'node-2')]);
  t.same(nextReclaimStep(reg, n, self(1)), { kind: 'done' });
});

t.test('a claim held by a peer that is itself gone is taken over', async (t) => {
  const reg = [entry(1, 'node-1'), entry(2, 'node-2', undefined), entry(3, 'node-3', 2)];
  // node-2 went too, after claiming node-3's peer: 1 takes both, in name order.
  t.same(nextReclaimStep(reg, nodes('node-1'), self(1)), { kind: 'claim', victim: entry(2, 'node-2') });
  const removedClaimer = [entry(1, 'node-1'), entry(3, 'node-3', 2)];
  t.same(nextReclaimStep(removedClaimer, nodes('node-1'), self(1)), { kind: 'claim', victim: entry(3, 'node-3', 2) }, 'claimer no longer registered');
});

t.test('a node that re-joins with a new machine reclaims its own past peer', async (t) => {
  const reg = [entry(1, 'node-1'), entry(2, 'node-2'), entry(9, 'node-1')];
  t.same(nextReclaimStep(reg, nodes('node-1', 'node-2'), self(9, 'node-1')), { kind: 'claim', victim: entry(1, 'node-1') });
  t.same(nextReclaimStep(reg, nodes('node-1', 'node-2'), self(2)), { kind: 'done' },
    'another node cannot tell which of the two is the past one: it is left to the node itself');
});

t.test('removed while away: registered before, no longer in the registry', async (t) => {
  t.equal(removedWhileAway([entry(2, 'node-2')], P(1), P(1)), true);
  t.equal(removedWhileAway([entry(1, 'node-1')], P(1), P(1)), false, 'still registered');
  t.equal(removedWhileAway([entry(2, 'node-2')], undefined, P(1)), false, 'never registered here (first start)');
  t.equal(removedWhileAway([entry(2, 'node-2')], P(7), P(1)), false, 'the marker is another machine\'s');
  t.equal(removedWhileAway(undefined, P(1), P(1)), false, 'no Lease: nothing known');
});

t.test('the annotation text round-trips and bad text is refused with a clear message', async (t) => {
  const reg = [entry(3, 'c', 1), entry(1, 'a')];
  t.same(parseRegistry(formatRegistry(reg)), [entry(1, 'a'), entry(3, 'c', 1)]);
  t.same(parseRegistry(undefined), []);
  t.throws(() => parseRegistry('{'), /is not JSON/);
  t.throws(() => parseRegistry('[{"peerName":"x","nodeName":"a"}]'), /entry 0 wants/);
  t.throws(() => parseRegistry(`[{"peerName":"${P(1)}","nodeName":"a","claimedBy":"zz"}]`), /bad claimedBy/);
});

/**
 * Peers take steps in a random interleaving on one store with compare-and-set semantics (a write
 * names the version it read, as the Lease's resourceVersion). Whatever the order, every victim's
 * ranges are taken over exactly once and the registry ends with the survivors only.
 */
t.test('racing peers on an optimistic store: each victim is rmpeer\'d exactly once', async (t) => {
  const random = seededRandom(7);
  const rng = { int: (n: number): number => Math.floor(random() * n) };
  for (let run = 0; run < 500; run++) {
    const total = 2 + rng.int(6);
    const dead = new Set<number>();
    for (let i = 1; i <= total; i++) if (i > 1 && rng.int(3) === 0) dead.add(i);
    let store = { registry: Array.from({ length: total }, (_, i) => entry(i + 1, `node-${i + 1}`)) as PeerRegistry, version: 0 };
    const alive = Array.from({ length: total }, (_, i) => i + 1).filter((i) => !dead.has(i));
    const n = new Set(alive.map((i) => `node-${i}`));
    const rmpeers: { victim: number; by: number }[] = [];
    // Each peer: read, decide, act; a stale write fails. Interleave reads and writes at random.
    const pending = new Map<number, { version: number; registry: PeerRegistry } | undefined>(alive.map((i) => [i, undefined]));
    let done = new Set<number>();
    for (let steps = 0; done.size < alive.length && steps < 10_000; steps++) {
      const who = alive[rng.int(alive.length)]!;
      const read = pending.get(who);
      if (read === undefined) {
        pending.set(who, { version: store.version, registry: store.registry });
        continue;
      }
      pending.set(who, undefined);
      const step = nextReclaimStep(read.registry, n, self(who));
      if (step.kind === 'done') {
        done.add(who);
        continue;
      }
      done = new Set();
      // The daemon's rmpeer comes before the write that removes the entry, so it happens even
      // when that write then loses.
      if (step.kind === 'rmpeer') rmpeers.push({ victim: Number.parseInt(step.victim.peerName.slice(-2), 16), by: who });
      if (read.version !== store.version) continue; // 409: read again
      store = { registry: applyStep(read.registry, step, self(who))!, version: store.version + 1 };
    }
    // rmpeer is idempotent, and a peer may repeat it after losing the race to write the removal;
    // what must never happen is two *different* peers taking over one victim.
    const byVictim = new Map<number, Set<number>>();
    for (const r of rmpeers) byVictim.set(r.victim, (byVictim.get(r.victim) ?? new Set()).add(r.by));
    const ok = store.registry.length === alive.length
      && [...byVictim.keys()].sort().join() === [...dead].sort().join()
      && [...byVictim.values()].every((by) => by.size === 1);
    if (!ok) {
      t.fail(`run ${run}: registry ${formatRegistry(store.registry)}, rmpeers ${JSON.stringify(rmpeers)}, dead ${[...dead].join()}`);
      return;
    }
  }
  t.pass('500 random races: every dead peer reclaimed by exactly one survivor, only survivors left');
});
