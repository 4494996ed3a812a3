import t from 'tap';
import fc from 'fast-check';
import { parseCidr } from '../../src/net/ipv4.js';
import { type PeerName, peerNameFromNumber } from '../../src/net/peer-name.js';
import { Ipam, type IpamMode } from '../../src/ipam/allocator.js';
import {
  type Claim,
  activate,
  advance,
  chosenValue,
  initialConsensus,
  mergeClaims,
  quorumFor,
} from '../../src/ipam/consensus.js';
import { createRing } from '../../src/ipam/ring.js';
import { STATUS_PRIMING, STATUS_READY, awaitingConsensusStatus } from '../../src/ipam/status.js';
import { Cluster } from './cluster-sim.js';
import { seededRandom as prng } from '../../src/net/seeded-random.js';

const RANGE = parseCidr('10.32.0.0/12');
const NAMES: PeerName[] = Array.from({ length: 60 }, (_, i) => peerNameFromNumber(0x020000000000 + ((i * 7727) % 65536)));
const consensus = (n: number): IpamMode => ({ kind: 'consensus', peers: n });
const TIMING = { proposeAfterMs: 1000, waitForAllMs: 2000 };


t.test('quorum is a strict majority', async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7].map(quorumFor), [1, 2, 2, 3, 3, 4, 4]);
  t.throws(() => quorumFor(0), RangeError);
});

t.test('claims merge per voter to the larger claim, in any order', async (t) => {
  const [a, b] = NAMES as [PeerName, PeerName];
  const small: Claim = { promise: { round: 1, proposer: a }, accepted: null };
  const big: Claim = { promise: { round: 2, proposer: a }, accepted: null };
  const s0 = activate(initialConsensus(b, 2, true), 0);
  const one = mergeClaims(mergeClaims(s0, new Map([[a, small]]), 1).state, new Map([[a, big]]), 2).state;
  const two = mergeClaims(mergeClaims(s0, new Map([[a, big]]), 1).state, new Map([[a, small]]), 2).state;
  t.same(one.claims.get(a), big);
  t.same(two.claims.get(a), big);
  t.equal(mergeClaims(two, new Map([[a, small]]), 3).changed, false, 'an older claim changes nothing');
});

t.test('a single voter with consensus=1 decides alone, at once', async (t) => {
  const [a] = NAMES as [PeerName];
  const r = advance(activate(initialConsensus(a, 1, true), 0), 0, TIMING);
  t.same(r.chosen, [a]);
  t.same(chosenValue(r.state), [a]);
});

t.test('peers started at different moments agree on one even ring', async (t) => {
  for (const n of [3, 5]) {
    const cluster = new Cluster({ range: RANGE });
    const peers = NAMES.slice(0, n);
    cluster.start(peers[0] as PeerName, consensus(n));
    cluster.act(peers[0] as PeerName, (ipam) => ipam.prime(cluster.now));
    t.equal(cluster.live.get(peers[0] as PeerName)?.status(), awaitingConsensusStatus(quorumFor(n), 1));
    for (const p of peers.slice(1)) {
      cluster.tick(1500);
      cluster.start(p, consensus(n));
    }
    cluster.tick(1500);
    const rings = peers.map((p) => JSON.stringify(cluster.live.get(p)?.ring));
    t.equal(new Set(rings).size, 1, `${n}: one ring everywhere`);
    const ring = cluster.live.get(peers[0] as PeerName)?.ring;
    t.same(ring?.members, [...peers].sort(), `${n}: every peer is a member, though a quorum came up first`);
    if (ring) t.same(ring, createRing(RANGE, ring.members), 'the ring is the even division of the agreed members');
    t.ok(peers.every((p) => cluster.live.get(p)?.status() === STATUS_READY));
  }
});

t.test('two partitions never both create a ring; a minority never does', async (t) => {
  // 4 peers, quorum 3: a 2|2 split decides nothing.
  let cluster = new Cluster({ range: RANGE });
  let peers = NAMES.slice(0, 4);
  for (const p of peers) cluster.start(p, consensus(4), peers.indexOf(p) < 2 ? 1 : 2);
  for (const p of peers) cluster.act(p, (ipam) => ipam.allocate('x', cluster.now, cluster.now + 5000));
  for (let i = 0; i < 10; i++) cluster.tick(1000);
  t.ok(peers.every((p) => cluster.live.get(p)?.ring === undefined), '2|2: no ring anywhere');
  t.equal(cluster.live.get(peers[0] as PeerName)?.status(), awaitingConsensusStatus(3, 2));
  const failures = cluster.takeReplies().filter((r) => r.reply.kind === 'allocate' && !r.reply.ok);
  t.equal(failures.length, 4, 'every waiting allocation timed out');
  t.match(failures[0]?.reply, { ok: false, error: 'awaiting consensus (quorum: 3, known: 2)' });
  cluster.heal();
  cluster.tick(1000);
  t.ok(peers.every((p) => cluster.live.get(p)?.ring), 'healed: a ring');

  // 5 peers, quorum 3: only the side of 3 decides; the 2 adopt its ring when healed.
  cluster = new Cluster({ range: RANGE });
  peers = NAMES.slice(0, 5);
  for (const p of peers) cluster.start(p, consensus(5), peers.indexOf(p) < 2 ? 1 : 2);
  for (const p of peers) cluster.act(p, (ipam) => ipam.prime(cluster.now));
  for (let i = 0; i < 12; i++) cluster.tick(1000);
  t.ok(peers.slice(0, 2).every((p) => cluster.live.get(p)?.ring === undefined), 'the minority has no ring');
  const majority = cluster.live.get(peers[2] as PeerName)?.ring;
  t.same(majority?.members, [...peers.slice(2)].sort(), 'the majority decided on itself');
  cluster.heal();
  t.ok(peers.every((p) => JSON.stringify(cluster.live.get(p)?.ring) === JSON.stringify(majority)), 'one ring after healing');
  t.notOk(cluster.events.some((e) => e.event.kind === 'merge-refused'));
});

t.test('a missing peer delays the ring by waitForAllMs, never for ever', async (t) => {
  const cluster = new Cluster({ range: RANGE, timing: { waitForAllMs: 5000 } });
  const peers = NAMES.slice(0, 2); // of 3 expected
  for (const p of peers) cluster.start(p, consensus(3));
  for (const p of peers) cluster.act(p, (ipam) => ipam.prime(cluster.now));
  cluster.tick(4000);
  t.equal(cluster.live.get(peers[0] as PeerName)?.status(), awaitingConsensusStatus(2, 2), 'a quorum, waiting for the third');
  cluster.tick(1500);
  t.equal(cluster.live.get(peers[0] as PeerName)?.status(), STATUS_READY);
  t.same(cluster.live.get(peers[0] as PeerName)?.ring?.members, [...peers].sort());
  const late = NAMES[2] as PeerName;
  cluster.start(late, consensus(3));
  t.same(cluster.live.get(late)?.ring?.members, [...peers].sort(), 'the third adopts the ring of two');
});

t.test('observers never vote; they wait for a ring made by voters', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  const [v1, v2, o] = NAMES as [PeerName, PeerName, PeerName];
  cluster.start(o, { kind: 'observer' });
  cluster.act(o, (ipam) => ipam.allocate('pod', cluster.now, cluster.now + 60_000));
  t.equal(cluster.live.get(o)?.status(), STATUS_PRIMING);
  cluster.start(v1, consensus(2));
  cluster.tick(1000);
  t.equal(cluster.live.get(v1)?.status(), awaitingConsensusStatus(2, 1), 'the observer woke the voter but does not count');
  t.equal(cluster.live.get(o)?.ring, undefined);
  cluster.start(v2, consensus(2));
  cluster.tick(3000);
  const ring = cluster.live.get(o)?.ring;
  t.same(ring?.members, [v1, v2].sort(), 'members are the voters only');
  t.ok(
    cluster.takeReplies().some((r) => r.peer === o && r.reply.kind === 'allocate' && r.reply.ok),
    'the observer got its address from donated space',
  );
  for (const ipam of cluster.live.values()) t.notOk(ipam.persistentState().claims.has(o), 'no claim of the observer anywhere');
});

t.test('a peer that comes after the ring adopts it instead of voting', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  const peers = NAMES.slice(0, 3);
  for (const p of peers) cluster.start(p, consensus(3));
  cluster.act(peers[0] as PeerName, (ipam) => ipam.prime(cluster.now));
  cluster.tick(1000);
  const late = NAMES[10] as PeerName;
  cluster.start(late, consensus(3));
  t.same(cluster.live.get(late)?.ring, cluster.live.get(peers[0] as PeerName)?.ring);
  t.ok(cluster.events.some((e) => e.peer === late && e.event.kind === 'ring-adopted'));
});

t.test('50 peers started together: ready after one round of messages', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  const peers = NAMES.slice(0, 50);
  for (const p of peers) cluster.start(p, consensus(50));
  const before = cluster.delivered;
  for (const p of peers) cluster.act(p, (ipam) => ipam.prime(cluster.now));
  t.ok(peers.every((p) => cluster.live.get(p)?.status() === STATUS_READY), 'all ready without any tick');
  t.comment(`50 peers: ${cluster.delivered - before} messages delivered until every peer had the ring`);
  const ring = cluster.live.get(peers[0] as PeerName)?.ring;
  t.equal(ring?.members.length, 50, 'everyone started together is a member');
});

type Op =
  | { k: 'start'; i: number }
  | { k: 'need'; i: number }
  | { k: 'partition'; mask: number }
  | { k: 'heal' }
  | { k: 'tick'; dt: number }
  | { k: 'kill'; i: number }
  | { k: 'restart'; i: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('start' as const), i: fc.nat(6) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('need' as const), i: fc.nat(6) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('partition' as const), mask: fc.nat(127) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('heal' as const) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('tick' as const), dt: fc.constantFrom(200, 1000, 2500) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('kill' as const), i: fc.nat(6) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('restart' as const), i: fc.nat(6) }) },
);

t.test('random schedules, partitions, losses and restarts: one member set, ever', async (t) => {
  let decided = 0;
  let runs = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 7 }),
      fc.integer(),
      fc.constantFrom(0, 0.1, 0.3),
      fc.array(opArb, { minLength: 10, maxLength: 50 }),
      (n, seed, loss, ops) => {
        const cluster = new Cluster({ range: RANGE, random: prng(seed), loss, antiEntropy: true });
        const peers = NAMES.slice(0, n);
        const memberSets = new Set<string>();
        const check = (): void => {
          for (const v of cluster.views()) if (v.ring) memberSets.add(v.ring.members.join(','));
          if (memberSets.size > 1) throw new Error(`two member sets: ${[...memberSets].join(' | ')}`);
          for (const set of memberSets) {
            const members = set.split(',');
            if (members.length < quorumFor(n)) throw new Error(`fewer members than a quorum: ${set}`);
            if (members.some((m) => !peers.includes(m as PeerName))) throw new Error(`unknown member in ${set}`);
          }
        };
        for (const op of ops) {
          const p = 'i' in op ? peers[op.i % n] : undefined;
          if (op.k === 'start' && p && !cluster.live.has(p) && !cluster.dead.has(p)) cluster.start(p, consensus(n));
          if (op.k === 'need' && p && cluster.live.has(p)) cluster.act(p, (ipam) => ipam.allocate('x', cluster.now, cluster.now + 4000));
          if (op.k === 'partition') cluster.partition((q) => (op.mask >> peers.indexOf(q)) & 1);
          if (op.k === 'heal') cluster.heal();
          if (op.k === 'tick') cluster.tick(op.dt);
          if (op.k === 'kill' && p && cluster.live.has(p)) cluster.kill(p);
          if (op.k === 'restart' && p && (cluster.live.has(p) || cluster.dead.has(p))) cluster.restart(p);
          check();
        }
        // Everyone up, connected, and in need: consensus must finish.
        for (const p of peers) if (!cluster.live.has(p)) cluster.start(p, consensus(n));
        cluster.heal();
        for (const p of peers) cluster.act(p, (ipam) => ipam.prime(cluster.now));
        for (let i = 0; i < 40 && peers.some((p) => !cluster.live.get(p)?.ring); i++) cluster.tick(1000);
        check();
        if (peers.some((p) => !cluster.live.get(p)?.ring)) throw new Error('no ring after healing');
        decided++;
        runs++;
      },
    ),
    { numRuns: 400, seed: 4242 },
  );
  t.equal(decided, runs);
  t.ok(runs >= 400);
});

// The Paxos core alone, with an adversarial network: any voter's claims, or any part of them, reach
// any other voter at any time, in any order; time runs so that several voters propose. Whatever
// any voter believes chosen must be one value, from the first decision on.
type CoreOp = { k: 'send'; from: number; to: number; mask: number } | { k: 'time'; dt: number; who: number };

const coreOpArb: fc.Arbitrary<CoreOp> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('send' as const), from: fc.nat(6), to: fc.nat(6), mask: fc.nat(127) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('time' as const), dt: fc.constantFrom(300, 1000, 3000), who: fc.nat(6) }) },
);

t.test('the Paxos core agrees under any delivery pattern', async (t) => {
  let decisions = 0;
  let contested = 0;
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 6 }), fc.array(coreOpArb, { minLength: 20, maxLength: 150 }), (n, ops) => {
      const voters = NAMES.slice(0, n);
      const quorum = quorumFor(n);
      let now = 0;
      let states = voters.map((v) => activate(initialConsensus(v, n, true), 0));
      let chosen: string | undefined;
      const ballots = new Set<string>();
      const step = (i: number): void => {
        states[i] = advance(states[i] as (typeof states)[number], now, TIMING).state;
        const c = chosenValue(states[i] as (typeof states)[number]);
        for (const claim of (states[i] as (typeof states)[number]).claims.values()) {
          if (claim.accepted) ballots.add(`${claim.accepted.ballot.round}/${claim.accepted.ballot.proposer}`);
        }
        if (c) {
          const key = c.join(',');
          if (chosen !== undefined && chosen !== key) throw new Error(`chose ${chosen} and ${key}`);
          chosen = key;
        }
      };
      for (const op of ops) {
        if (op.k === 'time') {
          now += op.dt;
          step(op.who % n);
          continue;
        }
        const from = states[op.from % n] as (typeof states)[number];
        const to = op.to % n;
        const part = new Map([...from.claims].filter((_, k) => (op.mask >> k) & 1));
        states = states.map((s, i) => (i === to ? mergeClaims(s, part, now).state : s));
        step(to);
      }
      // Now every change reaches everyone at once (as the broadcast after each change does), and
      // time passes only when nothing moves: a decision must come, and it must be the same one.
      for (let round = 0; round < 30 && states.some((s) => !chosenValue(s)); round++) {
        for (let moved = true, spins = 0; moved && spins < 100; spins++) {
          moved = false;
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < n; j++) {
              const merged = mergeClaims(states[j] as (typeof states)[number], (states[i] as (typeof states)[number]).claims, now);
              const before = (states[j] as (typeof states)[number]).claims;
              states[j] = merged.state;
              step(j);
              if ((states[j] as (typeof states)[number]).claims !== before) moved = true;
            }
          }
        }
        now += 3000;
        for (let i = 0; i < n; i++) step(i);
      }
      if (states.some((s) => !chosenValue(s))) throw new Error('no decision with full delivery');
      decisions++;
      if (ballots.size > 1) contested++;
    }),
    { numRuns: 2500, seed: 777 },
  );
  t.comment(`${decisions} decisions, ${contested} with more than one ballot proposed`);
  t.ok(contested > 300, 'many runs had competing ballots');
});

t.test('a voter restarted from its disk keeps its promises', async (t) => {
  const [a] = NAMES as [PeerName];
  const ipam = Ipam.create({ self: a, range: RANGE, mode: consensus(3) });
  ipam.prime(0);
  const claims = ipam.persistentState().claims;
  t.ok(claims.has(a), 'our claim is part of the persisted state');
  const back = Ipam.restore({ self: a, range: RANGE, mode: consensus(3) }, ipam.persistentState());
  t.same(back.persistentState().claims, claims);
});
