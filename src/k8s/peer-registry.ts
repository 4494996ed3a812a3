// Which peer runs on which node, kept in the lock object (the Lease kube-system/weave-net, as an
// annotation), and the reclaim decisions taken from it. Pure: the shell (reclaimer.ts) reads the
// Lease, asks nextReclaimStep() what to do, does it, and writes the new registry back with the
// Lease's resourceVersion, so that of two peers acting on one registry only the first write
// lands; the other gets 409, re-reads, and decides again from what the winner wrote.
//
// Reclaim, one victim at a time:
//   1. claim   the victim's entry gets `claimedBy: self` (one optimistic write: exactly one winner)
//   2. rmpeer  the claimer's daemon takes over the victim's ranges (DELETE /peer/<name>)
//   3. remove  the entry goes; claims that the victim itself held become free to take
// A victim is a registered peer whose node is no longer in the API, or an older peer of our own
// node (the node re-joined under the same name with a new machine).
import { isPeerName, type PeerName } from '../net/peer-name.js';

/** The annotation of the Lease holding the registry (Weave kept a ConfigMap with the same idea). */
export const PEERS_ANNOTATION = 'kube-peers.weave.works/peers';

export interface PeerEntry {
  readonly peerName: PeerName;
  readonly nodeName: string;
  /** The peer that won the right to reclaim this one. */
  readonly claimedBy?: PeerName;
}

export type PeerRegistry = readonly PeerEntry[];

export interface Self {
  readonly peerName: PeerName;
  readonly nodeName: string;
}

export type ReclaimStep =
  | { readonly kind: 'register' }
  | { readonly kind: 'claim'; readonly victim: PeerEntry }
  | { readonly kind: 'rmpeer'; readonly victim: PeerEntry }
  | { readonly kind: 'done' };

/** The registry in an annotation value; absent means empty. Throws on a value that is not ours. */
export function parseRegistry(text: string | undefined): PeerRegistry {
  if (text === undefined || text === '') return [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`annotation ${PEERS_ANNOTATION} is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(raw)) throw new Error(`annotation ${PEERS_ANNOTATION} is not a list`);
  return raw.map((e: unknown, i) => {
    const o = e as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o.peerName !== 'string' || !isPeerName(o.peerName) || typeof o.nodeName !== 'string' || o.nodeName === '') {
      throw new Error(`annotation ${PEERS_ANNOTATION}: entry ${i} wants {peerName, nodeName}`);
    }
    if (o.claimedBy !== undefined && (typeof o.claimedBy !== 'string' || !isPeerName(o.claimedBy))) {
      throw new Error(`annotation ${PEERS_ANNOTATION}: entry ${i} has a bad claimedBy`);
    }
    return { peerName: o.peerName as PeerName, nodeName: o.nodeName, ...(o.claimedBy !== undefined ? { claimedBy: o.claimedBy as PeerName } : {}) };
  });
}

/** Sorted by peer name, so that equal registries are equal text. */
export function formatRegistry(registry: PeerRegistry): string {
  return JSON.stringify([...registry].sort((a, b) => (a.peerName < b.peerName ? -1 : a.peerName > b.peerName ? 1 : 0)));
}

/**
 * What to do next, given the registry, the names of the Nodes that exist and ourselves. Victims
 * are taken in name order; one claimed by a live other peer is left to it.
 */
export function nextReclaimStep(registry: PeerRegistry, nodes: ReadonlySet<string>, self: Self): ReclaimStep {
  const mine = registry.find((e) => e.peerName === self.peerName);
  if (!mine || mine.nodeName !== self.nodeName) return { kind: 'register' };
  const alive = (peer: PeerName): boolean => {
    const e = registry.find((x) => x.peerName === peer);
    return e !== undefined && !isVictim(e, nodes, self);
  };
  const victims = registry.filter((e) => isVictim(e, nodes, self)).sort((a, b) => (a.peerName < b.peerName ? -1 : 1));
  for (const v of victims) {
    if (v.claimedBy === self.peerName) return { kind: 'rmpeer', victim: v };
    if (v.claimedBy === undefined || !alive(v.claimedBy)) return { kind: 'claim', victim: v };
  }
  return { kind: 'done' };
}

function isVictim(e: PeerEntry, nodes: ReadonlySet<string>, self: Self): boolean {
  if (e.peerName === self.peerName) return false;
  return !nodes.has(e.nodeName) || e.nodeName === self.nodeName;
}

/** Ourselves in the registry (replacing an entry of ours under another node name). */
export function register(registry: PeerRegistry, self: Self): PeerRegistry {
  return [...registry.filter((e) => e.peerName !== self.peerName), { peerName: self.peerName, nodeName: self.nodeName }];
}

export function claim(registry: PeerRegistry, victim: PeerName, self: PeerName): PeerRegistry {
  return registry.map((e) => (e.peerName === victim ? { peerName: e.peerName, nodeName: e.nodeName, claimedBy: self } : e));
}

/** The victim's entry removed after its ranges were taken over. */
export function remove(registry: PeerRegistry, victim: PeerName): PeerRegistry {
  return registry.filter((e) => e.peerName !== victim);
}

/** The registry after `step` (the write the shell makes); undefined for steps that write nothing first. */
export function applyStep(registry: PeerRegistry, step: ReclaimStep, self: Self): PeerRegistry | undefined {
  switch (step.kind) {
    case 'register': return register(registry, self);
    case 'claim': return claim(registry, step.victim.peerName, self.peerName);
    case 'rmpeer': return remove(registry, step.victim.peerName);
    case 'done': return undefined;
  }
}

/**
 * Before the daemon starts: a peer that was registered here before (it left a marker with its
 * name) and is no longer in the registry was reclaimed by another peer while it was away; its
 * persisted ranges now belong to someone else, so it must start with fresh state.
 */
export function removedWhileAway(registry: PeerRegistry | undefined, markerPeer: string | undefined, self: PeerName): boolean {
  if (registry === undefined || markerPeer !== self) return false;
  return !registry.some((e) => e.peerName === self);
}
