// Routes over the topology: where to send a unicast next, and whom to pass a broadcast on to.
//
// Both come from breadth-first searches that sort the peers of each level by name, so every peer
// computes the same paths from the same topology: a unicast follows one shortest path, and a
// broadcast follows the source's own BFS tree, reaching each peer exactly once while the
// topology is stable (Weave's rule: we pass a broadcast from S on to those of our neighbours that
// S's search had not reached when it came to us, i.e. our children in S's tree).
//
// Two graphs: `established` uses only connections both ends list as established (the data plane
// needs a working path both ways); `all` follows every connection a peer lists (the control plane
// relays gossip over any live TCP connection). Everything is computed on first use and cached:
// the topology is immutable, so one Routes value stays valid for it.
import type { PeerName } from '../net/peer-name.js';
import type { Topology } from './topology.js';

export interface Routes {
  /** dest -> next hop, over established symmetric connections. */
  readonly unicast: ReadonlyMap<PeerName, PeerName>;
  /** dest -> next hop, over every listed connection (for relaying gossip). */
  readonly unicastAll: ReadonlyMap<PeerName, PeerName>;
  /** Our next hops for a broadcast from `source`, over established symmetric connections. */
  broadcast(source: PeerName): readonly PeerName[];
  /** Our next hops for a broadcast from `source`, over every listed connection. */
  broadcastAll(source: PeerName): readonly PeerName[];
}

type Adjacency = ReadonlyMap<PeerName, readonly PeerName[]>;

/** Every connection a peer lists to a peer we have a record of. */
function allAdjacency(t: Topology): Adjacency {
  const adj = new Map<PeerName, PeerName[]>();
  for (const r of t.peers.values()) {
    adj.set(r.name, r.connections.filter((c) => c.name !== r.name && t.peers.has(c.name)).map((c) => c.name));
  }
  return adj;
}

/** Only connections that both ends list as established. */
function establishedAdjacency(t: Topology): Adjacency {
  const established = new Map<PeerName, Set<PeerName>>();
  for (const r of t.peers.values()) {
    established.set(r.name, new Set(r.connections.filter((c) => c.established).map((c) => c.name)));
  }
  const adj = new Map<PeerName, PeerName[]>();
  for (const [name, remotes] of established) {
    adj.set(name, [...remotes].filter((q) => q !== name && established.get(q)?.has(name) === true));
  }
  return adj;
}

const byName = (a: PeerName, b: PeerName): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * BFS from `from`, level by level with each level sorted by name. With `stopAt`, returns the
 * peers `stopAt` discovers when its turn comes (its children in `from`'s tree), or [] if never
 * reached; without, returns dest -> first hop.
 */
function search(adj: Adjacency, from: PeerName, stopAt: PeerName): PeerName[];
function search(adj: Adjacency, from: PeerName): Map<PeerName, PeerName>;
function search(adj: Adjacency, from: PeerName, stopAt?: PeerName): PeerName[] | Map<PeerName, PeerName> {
  const hop = new Map<PeerName, PeerName>();
  const reached = new Set<PeerName>([from]);
  if (!adj.has(from)) return stopAt === undefined ? hop : [];
  let level: PeerName[] = [from];
  while (level.length > 0) {
    level.sort(byName);
    const next: PeerName[] = [];
    for (const cur of level) {
      const found: PeerName[] = [];
      for (const q of adj.get(cur) ?? []) {
        if (reached.has(q)) continue;
        reached.add(q);
        found.push(q);
        hop.set(q, cur === from ? q : hop.get(cur)!);
      }
      if (cur === stopAt) return found.sort(byName);
      next.push(...found);
    }
    level = next;
  }
  return stopAt === undefined ? hop : [];
}

class LazyRoutes implements Routes {
  #established?: Adjacency;
  #all?: Adjacency;
  #unicast?: Map<PeerName, PeerName>;
  #unicastAll?: Map<PeerName, PeerName>;
  readonly #broadcast = new Map<PeerName, readonly PeerName[]>();
  readonly #broadcastAll = new Map<PeerName, readonly PeerName[]>();

  constructor(private readonly topology: Topology) {}

  private get established(): Adjacency {
    return (this.#established ??= establishedAdjacency(this.topology));
  }

  private get all(): Adjacency {
    return (this.#all ??= allAdjacency(this.topology));
  }

  get unicast(): ReadonlyMap<PeerName, PeerName> {
    return (this.#unicast ??= search(this.established, this.topology.self));
  }

  get unicastAll(): ReadonlyMap<PeerName, PeerName> {
    return (this.#unicastAll ??= search(this.all, this.topology.self));
  }

  broadcast(source: PeerName): readonly PeerName[] {
    return cached(this.#broadcast, source, () => search(this.established, source, this.topology.self));
  }

  broadcastAll(source: PeerName): readonly PeerName[] {
    return cached(this.#broadcastAll, source, () => search(this.all, source, this.topology.self));
  }
}

function cached(cache: Map<PeerName, readonly PeerName[]>, source: PeerName, compute: () => PeerName[]): readonly PeerName[] {
  let hops = cache.get(source);
  if (hops === undefined) {
    hops = Object.freeze(compute());
    cache.set(source, hops);
  }
  return hops;
}

/** The routes of `t`'s own peer. Cheap to call: each table is computed when first asked for. */
export function computeRoutes(t: Topology): Routes {
  return new LazyRoutes(t);
}
