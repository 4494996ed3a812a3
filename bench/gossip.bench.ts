// Topology gossip at scale, simulated in one process: N TopologyGossip cores (the real protocol
// code, no sockets), each connected to at most --conn-limit others, exchanging real messages whose
// sizes are measured by encoding them. Prints, per (peers, conn-limit): rounds and simulated time
// until every peer holds the same topology after a join and after a leave, and bytes sent per
// peer in steady state and for each event.
//
//   node dist/bench/gossip.bench.js [--peers 100,300,1000] [--conn-limit 10,200]
//        [--interval 30] [--round-ms 50] [--steady 120] [--seed 1] [--encrypted]
//
// Model (stated in the output too):
//  - Graph: all peers come up together and each dials up to conn-limit/2 random peers (in random
//    order; a peer at the limit refuses), so degrees stay <= conn-limit, as peers discovering
//    each other build it; the rare component left apart is joined by one extra link. A newcomer
//    dials conn-limit/2 random peers among those below the limit.
//  - Start: every peer is given the whole topology at once (not measured), then steady state is
//    measured over --steady seconds of anti-entropy ticks (each peer every --interval seconds, at
//    a random phase).
//  - Rounds: one round delivers every message in flight, in order per link; a message sent in
//    round r arrives in round r+1, --round-ms later. Ticks fire on schedule meanwhile.
//  - Connection changes: a peer's connection set changes once per event (the router should
//    coalesce changes that come together, as Weave batches them for 1 s).
//  - Send queues: topology updates queued for one connection within one round go out as one
//    message (see coalesce), as Weave's per-connection gossip sender merges pending updates.
//  - Bytes: the encoded TopologyMessage plus framing, computed exactly: a 4-byte length prefix and
//    the protobuf Envelope/Gossip header (channel "topology", kind, src), plus 16 bytes of
//    secretbox MAC per message with --encrypted.
import { weft } from '../src/proto.js';
import { peerNameFromNumber, type PeerName } from '../src/net/peer-name.js';
import { TopologyGossip, type Step } from '../src/mesh/topology-gossip.js';
import { encodeTopologyMessage, type TopologyMessage } from '../src/mesh/topology-codec.js';
import { selfRecord, type ConnectionSummary, type PeerDelta, type PeerRecord } from '../src/mesh/topology.js';
import { seededRandom as mulberry32 } from '../src/net/seeded-random.js';

interface Options {
  peers: number[];
  connLimits: number[];
  intervalMs: number;
  roundMs: number;
  steadyMs: number;
  seed: number;
  encrypted: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { peers: [100, 300, 1000], connLimits: [10, 200], intervalMs: 30_000, roundMs: 50, steadyMs: 120_000, seed: 1, encrypted: false };
  const list = (v: string | undefined): number[] => (v ?? '').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--peers') (o.peers = list(v)), i++;
    else if (a === '--conn-limit') (o.connLimits = list(v)), i++;
    else if (a === '--interval') (o.intervalMs = Number(v) * 1000), i++;
    else if (a === '--round-ms') (o.roundMs = Number(v)), i++;
    else if (a === '--steady') (o.steadyMs = Number(v) * 1000), i++;
    else if (a === '--seed') (o.seed = Number(v)), i++;
    else if (a === '--encrypted') o.encrypted = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}


// ---- bytes on the wire ----

const varintLength = (n: number): number => (n < 2 ** 7 ? 1 : n < 2 ** 14 ? 2 : n < 2 ** 21 ? 3 : n < 2 ** 28 ? 4 : 5);

/** Bytes of one framed topology message with a payload of `payload` bytes, from `src`. */
function framedSize(payload: number, src: PeerName, encrypted: boolean): number {
  const header = weft.Gossip.encode({ kind: weft.Gossip.Kind.NEIGHBOUR, channel: 'topology', src: parseInt(src.replaceAll(':', ''), 16) }).finish().length;
  const gossip = header + (payload > 0 ? 1 + varintLength(payload) + payload : 0);
  const envelope = 1 + varintLength(gossip) + gossip;
  return 4 + envelope + (encrypted ? 16 : 0);
}

// Sizes are exact protobuf sizes, built from the encoded size of each record and delta (cached:
// the same objects travel to many peers) instead of encoding every coalesced message again.
// Every 1,000th message is also encoded in full, and a difference stops the benchmark.
const fieldSizes = new WeakMap<object, number>();
const otherSizes = new WeakMap<TopologyMessage, number>();
let sizeChecks = 0;

/** The bytes of one record or delta inside an update: tag, length and body. */
function fieldSize(item: PeerRecord | PeerDelta, isDelta: boolean): number {
  let n = fieldSizes.get(item);
  if (n === undefined) {
    const alone = encodeTopologyMessage({
      type: 'update',
      peers: isDelta ? [] : [item as PeerRecord],
      deltas: isDelta ? [item as PeerDelta] : [],
      senderVersion: 0,
    }).length;
    // alone = 1 (tag) + varint(inner) + inner, and inner is exactly this field.
    n = alone - 2;
    while (1 + varintLength(n) + n > alone) n--;
    fieldSizes.set(item, n);
  }
  return n;
}

function payloadSize(m: TopologyMessage): number {
  let n: number;
  if (m.type === 'update') {
    let inner = m.senderVersion > 0 ? 1 + varintLength(m.senderVersion) : 0;
    for (const r of m.peers) inner += fieldSize(r, false);
    for (const d of m.deltas) inner += fieldSize(d, true);
    n = 1 + varintLength(inner) + inner;
  } else {
    n = otherSizes.get(m) ?? encodeTopologyMessage(m).length;
    otherSizes.set(m, n);
  }
  if (++sizeChecks % 1000 === 0 && encodeTopologyMessage(m).length !== n) {
    throw new Error(`size arithmetic is off: ${n} against ${encodeTopologyMessage(m).length}`);
  }
  return n;
}

/**
 * The router's send queue for one connection, as Weave's gossip sender does it: topology updates
 * queued behind each other within one round go out as one message (records and deltas
 * concatenated, each object once). Only updates flooded under the same version of our record
 * merge, and nothing moves past a digest or a request.
 */
function coalesce(queue: readonly TopologyMessage[]): TopologyMessage[] {
  const out: TopologyMessage[] = [];
  let peers: Set<PeerRecord> | undefined;
  let deltas: Set<PeerDelta> | undefined;
  let senderVersion = -1;
  const close = (): void => {
    if (peers !== undefined && deltas !== undefined) out.push({ type: 'update', peers: [...peers], deltas: [...deltas], senderVersion });
    peers = deltas = undefined;
  };
  for (const m of queue) {
    if (m.type !== 'update') {
      close();
      out.push(m);
      continue;
    }
    if (peers === undefined || deltas === undefined || m.senderVersion !== senderVersion) {
      close();
      peers = new Set();
      deltas = new Set();
      senderVersion = m.senderVersion;
    }
    for (const r of m.peers) peers.add(r);
    for (const d of m.deltas) deltas.add(d);
  }
  close();
  return out;
}

// ---- the simulated mesh ----

interface Node {
  readonly name: PeerName;
  readonly gossip: TopologyGossip;
  readonly links: Map<PeerName, ConnectionSummary>;
  readonly phase: number;
  sent: number;
}

class Mesh {
  readonly nodes = new Map<PeerName, Node>();
  /** Nodes by tick phase: every node ticks every interval, so the tick order is fixed. */
  private schedule: Node[] = [];
  private nextTick = 0;
  private cycle = 0;
  /** What each connection carries to the next round, per direction (sender, receiver), in order. */
  private queues = new Map<Node, Map<PeerName, TopologyMessage[]>>();
  now = 0;
  messages = 0;
  private count = 0;

  constructor(
    readonly random: () => number,
    readonly options: Options,
  ) {}

  add(): Node {
    const name = peerNameFromNumber(0x0200_0000_0000 + ++this.count);
    const uid = (BigInt(Math.floor(this.random() * 2 ** 32)) << 32n) | BigInt(1 + Math.floor(this.random() * (2 ** 32 - 1)));
    const node: Node = {
      name,
      gossip: new TopologyGossip({ name, nickname: `node-${this.count}`, uid, shortId: this.count % 4096 }, this.random),
      links: new Map(),
      phase: Math.floor(this.random() * this.options.intervalMs),
      sent: 0,
    };
    this.nodes.set(name, node);
    // Keep the schedule sorted by phase; a newcomer's first tick is in the current cycle if its
    // phase is still ahead.
    const at = this.schedule.findIndex((n) => n.phase > node.phase);
    const index = at < 0 ? this.schedule.length : at;
    this.schedule.splice(index, 0, node);
    if (index < this.nextTick) this.nextTick++;
    return node;
  }

  /** Links two peers at once; returns false when either is at the limit. */
  link(a: Node, b: Node, limit: number): boolean {
    if (a === b || a.links.has(b.name) || a.links.size >= limit || b.links.size >= limit) return false;
    a.links.set(b.name, { name: b.name, address: `${addressOf(b.name)}:6783`, outbound: true, established: true });
    b.links.set(a.name, { name: a.name, address: `${addressOf(a.name)}:6783`, outbound: false, established: true });
    return true;
  }

  unlinkAll(a: Node): Node[] {
    const others = [...a.links.keys()].map((n) => this.nodes.get(n)!);
    for (const b of others) b.links.delete(a.name);
    a.links.clear();
    return others;
  }

  remove(a: Node): void {
    this.nodes.delete(a.name);
    const index = this.schedule.indexOf(a);
    this.schedule.splice(index, 1);
    if (index < this.nextTick) this.nextTick--;
  }

  /** What the router does: the connection set changed, then each new neighbour is up. */
  connectionsChanged(a: Node, newNeighbours: readonly PeerName[]): void {
    this.emit(a, a.gossip.setLocalConnections([...a.links.values()]));
    for (const n of newNeighbours) this.emit(a, a.gossip.neighbourUp(n));
  }

  emit(from: Node, step: Step): void {
    for (const o of step.out) {
      if (!from.links.has(o.to)) continue; // no connection: the router drops it
      let byReceiver = this.queues.get(from);
      if (byReceiver === undefined) this.queues.set(from, (byReceiver = new Map()));
      const q = byReceiver.get(o.to);
      if (q === undefined) byReceiver.set(o.to, [o.message]);
      else q.push(o.message);
    }
  }

  busy(): boolean {
    return this.queues.size > 0;
  }

  /** One round: everything queued goes out (and is counted) and arrives; ticks due meanwhile fire. */
  round(): void {
    const batch = this.queues;
    this.queues = new Map();
    for (const [from, byReceiver] of batch) {
      for (const [to, messages] of byReceiver) this.deliver(from, to, messages);
    }
    this.advance(this.now + this.options.roundMs);
  }

  private deliver(from: Node, to: PeerName, messages: readonly TopologyMessage[]): void {
    const receiver = this.nodes.get(to);
    for (const m of coalesce(messages)) {
      from.sent += framedSize(payloadSize(m), from.name, this.options.encrypted);
      this.messages++;
      if (receiver === undefined || !receiver.links.has(from.name)) continue; // the connection is gone
      this.emit(receiver, receiver.gossip.onMessage(from.name, m));
    }
  }

  /** Moves the clock to `t`, firing the ticks due up to then. */
  advance(t: number): void {
    for (let next = this.peekTick(); next !== undefined && next.at <= t; next = this.peekTick()) {
      this.nextTick++;
      this.emit(next.node, next.node.gossip.tick());
    }
    this.now = t;
  }

  /** The next tick to fire and when. */
  private peekTick(): { node: Node; at: number } | undefined {
    if (this.schedule.length === 0) return undefined;
    if (this.nextTick >= this.schedule.length) {
      this.cycle++;
      this.nextTick = 0;
    }
    const node = this.schedule[this.nextTick]!;
    return { node, at: this.cycle * this.options.intervalMs + node.phase };
  }

  nextTickTime(): number {
    return this.peekTick()?.at ?? Infinity;
  }

  /** Runs rounds while messages are in flight, otherwise jumps from tick to tick, for `ms`. */
  runFor(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      if (this.busy()) this.round();
      else this.advance(Math.min(end, this.nextTickTime()));
    }
  }

  /** Every peer holds exactly the live peers, each at its owner's current uid and version. */
  converged(): boolean {
    const owners = new Map([...this.nodes.values()].map((n) => [n.name, selfRecord(n.gossip.topology)]));
    for (const n of this.nodes.values()) {
      const peers = n.gossip.topology.peers;
      if (peers.size !== owners.size) return false;
      for (const [name, own] of owners) {
        const r = peers.get(name);
        if (r === undefined || r.version !== own.version || r.uid !== own.uid) return false;
      }
    }
    return true;
  }

  totalSent(): number {
    let s = 0;
    for (const n of this.nodes.values()) s += n.sent;
    return s;
  }

  resetCounters(): void {
    for (const n of this.nodes.values()) n.sent = 0;
    this.messages = 0;
  }
}

function addressOf(name: PeerName): string {
  const n = parseInt(name.replaceAll(':', ''), 16) & 0xffffff;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** `k` distinct random elements of `xs`. */
function sample<T>(xs: readonly T[], k: number, random: () => number): T[] {
  const a = [...xs];
  const out: T[] = [];
  for (let i = 0; i < k && i < a.length; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
    out.push(a[i]!);
  }
  return out;
}

/** A newcomer dials up to limit/2 random peers that are below the limit. */
function dial(mesh: Mesh, node: Node, limit: number): Node[] {
  const open = [...mesh.nodes.values()].filter((n) => n !== node && n.links.size < limit);
  return sample(open, Math.max(1, Math.floor(limit / 2)), mesh.random).filter((n) => mesh.link(node, n, limit));
}

/**
 * The starting graph: all peers come up together and each dials up to limit/2 random peers, in
 * random order; a peer at the limit refuses. Components left apart (rare) are then joined by one
 * link each, as a seed list would.
 */
function buildGraph(mesh: Mesh, peers: number, limit: number): void {
  const nodes = Array.from({ length: peers }, () => mesh.add());
  const dials = Math.max(1, Math.floor(limit / 2));
  for (let pass = 0; pass < dials; pass++) {
    for (const a of sample(nodes, nodes.length, mesh.random)) {
      if (a.links.size >= limit) continue;
      // A few random tries, then whoever still has room.
      let linked = false;
      for (let tries = 0; tries < 8 && !linked; tries++) linked = mesh.link(a, nodes[Math.floor(mesh.random() * nodes.length)]!, limit);
      if (!linked) {
        const open = nodes.filter((b) => b !== a && b.links.size < limit && !a.links.has(b.name));
        if (open.length > 0) mesh.link(a, open[Math.floor(mesh.random() * open.length)]!, limit);
      }
    }
  }
  // Join any components left apart.
  const seen = new Set<Node>();
  let previous: Node | undefined;
  for (const start of nodes) {
    if (seen.has(start)) continue;
    const queue = [start];
    seen.add(start);
    for (let i = 0; i < queue.length; i++) {
      for (const n of queue[i]!.links.keys()) {
        const b = mesh.nodes.get(n)!;
        if (!seen.has(b)) seen.add(b), queue.push(b);
      }
    }
    if (previous !== undefined) mesh.link(previous, start, Infinity);
    previous = start;
  }
}

// ---- one configuration ----

interface EventResult {
  rounds: number | undefined;
  ms: number | undefined;
  avgBytes: number;
  maxBytes: number;
  messages: number;
}

interface Result {
  peers: number;
  limit: number;
  meanDegree: number;
  maxDegree: number;
  steadyBytesPerMin: number;
  join: EventResult;
  leave: EventResult;
  wallMs: number;
}

/**
 * Runs rounds after an event until every peer holds the same topology and nothing is in flight;
 * when nothing is in flight but the peers still differ, waits for the next anti-entropy tick.
 * Gives up after 10 simulated minutes.
 */
function measureEvent(mesh: Mesh, start: number): EventResult {
  let rounds: number | undefined;
  let ms: number | undefined;
  let r = 0;
  while (mesh.now < start + 600_000) {
    if (mesh.busy()) {
      mesh.round();
      r++;
    } else {
      mesh.advance(mesh.nextTickTime());
    }
    if (rounds === undefined && mesh.converged()) {
      rounds = r;
      ms = mesh.now - start;
    }
    if (rounds !== undefined && !mesh.busy()) break;
  }
  const sent = [...mesh.nodes.values()].map((n) => n.sent);
  return {
    rounds,
    ms,
    avgBytes: sent.reduce((a, b) => a + b, 0) / sent.length,
    maxBytes: Math.max(...sent),
    messages: mesh.messages,
  };
}

function runOne(peers: number, limit: number, options: Options): Result {
  const started = performance.now();
  const random = mulberry32(options.seed * 1_000_003 + peers * 1009 + limit);
  const mesh = new Mesh(random, options);

  buildGraph(mesh, peers, limit);
  const degrees = [...mesh.nodes.values()].map((n) => n.links.size);
  if (degrees.some((d) => d === 0) && peers > 1) throw new Error('the generator left a peer without connections');

  // Start: everyone's connections, then the whole topology handed to every peer (not measured).
  for (const n of mesh.nodes.values()) n.gossip.setLocalConnections([...n.links.values()]);
  const records = [...mesh.nodes.values()].map((n) => selfRecord(n.gossip.topology));
  for (const n of mesh.nodes.values()) {
    n.gossip.onMessage([...n.links.keys()][0]!, { type: 'update', peers: records, deltas: [], senderVersion: 0 });
  }
  if (!mesh.converged()) throw new Error('the start is not converged');

  // Steady state.
  mesh.runFor(options.intervalMs); // one interval to settle the schedule
  mesh.resetCounters();
  mesh.runFor(options.steadyMs);
  const steadyBytesPerMin = (mesh.totalSent() / mesh.nodes.size) * (60_000 / options.steadyMs);
  if (!mesh.converged()) throw new Error('steady state drifted');

  // A join.
  mesh.resetCounters();
  let start = mesh.now;
  const newcomer = mesh.add();
  const dialled = dial(mesh, newcomer, limit);
  mesh.connectionsChanged(newcomer, dialled.map((n) => n.name));
  for (const n of dialled) mesh.connectionsChanged(n, [newcomer.name]);
  const join = measureEvent(mesh, start);

  // A leave: a random peer other than the newcomer disappears (its links drop).
  mesh.runFor(options.intervalMs);
  mesh.resetCounters();
  start = mesh.now;
  const leaving = sample([...mesh.nodes.values()].filter((n) => n !== newcomer), 1, random)[0]!;
  const neighbours = mesh.unlinkAll(leaving);
  mesh.remove(leaving);
  for (const n of neighbours) mesh.connectionsChanged(n, []);
  const leave = measureEvent(mesh, start);

  return {
    peers,
    limit,
    meanDegree: degrees.reduce((a, b) => a + b, 0) / degrees.length,
    maxDegree: Math.max(...degrees),
    steadyBytesPerMin,
    join,
    leave,
    wallMs: performance.now() - started,
  };
}

// ---- output ----

const kb = (b: number): string => (b / 1024).toFixed(b < 10 * 1024 ? 1 : 0);
const event = (e: EventResult): string[] => [
  e.rounds === undefined ? 'never' : String(e.rounds),
  e.ms === undefined ? '-' : (e.ms / 1000).toFixed(2),
  kb(e.avgBytes),
  kb(e.maxBytes),
];

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  console.log('Topology gossip simulation: real TopologyGossip cores, one process, no sockets.');
  console.log(
    `Assumed: anti-entropy tick every ${options.intervalMs / 1000} s per peer (random phase); ${options.roundMs} ms per gossip round ` +
      `(one hop); framing = 4-byte length + Envelope/Gossip header (exact protobuf size)${options.encrypted ? ' + 16-byte MAC' : ', no encryption'}; ` +
      `steady state measured over ${options.steadyMs / 1000} s; seed ${options.seed}.`,
  );
  console.log('Event columns: rounds and simulated seconds until every peer holds the same topology; KB sent per peer for the whole event (mean, max).');
  console.log('');
  const header = ['peers', 'conn-limit', 'degree mean/max', 'steady B/peer/min', 'join rounds', 'join s', 'join KB mean', 'join KB max', 'leave rounds', 'leave s', 'leave KB mean', 'leave KB max', 'wall s'];
  const rows: string[][] = [];
  for (const peers of options.peers) {
    for (const limit of options.connLimits) {
      const r = runOne(peers, limit, options);
      rows.push([
        String(r.peers),
        String(r.limit),
        `${r.meanDegree.toFixed(1)}/${r.maxDegree}`,
        r.steadyBytesPerMin.toFixed(0),
        ...event(r.join),
        ...event(r.leave),
        (r.wallMs / 1000).toFixed(1),
      ]);
      printTable(header, rows);
    }
  }
}

let printed = 0;
function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  // Print the header once, then each row as it completes (the big cases take a while).
  if (printed === 0) console.log(line(header));
  for (; printed < rows.length; printed++) console.log(line(rows[printed]!));
}

main();
