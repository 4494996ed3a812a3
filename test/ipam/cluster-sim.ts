// A cluster of IPAM cores in one process, for the property tests: a message queue instead of a
// mesh, partitions as groups that cannot reach each other, a "disk" per peer holding the text of
// its persisted state, and restarts from that text. It plays the shell's part the way the daemon
// must: persist before sending or answering, send the complete gossip to every newly reachable peer.
import { type Cidr, cidrEnd } from '../../src/net/ipv4.js';
import { type PeerName } from '../../src/net/peer-name.js';
import {
  Ipam,
  type IpamEvent,
  type IpamMode,
  type IpamTiming,
  type Reply,
  type Step,
} from '../../src/ipam/allocator.js';
import { type IpamMessage } from '../../src/ipam/messages.js';
import { type Ring, ownedIntervals, ownerOf } from '../../src/ipam/ring.js';
import { type Allocation } from '../../src/ipam/space.js';
import { parseStateText, stateToText } from '../../src/ipam/state-format.js';

interface Envelope {
  readonly from: PeerName;
  readonly to: PeerName;
  readonly message: IpamMessage;
}

export interface ClusterOptions {
  readonly range: Cidr;
  readonly timing?: Partial<IpamTiming>;
  /** Random source for delivery order and loss; FIFO and lossless without it. */
  readonly random?: () => number;
  /** Probability that a message is lost (needs `random`). */
  readonly loss?: number;
  /** On every tick each peer also sends its complete gossip to every peer it reaches. */
  readonly antiEntropy?: boolean;
}

/** What one peer believes: its ring and its allocations (from memory when alive, disk when dead). */
export interface PeerView {
  readonly peer: PeerName;
  readonly ring: Ring | undefined;
  readonly allocations: readonly Allocation[];
}

export class Cluster {
  readonly range: Cidr;
  now = 0;
  readonly live = new Map<PeerName, Ipam>();
  readonly modes = new Map<PeerName, IpamMode>();
  /** The last persisted state text of every peer that ever persisted. */
  readonly disk = new Map<PeerName, string>();
  /** Killed, with their disk: they may restart. */
  readonly dead = new Set<PeerName>();
  /** Left or taken over by rmpeer: gone for good. */
  readonly removed = new Set<PeerName>();
  readonly group = new Map<PeerName, number>();
  readonly replies: Array<{ peer: PeerName; reply: Reply }> = [];
  readonly events: Array<{ peer: PeerName; event: IpamEvent }> = [];
  delivered = 0;
  #queue: Envelope[] = [];
  #reach = new Map<PeerName, Set<PeerName>>();
  readonly #options: ClusterOptions;

  constructor(options: ClusterOptions) {
    this.range = options.range;
    this.#options = options;
  }

  #config(peer: PeerName): { self: PeerName; range: Cidr; mode: IpamMode; timing?: Partial<IpamTiming> } {
    const mode = this.modes.get(peer);
    if (!mode) throw new Error(`unknown peer ${peer}`);
    return { self: peer, range: this.range, mode, ...(this.#options.timing ? { timing: this.#options.timing } : {}) };
  }

  connected(a: PeerName, b: PeerName): boolean {
    return a !== b && this.live.has(a) && this.live.has(b) && this.group.get(a) === this.group.get(b);
  }

  partitioned(): boolean {
    return new Set([...this.live.keys()].map((p) => this.group.get(p))).size > 1;
  }

  /** Carries out a step the way the daemon must: persist first, then send and answer. */
  handle(peer: PeerName, step: Step): void {
    const ipam = this.live.get(peer);
    if (step.persist && ipam) this.disk.set(peer, stateToText(ipam.persistentState()));
    for (const reply of step.replies) this.replies.push({ peer, reply });
    for (const event of step.events) this.events.push({ peer, event });
    for (const o of step.out) {
      if ('to' in o) {
        this.#queue.push({ from: peer, to: o.to, message: o.message });
      } else {
        for (const other of this.live.keys()) {
          if (this.connected(peer, other)) this.#queue.push({ from: peer, to: other, message: o.message });
        }
      }
    }
  }

  /** Runs `fn` on a live peer, carries out its step and delivers until the cluster is quiet. */
  act(peer: PeerName, fn: (ipam: Ipam) => Step): void {
    const ipam = this.live.get(peer);
    if (!ipam) throw new Error(`${peer} is not running`);
    this.handle(peer, fn(ipam));
    this.deliver();
  }

  deliver(limit = 200_000): void {
    const random = this.#options.random;
    for (let n = 0; this.#queue.length > 0; n++) {
      if (n > limit) throw new Error('gossip does not settle');
      const i = random ? Math.floor(random() * this.#queue.length) : 0;
      const [env] = this.#queue.splice(i, 1) as [Envelope];
      if (!this.connected(env.from, env.to)) continue;
      if (random && this.#options.loss && random() < this.#options.loss) continue;
      const ipam = this.live.get(env.to) as Ipam;
      this.delivered++;
      this.handle(env.to, ipam.onMessage(env.from, env.message, this.now));
    }
  }

  /** Tells every peer whom it can reach; newly connected pairs exchange their complete gossip. */
  refreshReachability(): void {
    for (const [peer, ipam] of this.live) {
      const now = new Set([...this.live.keys()].filter((o) => this.connected(peer, o)));
      const before = this.#reach.get(peer) ?? new Set();
      this.#reach.set(peer, now);
      if (now.size !== before.size || [...now].some((p) => !before.has(p))) {
        this.handle(peer, ipam.setReachable(now, this.now));
        for (const other of now) {
          if (before.has(other)) continue;
          const g = ipam.gossip();
          if (g) this.#queue.push({ from: peer, to: other, message: g });
        }
      }
    }
    for (const peer of [...this.#reach.keys()]) if (!this.live.has(peer)) this.#reach.delete(peer);
    this.deliver();
  }

  /** Starts a peer: from its disk if it has one, else fresh. It joins group `group`. */
  start(peer: PeerName, mode: IpamMode, group = 0): Ipam {
    if (this.removed.has(peer)) throw new Error(`${peer} was removed`);
    this.modes.set(peer, mode);
    const text = this.disk.get(peer);
    let ipam: Ipam;
    if (text === undefined) {
      ipam = Ipam.create(this.#config(peer));
    } else {
      const parsed = parseStateText(text, { peer, range: this.range });
      if (!parsed.ok) throw new Error(`restart of ${peer}: ${parsed.message}`);
      ipam = Ipam.restore(this.#config(peer), parsed.state);
    }
    this.live.set(peer, ipam);
    this.dead.delete(peer);
    this.group.set(peer, group);
    // A seed ring exists from the start and must be on disk before anything else happens.
    if (text === undefined && ipam.ring) this.disk.set(peer, stateToText(ipam.persistentState()));
    this.refreshReachability();
    return ipam;
  }

  kill(peer: PeerName): void {
    this.live.delete(peer);
    this.dead.add(peer);
    this.refreshReachability();
  }

  restart(peer: PeerName): void {
    const group = this.group.get(peer) ?? 0;
    if (this.live.has(peer)) this.kill(peer);
    this.start(peer, this.modes.get(peer) as IpamMode, group);
  }

  /** Graceful leave (weave reset): hand the space on, then go for good. */
  leave(peer: PeerName): Reply | undefined {
    const ipam = this.live.get(peer) as Ipam;
    const step = ipam.shutdown();
    this.handle(peer, step);
    this.deliver();
    this.live.delete(peer);
    this.removed.add(peer);
    this.disk.delete(peer);
    this.refreshReachability();
    return step.replies[0];
  }

  /** After `rmpeer` of a peer: it must never come back with its old state. */
  forget(peer: PeerName): void {
    this.dead.delete(peer);
    this.removed.add(peer);
    this.disk.delete(peer);
  }

  partition(groupOf: (peer: PeerName) => number): void {
    for (const peer of this.live.keys()) this.group.set(peer, groupOf(peer));
    this.refreshReachability();
  }

  heal(): void {
    this.partition(() => 0);
  }

  tick(dt: number): void {
    this.now += dt;
    for (const [peer, ipam] of [...this.live]) if (this.live.has(peer)) this.handle(peer, ipam.tick(this.now));
    if (this.#options.antiEntropy) {
      for (const [peer, ipam] of this.live) {
        const g = ipam.gossip();
        if (!g) continue;
        for (const other of this.live.keys()) if (this.connected(peer, other)) this.#queue.push({ from: peer, to: other, message: g });
      }
    }
    this.deliver();
  }

  /** Every peer that still counts: running ones from memory, dead ones from their disk. */
  views(): PeerView[] {
    const views: PeerView[] = [];
    for (const [peer, ipam] of this.live) views.push({ peer, ring: ipam.ring, allocations: ipam.allocations() });
    for (const peer of this.dead) {
      const text = this.disk.get(peer);
      if (text === undefined) continue;
      const parsed = parseStateText(text, { peer, range: this.range });
      if (!parsed.ok) throw new Error(parsed.message);
      views.push({ peer, ring: parsed.state.ring, allocations: parsed.state.allocations });
    }
    return views;
  }

  takeReplies(): Array<{ peer: PeerName; reply: Reply }> {
    return this.replies.splice(0);
  }
}

/**
 * The safety invariants, over every peer's own view: no address is owned by two peers, no address
 * is held twice, nothing handed out is reserved or outside the holder's own space. Returns the
 * first violation, or undefined.
 */
export function findViolation(cluster: Cluster): string | undefined {
  const views = cluster.views();
  const owned: Array<{ start: number; end: number; peer: PeerName }> = [];
  for (const v of views) {
    if (v.ring) for (const i of ownedIntervals(v.ring, v.peer)) owned.push({ ...i, peer: v.peer });
  }
  owned.sort((a, b) => a.start - b.start);
  for (let i = 1; i < owned.length; i++) {
    const a = owned[i - 1] as (typeof owned)[number];
    const b = owned[i] as (typeof owned)[number];
    if (b.start < a.end) return `${a.peer} and ${b.peer} both own ${Math.max(a.start, b.start)}`;
  }
  const holders = new Map<number, string>();
  const last = cidrEnd(cluster.range) - 1;
  for (const v of views) {
    for (const a of v.allocations) {
      const who = `${v.peer}/${a.id}`;
      const other = holders.get(a.address);
      if (other !== undefined) return `address ${a.address} held by ${other} and ${who}`;
      holders.set(a.address, who);
      if (a.address === cluster.range.start || a.address === last) return `${who} holds reserved ${a.address}`;
      if (!v.ring || ownerOf(v.ring, a.address) !== v.peer) return `${who} holds ${a.address} outside its own space`;
    }
  }
  return undefined;
}
