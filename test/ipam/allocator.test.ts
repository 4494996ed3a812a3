import t from 'tap';
import { cidrSize, formatIpv4, parseCidr, parseIpv4 } from '../../src/net/ipv4.js';
import { type PeerName, peerNameFromNumber } from '../../src/net/peer-name.js';
import { Ipam, type IpamMode, type Reply, formatTakeover } from '../../src/ipam/allocator.js';
import { ownedCounts, ownedIntervals } from '../../src/ipam/ring.js';
import { EXPOSE_ID } from '../../src/ipam/space.js';
import { STATUS_ALL_UNREACHABLE, STATUS_READY, STATUS_WAITING } from '../../src/ipam/status.js';
import { Cluster, findViolation } from './cluster-sim.js';

const RANGE = parseCidr('10.32.0.0/12');
const [A, B, C, D, E] = [1, 2, 3, 4, 5].map((n) => peerNameFromNumber(0x0a0000000000 + n)) as [
  PeerName,
  PeerName,
  PeerName,
  PeerName,
  PeerName,
];
const seed = (...members: PeerName[]): IpamMode => ({ kind: 'seed', members });

function lastReply(cluster: Cluster, kind: Reply['kind']): Reply | undefined {
  return cluster.takeReplies().filter((r) => r.reply.kind === kind).pop()?.reply;
}

function allocate(cluster: Cluster, peer: PeerName, id: string): Reply | undefined {
  cluster.act(peer, (ipam) => ipam.allocate(id, cluster.now, cluster.now + 10_000));
  return lastReply(cluster, 'allocate');
}

function addressOf(reply: Reply | undefined): string | undefined {
  return reply && 'address' in reply && reply.ok && reply.address !== undefined ? formatIpv4(reply.address) : undefined;
}

t.test('seeded peers allocate the lowest free address of their share, idempotently', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  for (const p of [A, B, C]) cluster.start(p, seed(A, B, C));
  t.equal(cluster.live.get(A)?.status(), STATUS_READY);
  t.equal(addressOf(allocate(cluster, A, EXPOSE_ID)), '10.32.0.1', 'the first address of the range is never given');
  t.equal(addressOf(allocate(cluster, A, 'pod-1')), '10.32.0.2');
  t.equal(addressOf(allocate(cluster, A, EXPOSE_ID)), '10.32.0.1', 'same id, same address');
  // B's share starts at 10.32.0.0 + 349526: its first address is a valid host address of the /12.
  t.equal(addressOf(allocate(cluster, B, 'pod-2')), formatIpv4(RANGE.start + 349526));
  t.equal(cluster.live.get(A)?.lookup('pod-1'), parseIpv4('10.32.0.2'));
  t.same(cluster.live.get(A)?.allocations().map((a) => a.id), [EXPOSE_ID, 'pod-1']);
  t.equal(findViolation(cluster), undefined);
});

t.test('release frees the address for reuse; an unknown id is an error that says so', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  cluster.start(A, seed(A));
  allocate(cluster, A, 'x');
  allocate(cluster, A, 'y');
  cluster.act(A, (ipam) => ipam.release('x', cluster.now));
  t.same(lastReply(cluster, 'release'), { kind: 'release', id: 'x', ok: true, address: parseIpv4('10.32.0.1') });
  cluster.act(A, (ipam) => ipam.release('x', cluster.now));
  t.same(lastReply(cluster, 'release'), { kind: 'release', id: 'x', ok: false, error: 'no IP address allocated to x' });
  t.equal(addressOf(allocate(cluster, A, 'z')), '10.32.0.1', 'reused after release');
});

t.test('the last address of the range is never handed out either', async (t) => {
  const range = parseCidr('10.0.0.0/30');
  const cluster = new Cluster({ range });
  cluster.start(A, seed(A));
  t.equal(addressOf(allocate(cluster, A, 'a')), '10.0.0.1');
  t.equal(addressOf(allocate(cluster, A, 'b')), '10.0.0.2');
  const third = allocate(cluster, A, 'c');
  t.equal(third, undefined, 'waits: nothing left');
  t.equal(cluster.live.get(A)?.status(), STATUS_WAITING);
  cluster.tick(10_001);
  t.same(lastReply(cluster, 'allocate'), { kind: 'allocate', id: 'c', ok: false, error: STATUS_WAITING });
});

t.test('a joining peer with no space gets half of the free space of the peer with the most', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  for (const p of [A, B]) cluster.start(p, seed(A, B));
  for (let i = 0; i < 10; i++) allocate(cluster, B, `b${i}`);
  cluster.tick(100); // B reports its free count: A now has the most
  cluster.start(C, seed(A, B));
  const freeA = cluster.live.get(A)?.snapshot().free as number;
  t.equal(freeA, 524288 - 1);
  const reply = allocate(cluster, C, 'c1');
  t.equal(addressOf(reply), formatIpv4(parseIpv4('10.32.0.0') + 524288 - Math.floor(freeA / 2)), 'lowest of the donated upper half');
  const ring = cluster.live.get(C)?.ring;
  t.equal(ring && ownedCounts(ring).get(C), Math.floor(freeA / 2), 'exactly half of the donor\'s free space');
  t.equal(ring && ownedCounts(ring).get(A), 524288 - Math.floor(freeA / 2));
  t.ok(cluster.events.some((e) => e.event.kind === 'space-donated' && e.peer === A && e.event.to === C));

  // More peers keep joining: every address stays owned exactly once, every ring is the same.
  const more = [D, E, ...[6, 7, 8, 9, 10, 11].map((n) => peerNameFromNumber(0x0a0000000000 + n))];
  for (const p of more) {
    cluster.start(p, seed(A, B));
    t.ok(addressOf(allocate(cluster, p, `${p}-1`)), `${p} got an address`);
  }
  cluster.tick(100);
  const rings = [...cluster.live.values()].map((i) => JSON.stringify(i.ring));
  t.equal(new Set(rings).size, 1, 'all replicas agree');
  const final = cluster.live.get(A)?.ring;
  if (final) {
    const total = [...ownedCounts(final).values()].reduce((a, b) => a + b, 0);
    t.equal(total, cidrSize(RANGE), 'the shares add up to the range');
    t.equal(ownedCounts(final).size, 2 + 1 + more.length, 'every peer owns space');
  }
  t.equal(findViolation(cluster), undefined);
});

t.test('rmpeer takes exactly the dead peer\'s ranges, and refuses ourselves and live peers', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  for (const p of [A, B, C]) cluster.start(p, seed(A, B, C));
  allocate(cluster, C, 'c1');
  const before = cluster.live.get(A)?.ring;
  const cRanges = before ? ownedIntervals(before, C) : [];
  const aRanges = before ? ownedIntervals(before, A) : [];
  cluster.act(A, (ipam) => ipam.rmpeer(A, cluster.now));
  t.match(lastReply(cluster, 'rmpeer'), { ok: false, error: /own IP ranges/ });
  cluster.act(A, (ipam) => ipam.rmpeer(C, cluster.now));
  t.match(lastReply(cluster, 'rmpeer'), { ok: false, error: `peer ${C} is reachable; rmpeer is only for peers that are dead` });

  cluster.kill(C);
  cluster.act(A, (ipam) => ipam.rmpeer(C, cluster.now));
  const reply = lastReply(cluster, 'rmpeer');
  t.same(reply, { kind: 'rmpeer', peer: C, ok: true, addresses: 349525 });
  t.equal(formatTakeover(349525, `${C}(node-3)`), `349525 IPs taken over from ${C}(node-3)`);
  const after = cluster.live.get(A)?.ring;
  t.same(after && ownedIntervals(after, A), [{ start: aRanges[0]?.start, end: aRanges[0]?.end }, ...cRanges]);
  t.equal(after && ownedCounts(after).get(C), undefined);
  t.same(after && ownedIntervals(after, B), before && ownedIntervals(before, B), 'B keeps its own');
  t.same(JSON.stringify(cluster.live.get(B)?.ring), JSON.stringify(after), 'B heard of it');
  cluster.act(A, (ipam) => ipam.rmpeer(C, cluster.now));
  t.same(lastReply(cluster, 'rmpeer'), { kind: 'rmpeer', peer: C, ok: true, addresses: 0 }, 'a second time takes nothing');
});

t.test('status: ready, waiting, all ranges unreachable', async (t) => {
  const range = parseCidr('10.0.0.0/28');
  const cluster = new Cluster({ range });
  cluster.start(A, seed(A));
  cluster.start(B, seed(A));
  t.equal(cluster.live.get(B)?.status(), STATUS_READY, 'owning nothing with nothing pending is fine');
  cluster.kill(A);
  t.equal(cluster.live.get(B)?.status(), STATUS_ALL_UNREACHABLE);
  t.equal(STATUS_ALL_UNREACHABLE, "all IP ranges owned by unreachable peers - use 'rmpeer' if they are dead");
  allocate(cluster, B, 'b1');
  cluster.tick(10_001);
  t.same(lastReply(cluster, 'allocate'), { kind: 'allocate', id: 'b1', ok: false, error: STATUS_ALL_UNREACHABLE });
  cluster.start(A, seed(A));
  for (let i = 0; i < 14; i++) allocate(cluster, A, `a${i}`);
  cluster.tick(100);
  allocate(cluster, B, 'b2');
  t.equal(cluster.live.get(B)?.status(), STATUS_WAITING, 'A is reachable but full');
  cluster.act(A, (ipam) => ipam.release('a3', cluster.now));
  cluster.tick(2100); // A reports free space again; B asks again
  t.equal(addressOf(lastReply(cluster, 'allocate')), '10.0.0.4', 'B got the released address');
  t.equal(cluster.live.get(B)?.status(), STATUS_READY);
});

t.test('claims: our own address, another peer\'s, one in use, reserved, outside', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  for (const p of [A, B]) cluster.start(p, seed(A, B));
  const claim = (peer: PeerName, id: string, ip: string): Reply | undefined => {
    cluster.act(peer, (ipam) => ipam.claim(id, parseIpv4(ip), cluster.now, cluster.now + 5000));
    return lastReply(cluster, 'claim');
  };
  t.match(claim(A, 'a', '10.32.0.9'), { ok: true });
  t.match(claim(A, 'a', '10.32.0.9'), { ok: true }, 'idempotent');
  t.match(claim(A, 'b', '10.32.0.9'), { ok: false, error: 'address 10.32.0.9 is already owned by a' });
  t.match(claim(A, 'a', '10.32.0.10'), { ok: false, error: 'a already has address 10.32.0.9' });
  t.match(claim(B, 'b', '10.32.0.20'), { ok: true }, 'given by its owner A');
  t.equal(cluster.live.get(B)?.lookup('b'), parseIpv4('10.32.0.20'));
  t.match(claim(B, 'c', '10.32.0.9'), { ok: false, error: `address 10.32.0.9 is already in use on peer ${A}` });
  t.match(claim(A, 'd', '10.32.0.0'), { ok: false, error: /first or last/ });
  t.match(claim(A, 'd', '10.47.255.255'), { ok: false, error: /first or last/ });
  t.match(claim(A, 'd', '10.48.0.0'), { ok: false, error: 'address 10.48.0.0 is not in the IP range' });
  t.equal(findViolation(cluster), undefined);
  t.equal(addressOf(allocate(cluster, A, 'e')), '10.32.0.1');
});

t.test('two rmpeers of one dead peer: the conflict is refused and reported, nothing breaks', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  for (const p of [A, B, C]) cluster.start(p, seed(A, B, C));
  cluster.kill(C);
  cluster.partition((p) => (p === A ? 1 : 2));
  cluster.act(A, (ipam) => ipam.rmpeer(C, cluster.now));
  cluster.act(B, (ipam) => ipam.rmpeer(C, cluster.now));
  const cStart = RANGE.start + 2 * 349525 + 1;
  // Both hand out addresses in the taken range: the operator error rmpeer warns about.
  cluster.act(A, (ipam) => ipam.claim('on-a', cStart + 10, cluster.now));
  cluster.act(B, (ipam) => ipam.claim('on-b', cStart + 20, cluster.now));
  const ringA = JSON.stringify(cluster.live.get(A)?.ring);
  const ringB = JSON.stringify(cluster.live.get(B)?.ring);
  cluster.heal();
  const refusals = cluster.events.filter((e) => e.event.kind === 'merge-refused');
  t.ok(refusals.length > 0, 'refused');
  const loser = B > A ? A : B;
  const winner = loser === A ? B : A;
  const refusal = refusals.find((e) => e.peer === loser)?.event;
  t.match(refusal, { kind: 'merge-refused', from: winner, reason: 'ownership' });
  if (refusal?.kind === 'merge-refused') {
    t.match(refusal.message, `peer ${winner} says it owns ${formatIpv4(cStart)}-10.47.255.255, which ${loser} owns`);
    t.same(refusal.conflicts.map((c) => [c.from, c.owner]), [[loser, winner]]);
  }
  t.equal(JSON.stringify(cluster.live.get(loser)?.ring), loser === A ? ringA : ringB, 'the refusing replica is unchanged');
  t.ok(cluster.events.some((e) => e.event.kind === 'fork'), 'the fork is reported');
  // The connection stays up: both keep exchanging and allocating.
  t.ok(cluster.connected(A, B));
  t.ok(addressOf(allocate(cluster, A, 'later-a')));
  t.ok(addressOf(allocate(cluster, B, 'later-b')));
});

t.test('two rmpeers where one side has not used the space: it yields and all converge', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  for (const p of [A, B, C]) cluster.start(p, seed(A, B, C));
  cluster.kill(C);
  cluster.partition((p) => (p === A ? 1 : 2));
  cluster.act(A, (ipam) => ipam.rmpeer(C, cluster.now));
  cluster.act(B, (ipam) => ipam.rmpeer(C, cluster.now));
  cluster.forget(C);
  cluster.heal();
  cluster.tick(100);
  t.notOk(cluster.events.some((e) => e.event.kind === 'merge-refused'));
  t.ok(cluster.events.some((e) => e.event.kind === 'yielded'));
  t.equal(JSON.stringify(cluster.live.get(A)?.ring), JSON.stringify(cluster.live.get(B)?.ring));
  t.equal(findViolation(cluster), undefined);
});

t.test('a ring seeded by other members is reported and not merged', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  cluster.start(A, seed(A, B));
  cluster.start(C, seed(C));
  const refused = cluster.events.filter((e) => e.event.kind === 'merge-refused');
  t.equal(refused.length, 2, 'each side refuses the other');
  t.match(refused[0]?.event, { reason: 'members', message: /seeded by different peers/ });
  t.same(cluster.live.get(A)?.ring?.members, [A, B]);
  t.same(cluster.live.get(C)?.ring?.members, [C]);
});

t.test('a ring of another range is reported, even with no ring of our own', async (t) => {
  const ours = Ipam.create({ self: A, range: RANGE, mode: { kind: 'consensus', peers: 2 } });
  const other = Ipam.create({ self: B, range: parseCidr('10.0.0.0/16'), mode: seed(B) });
  const step = ours.onMessage(B, other.gossip()!, 0);
  t.match(step.events, [{ kind: 'merge-refused', reason: 'range', message: /received: 10\.0\.0\.0\/16, ours: 10\.32\.0\.0\/12/ }]);
  t.equal(ours.ring, undefined);
});

t.test('a peer asked for space with none to give says so; the asker tries the next', async (t) => {
  const range = parseCidr('10.0.0.0/28');
  const cluster = new Cluster({ range });
  for (const p of [A, B]) cluster.start(p, seed(A, B));
  for (let i = 0; i < 7; i++) allocate(cluster, A, `a${i}`); // A: .1-.7 full
  cluster.start(C, seed(A, B));
  // C's view still says A has free space (A has not reported yet): A denies, B gives.
  t.equal(addressOf(allocate(cluster, C, 'c')), '10.0.0.12');
  t.ok(cluster.events.some((e) => e.event.kind === 'space-denied' && e.peer === A));
});

t.test('shutdown hands every range to a live peer and refuses further requests', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  for (const p of [A, B, C]) cluster.start(p, seed(A, B, C));
  const reply = cluster.leave(B);
  t.same(reply, { kind: 'shutdown', heir: A, addresses: 349525 });
  t.equal(cluster.live.get(C)?.ring && ownedCounts(cluster.live.get(C)!.ring!).get(A), 349526 + 349525);
  const gone = Ipam.create({ self: D, range: RANGE, mode: seed(D) });
  gone.shutdown();
  t.match(gone.allocate('x', 0).replies, [{ ok: false, error: 'IPAM is shut down' }]);
});

t.test('snapshot and gossip', async (t) => {
  const ipam = Ipam.create({ self: A, range: parseCidr('10.0.0.0/29'), mode: seed(A, B) });
  ipam.allocate('x', 0);
  const s = ipam.snapshot();
  t.same(
    { status: s.status, owned: s.owned, free: s.free, allocations: s.allocations.length, pending: s.pendingAllocates },
    { status: STATUS_READY, owned: 4, free: 2, allocations: 1, pending: [] },
  );
  t.equal(ipam.gossip()?.ring, ipam.ring);
  const idle = Ipam.create({ self: A, range: RANGE, mode: { kind: 'consensus', peers: 3 } });
  t.equal(idle.gossip(), undefined, 'nothing to say before consensus starts');
  t.equal(idle.status(), 'idle');
});
