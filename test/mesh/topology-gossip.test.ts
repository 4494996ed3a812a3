// The topology protocol, driven as the router drives it: peers joining, leaving, restarting,
// links cut and healed, messages delivered in random order between links (in order on each)
// and through the codec. What must hold: connected peers end with identical topologies made of
// their owners' latest records; unreachable peers are forgotten; a restarted peer's old
// incarnation is superseded; and nothing loops.
import t from 'tap';
import fc from 'fast-check';
import { peerNameFromNumber, type PeerName } from '../../src/net/peer-name.js';
import { TopologyGossip, type Outgoing, type Step } from '../../src/mesh/topology-gossip.js';
import { decodeTopologyMessage, encodeTopologyMessage, type TopologyMessage } from '../../src/mesh/topology-codec.js';
import { removeUnreachable, selfRecord, type ConnectionSummary, type PeerRecord } from '../../src/mesh/topology.js';
import { seededRandom as mulberry32 } from '../../src/net/seeded-random.js';

const N = (i: number): PeerName => peerNameFromNumber(0x0200_0000_0000 + ((i * 7919) % 4096));


/** A mesh of TopologyGossip cores joined by in-order links, delivered in random order. */
class Mesh {
  readonly nodes = new Map<PeerName, TopologyGossip>();
  readonly links = new Map<PeerName, Set<PeerName>>();
  readonly queues = new Map<string, { from: PeerName; to: PeerName; messages: TopologyMessage[] }>();
  /** Keys of queues that may hold messages. */
  busy: string[] = [];
  delivered = 0;
  removedLog: { at: PeerName; removed: PeerName }[] = [];

  constructor(readonly random: () => number) {}

  live(): PeerName[] {
    return [...this.nodes.keys()].sort();
  }

  add(name: PeerName): void {
    const uid = (BigInt(Math.floor(this.random() * 2 ** 32)) << 32n) | BigInt(Math.floor(this.random() * 2 ** 32) + 1);
    this.nodes.set(name, new TopologyGossip({ name, nickname: `host-${name.slice(-5)}`, uid, shortId: 0 }, this.random));
    this.links.set(name, new Set());
  }

  remove(name: PeerName): void {
    for (const other of [...this.links.get(name) ?? []]) this.disconnect(name, other);
    this.nodes.delete(name);
    this.links.delete(name);
  }

  connections(name: PeerName): ConnectionSummary[] {
    return [...this.links.get(name)!].map((o) => ({ name: o, address: `${o}:6783`, outbound: name < o, established: true }));
  }

  connect(a: PeerName, b: PeerName): void {
    if (a === b || this.links.get(a)!.has(b)) return;
    this.links.get(a)!.add(b);
    this.links.get(b)!.add(a);
    // As the router does: the connection set changes, then the neighbour is up.
    this.apply(a, this.nodes.get(a)!.setLocalConnections(this.connections(a)));
    this.apply(b, this.nodes.get(b)!.setLocalConnections(this.connections(b)));
    this.apply(a, this.nodes.get(a)!.neighbourUp(b));
    this.apply(b, this.nodes.get(b)!.neighbourUp(a));
  }

  disconnect(a: PeerName, b: PeerName): void {
    if (!this.links.get(a)?.has(b)) return;
    this.links.get(a)!.delete(b);
    this.links.get(b)!.delete(a);
    this.queues.delete(`${a}>${b}`); // what was in flight is lost with the connection
    this.queues.delete(`${b}>${a}`);
    this.apply(a, this.nodes.get(a)!.setLocalConnections(this.connections(a)));
    this.apply(b, this.nodes.get(b)!.setLocalConnections(this.connections(b)));
  }

  apply(at: PeerName, step: Step): void {
    // The core's invariant: everything it holds is reachable.
    const t = this.nodes.get(at)!.topology;
    const stray = removeUnreachable(t).removed;
    if (stray.length > 0) throw new Error(`${at} holds unreachable ${stray.map((r) => r.name).join(',')}`);
    for (const r of step.removed) this.removedLog.push({ at, removed: r.name });
    for (const o of step.out) this.send(at, o);
  }

  send(from: PeerName, o: Outgoing): void {
    if (!this.links.get(from)?.has(o.to)) return; // no connection: the router drops it
    const key = `${from}>${o.to}`;
    let q = this.queues.get(key);
    if (q === undefined) this.queues.set(key, (q = { from, to: o.to, messages: [] }));
    if (q.messages.length === 0) this.busy.push(key);
    // Through the wire format, as the router sends it.
    q.messages.push(decodeTopologyMessage(encodeTopologyMessage(o.message)));
  }

  deliverOne(): boolean {
    // A random link with something in flight (queues of dropped links are gone from the map).
    let q: { from: PeerName; to: PeerName; messages: TopologyMessage[] } | undefined;
    while (this.busy.length > 0 && q === undefined) {
      const i = Math.floor(this.random() * this.busy.length);
      const candidate = this.queues.get(this.busy[i]!);
      if (candidate !== undefined && candidate.messages.length > 0) q = candidate;
      else this.busy.splice(i, 1);
    }
    if (q === undefined) return false;
    const m = q.messages.shift()!;
    this.delivered++;
    this.apply(q.to, this.nodes.get(q.to)!.onMessage(q.from, m));
    return true;
  }

  deliverAll(limit = 200_000): void {
    for (let i = 0; this.deliverOne(); i++) if (i > limit) throw new Error('messages never stop');
  }

  tickAll(): void {
    for (const name of this.live()) this.apply(name, this.nodes.get(name)!.tick());
  }

  components(): PeerName[][] {
    const seen = new Set<PeerName>();
    const out: PeerName[][] = [];
    for (const start of this.live()) {
      if (seen.has(start)) continue;
      const comp = [start];
      seen.add(start);
      for (let i = 0; i < comp.length; i++) {
        for (const o of this.links.get(comp[i]!)!) if (!seen.has(o)) seen.add(o), comp.push(o);
      }
      out.push(comp.sort());
    }
    return out;
  }

  /** Why the mesh is not converged, or undefined when it is. */
  divergence(): string | undefined {
    for (const comp of this.components()) {
      for (const p of comp) {
        const topo = this.nodes.get(p)!.topology;
        const held = [...topo.peers.keys()].sort();
        if (held.join() !== comp.join()) return `${p} holds [${held.join(' ')}], its component is [${comp.join(' ')}]`;
        for (const q of comp) {
          const want = selfRecord(this.nodes.get(q)!.topology);
          const have = topo.peers.get(q)!;
          if (!sameRecord(have, want)) return `${p} holds ${q} at ${have.version}/${have.uid}, owner is at ${want.version}/${want.uid}`;
        }
      }
    }
    return undefined;
  }
}

function sameRecord(a: PeerRecord, b: PeerRecord): boolean {
  return (
    a.name === b.name && a.uid === b.uid && a.version === b.version && a.nickname === b.nickname && a.shortId === b.shortId &&
    a.connections.length === b.connections.length &&
    a.connections.every((c, i) => {
      const d = b.connections[i]!;
      return c.name === d.name && c.address === d.address && c.outbound === d.outbound && c.established === d.established;
    })
  );
}

// ---- random scenarios ----

type Command =
  | { kind: 'connect'; a: number; b: number }
  | { kind: 'disconnect'; i: number }
  | { kind: 'join'; to: number[] }
  | { kind: 'leave'; i: number }
  | { kind: 'restart'; i: number }
  | { kind: 'partition'; cut: number }
  | { kind: 'heal'; a: number; b: number }
  | { kind: 'deliver'; count: number }
  | { kind: 'tick'; i: number };

const plain = { noNullPrototype: true } as const;
const topologyCommand: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant('connect' as const), a: fc.nat(), b: fc.nat() }, plain),
  fc.record({ kind: fc.constant('disconnect' as const), i: fc.nat() }, plain),
  fc.record({ kind: fc.constant('join' as const), to: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }) }, plain),
  fc.record({ kind: fc.constant('leave' as const), i: fc.nat() }, plain),
  fc.record({ kind: fc.constant('restart' as const), i: fc.nat() }, plain),
  fc.record({ kind: fc.constant('partition' as const), cut: fc.nat() }, plain),
  fc.record({ kind: fc.constant('heal' as const), a: fc.nat(), b: fc.nat() }, plain),
);
const chaosCommand: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: topologyCommand, weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('deliver' as const), count: fc.integer({ min: 1, max: 60 }) }, plain), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('tick' as const), i: fc.nat() }, plain), weight: 1 },
);

class Scenario {
  readonly mesh: Mesh;
  next = 0;
  constructor(seed: number, size: number, settle: boolean) {
    this.mesh = new Mesh(mulberry32(seed));
    // Peers join one at a time, each dialling up to three known peers.
    for (let i = 0; i < size; i++) {
      this.join([Math.floor(this.mesh.random() * 1000), Math.floor(this.mesh.random() * 1000), Math.floor(this.mesh.random() * 1000)].slice(0, 1 + (i % 3)));
      if (settle) this.mesh.deliverAll();
    }
  }

  pick(i: number): PeerName | undefined {
    const live = this.mesh.live();
    return live.length === 0 ? undefined : live[i % live.length];
  }

  join(to: number[]): void {
    const others = this.mesh.live();
    const name = N(this.next++);
    this.mesh.add(name);
    for (const i of to) if (others.length > 0) this.mesh.connect(name, others[i % others.length]!);
  }

  run(c: Command): void {
    const m = this.mesh;
    switch (c.kind) {
      case 'connect':
      case 'heal': {
        const comps = m.components();
        // heal joins two different components when there are several
        const [ca, cb] = c.kind === 'heal' && comps.length > 1 ? [comps[c.a % comps.length]!, comps[(c.a + 1 + (c.b % (comps.length - 1))) % comps.length]!] : [m.live(), m.live()];
        if (ca.length > 0 && cb.length > 0) m.connect(ca[c.a % ca.length]!, cb[c.b % cb.length]!);
        return;
      }
      case 'disconnect': {
        const all = m.live().flatMap((a) => [...m.links.get(a)!].filter((b) => a < b).map((b) => [a, b] as const));
        const l = all[c.i % Math.max(1, all.length)];
        if (l !== undefined) m.disconnect(l[0], l[1]);
        return;
      }
      case 'join':
        this.join(c.to);
        return;
      case 'leave': {
        const p = this.pick(c.i);
        if (p !== undefined && m.nodes.size > 1) m.remove(p);
        return;
      }
      case 'restart': {
        // Same name, new uid (a new process), same neighbours.
        const p = this.pick(c.i);
        if (p === undefined) return;
        const neighbours = [...m.links.get(p)!];
        m.remove(p);
        m.add(p);
        for (const o of neighbours) m.connect(p, o);
        return;
      }
      case 'partition': {
        const live = m.live();
        const side = new Set(live.filter((_, i) => (i * 31 + c.cut) % 3 === 0));
        for (const a of side) for (const b of [...m.links.get(a)!]) if (!side.has(b)) m.disconnect(a, b);
        return;
      }
      case 'deliver':
        for (let i = 0; i < c.count && m.deliverOne(); i++);
        return;
      case 'tick': {
        const p = this.pick(c.i);
        if (p !== undefined) m.apply(p, m.nodes.get(p)!.tick());
        return;
      }
    }
  }
}

t.test('after each event, flooding alone converges every component (no anti-entropy rounds)', async (t) => {
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 2, max: 40 }), fc.array(topologyCommand, { maxLength: 12 }), (seed, size, commands) => {
      const s = new Scenario(seed, size, true);
      const initial = s.mesh.divergence();
      if (initial !== undefined) throw new Error(`after the joins: ${initial}`);
      for (const c of commands) {
        s.run(c);
        s.mesh.deliverAll();
        const d = s.mesh.divergence();
        if (d !== undefined) throw new Error(`after ${JSON.stringify(c)}: ${d}`);
      }
    }),
    { numRuns: 40 },
  );
  t.pass('checked');
});

t.test('after chaos (lost and reordered messages, partial delivery), anti-entropy converges every component', async (t) => {
  let worst = 0;
  fc.assert(
    fc.property(fc.integer(), fc.integer({ min: 2, max: 40 }), fc.array(chaosCommand, { maxLength: 40 }), (seed, size, commands) => {
      const s = new Scenario(seed, size, false);
      for (const c of commands) s.run(c);
      s.mesh.deliverAll();
      let rounds = 0;
      for (; s.mesh.divergence() !== undefined; rounds++) {
        if (rounds === 60) throw new Error(`not converged after 60 anti-entropy rounds: ${s.mesh.divergence()}`);
        s.mesh.tickAll();
        s.mesh.deliverAll();
      }
      worst = Math.max(worst, rounds);
      // Converged means quiet: a further round exchanges probes and nothing else.
      const before = s.mesh.delivered;
      s.mesh.tickAll();
      s.mesh.deliverAll();
      const probes = s.mesh.live().filter((p) => s.mesh.links.get(p)!.size > 0).length;
      if (s.mesh.delivered - before !== probes) throw new Error(`a converged round took ${s.mesh.delivered - before} messages for ${probes} probes`);
    }),
    { numRuns: 40 },
  );
  t.pass(`worst case: ${worst} anti-entropy rounds`);
});

// ---- specific behaviour ----

function pair(): { mesh: Mesh; a: PeerName; b: PeerName } {
  const mesh = new Mesh(mulberry32(7));
  const [a, b] = [N(1), N(2)];
  mesh.add(a);
  mesh.add(b);
  return { mesh, a, b };
}

t.test('two peers learn each other and then forget each other', async (t) => {
  const { mesh, a, b } = pair();
  mesh.connect(a, b);
  mesh.deliverAll();
  t.equal(mesh.divergence(), undefined);
  t.same([...mesh.nodes.get(a)!.topology.peers.keys()].sort(), [a, b].sort());
  t.equal(mesh.nodes.get(a)!.routes.unicast.get(b), b);
  mesh.disconnect(a, b);
  mesh.deliverAll();
  t.same([...mesh.nodes.get(a)!.topology.peers.keys()], [a]);
  t.same(mesh.removedLog.map((r) => r.at).sort(), [a, b].sort(), 'each logs the other as removed');
});

t.test('a restarted peer supersedes its old incarnation even when the old one had a higher version', async (t) => {
  const mesh = new Mesh(mulberry32(3));
  const [a, b, c] = [N(1), N(2), N(3)];
  for (const p of [a, b, c]) mesh.add(p);
  mesh.connect(a, b);
  mesh.connect(b, c);
  for (let i = 0; i < 5; i++) {
    // Churn on c's side raises c's version well above what a new process starts at.
    mesh.disconnect(b, c);
    mesh.connect(b, c);
  }
  mesh.deliverAll();
  const oldC = selfRecord(mesh.nodes.get(c)!.topology);
  t.ok(oldC.version > 5);
  // c restarts: a new process (new uid, version 1) with the same name. b never noticed the
  // disconnection: it reconnects at once, so b and a still hold the old record.
  mesh.nodes.delete(c);
  mesh.add(c);
  mesh.links.get(c)!.clear();
  mesh.links.get(b)!.delete(c);
  mesh.queues.clear();
  mesh.connect(b, c);
  mesh.deliverAll();
  t.equal(mesh.divergence(), undefined);
  const newC = selfRecord(mesh.nodes.get(c)!.topology);
  t.not(newC.uid, oldC.uid);
  t.ok(newC.version > oldC.version, 'the new incarnation went beyond the old version');
  t.equal(mesh.nodes.get(a)!.topology.peers.get(c)!.uid, newC.uid, 'a far peer holds the new incarnation');
});

t.test('a peer we forgot is not fetched again from a neighbour with a stale view', async (t) => {
  // a - b - x; x leaves. b hears of it at once; a's link to b is slow, so a first probes b,
  // stale. Then the other way round: a is up to date and b stale.
  const mesh = new Mesh(mulberry32(11));
  const [a, b, x] = [N(1), N(2), N(3)];
  for (const p of [a, b, x]) mesh.add(p);
  mesh.connect(a, b);
  mesh.connect(b, x);
  mesh.deliverAll();
  mesh.remove(x); // b's delta to a is now in flight
  const toA = mesh.queues.get(`${b}>${a}`)!.messages.splice(0); // hold it back
  t.ok(toA.length > 0);
  t.ok(mesh.nodes.get(a)!.topology.peers.has(x), 'a still holds x');
  t.notOk(mesh.nodes.get(b)!.topology.peers.has(x), 'b forgot x');
  // b probes a (as on a tick); a has x and b does not.
  mesh.send(b, { to: a, message: { type: 'digest', hash: new Uint8Array(16), full: false, reply: true, versions: [] } });
  mesh.deliverAll();
  t.notOk(mesh.nodes.get(b)!.topology.peers.has(x), 'b did not take x back');
  t.notOk(mesh.nodes.get(a)!.topology.peers.has(x), 'a learned that x is gone');
  mesh.queues.get(`${b}>${a}`)!.messages.push(...toA); // the old news arrives late
  mesh.busy.push(`${b}>${a}`);
  mesh.deliverAll();
  t.equal(mesh.divergence(), undefined);
  const before = mesh.delivered;
  mesh.tickAll();
  mesh.deliverAll();
  t.equal(mesh.delivered - before, 2, 'then quiet: one probe each way, no answers');
});

t.test('in a full mesh each peer hears of a change once, not once per neighbour', async (t) => {
  const mesh = new Mesh(mulberry32(5));
  const peers = Array.from({ length: 12 }, (_, i) => N(i + 1));
  for (const p of peers) mesh.add(p);
  for (const p of peers) for (const q of peers) if (p < q) mesh.connect(p, q);
  mesh.deliverAll();
  t.equal(mesh.divergence(), undefined);
  let before = mesh.delivered;
  mesh.remove(peers[11]!);
  mesh.deliverAll();
  t.equal(mesh.divergence(), undefined);
  // A peer leaves: each of the 11 others tells its 10 neighbours, and nobody passes it on (without
  // the sender's version, every peer would relay each change to 9 more).
  t.equal(mesh.delivered - before, 11 * 10);
  before = mesh.delivered;
  mesh.disconnect(peers[0]!, peers[1]!);
  mesh.deliverAll();
  t.equal(mesh.divergence(), undefined);
  // A link between two live peers drops: each end tells its 9 remaining neighbours, and each of
  // those relays it once to the other end, which the originator no longer reaches.
  t.equal(mesh.delivered - before, 2 * 9 + 2 * 9);
});

t.test('a newcomer connected to many peers fetches each record once', async (t) => {
  const mesh = new Mesh(mulberry32(9));
  const peers = Array.from({ length: 30 }, (_, i) => N(i + 1));
  for (const p of peers) mesh.add(p);
  for (let i = 1; i < peers.length; i++) {
    mesh.connect(peers[i]!, peers[Math.floor(mesh.random() * i)]!);
    mesh.connect(peers[i]!, peers[Math.floor(mesh.random() * i)]!);
  }
  mesh.deliverAll();
  const j = N(99);
  mesh.add(j);
  const fullRecords = new Map<PeerName, number>();
  const send = mesh.send.bind(mesh);
  mesh.send = (from, o) => {
    if (o.to === j && o.message.type === 'update') for (const r of o.message.peers) fullRecords.set(r.name, (fullRecords.get(r.name) ?? 0) + 1);
    send(from, o);
  };
  for (const p of peers.slice(0, 10)) mesh.connect(j, p);
  mesh.deliverAll();
  t.equal(mesh.divergence(), undefined);
  const repeated = [...fullRecords].filter(([, n]) => n > 1);
  // Only the ten new neighbours' own records may come twice (their change, and a pull that
  // crossed it); everything else once.
  t.ok(repeated.every(([name]) => peers.slice(0, 10).includes(name)), `records sent more than once: ${repeated.map(([n, c]) => `${n}×${c}`).join(' ')}`);
  t.same([...fullRecords.keys()].sort(), [...peers].sort(), 'every record, and not its own');
});

t.test('messages stay small: a probe is a few dozen bytes, a 1,000-peer version list tens of KB', async (t) => {
  const g = new TopologyGossip({ name: N(0), nickname: 'big', uid: 1n, shortId: 0 }, mulberry32(1));
  const records: PeerRecord[] = Array.from({ length: 999 }, (_, i) => ({
    name: peerNameFromNumber(0x0200_0000_1000 + i),
    nickname: `node-${i}`,
    uid: BigInt(i + 1) * 0x1_0000_0001n,
    version: 1 + (i % 50),
    shortId: i % 4096,
    connections: [{ name: N(0), address: '10.0.0.1:6783', outbound: false, established: true }],
  }));
  g.setLocalConnections(records.map((r) => ({ name: r.name, address: '10.1.0.1:6783', outbound: true, established: true })));
  g.onMessage(records[0]!.name, { type: 'update', peers: records, deltas: [], senderVersion: 0 });
  t.equal(g.topology.peers.size, 1000);
  const probe = g.tick().out[0]!.message;
  t.ok(encodeTopologyMessage(probe).length <= 24, `probe: ${encodeTopologyMessage(probe).length} bytes`);
  // A differing probe marked as an echo gets the full list.
  const list = g.onMessage(records[0]!.name, { type: 'digest', hash: new Uint8Array(16), full: false, reply: true, versions: [] }).out[0]!.message;
  t.equal(list.type, 'digest');
  const size = encodeTopologyMessage(list).length;
  t.ok(size < 32 * 1024, `full list of 1000: ${size} bytes`);
});
