// The topology: what this peer knows of every peer of the mesh and of each one's connections.
//
// Every peer owns one record, the list of its own connections, and only the owner changes it;
// every change raises the record's version. A copy is replaced only by a newer one (higher
// version, or the same version and a higher uid), so merging is order-independent and every peer
// ends with the owners' latest records. All values here are immutable: functions return new ones
// and share everything that did not change.
import { createHash } from 'node:crypto';
import { peerNameToNumber, type PeerName } from '../net/peer-name.js';
import type { Uid } from '../net/uid.js';

export interface ConnectionSummary {
  readonly name: PeerName;
  readonly address: string;
  readonly outbound: boolean;
  readonly established: boolean;
}

export interface PeerRecord {
  readonly name: PeerName;
  readonly nickname: string;
  readonly uid: Uid;
  readonly version: number;
  readonly shortId: number;
  /** Sorted by name, at most one per peer, never to the owner itself. */
  readonly connections: readonly ConnectionSummary[];
}

/** Always contains the record of `self`. */
export interface Topology {
  readonly self: PeerName;
  readonly peers: ReadonlyMap<PeerName, PeerRecord>;
}

export interface SelfIdentity {
  readonly name: PeerName;
  readonly nickname: string;
  readonly uid: Uid;
  readonly shortId: number;
}

/** Which incarnation and version of a record someone holds. */
export interface PeerVersion {
  readonly name: PeerName;
  readonly uid: Uid;
  readonly version: number;
}

/**
 * The change from `fromVersion` to `version` of one record. It applies only to a copy at exactly
 * (uid, fromVersion): a copy at any other version might miss an intermediate change.
 */
export interface PeerDelta {
  readonly name: PeerName;
  readonly uid: Uid;
  readonly fromVersion: number;
  readonly version: number;
  readonly nickname: string;
  readonly shortId: number;
  /** Connections added or changed, sorted by name. */
  readonly upserts: readonly ConnectionSummary[];
  /** Peers no longer connected. */
  readonly removes: readonly PeerName[];
}

export function createTopology(self: SelfIdentity): Topology {
  const record: PeerRecord = { ...self, version: 1, connections: [] };
  return { self: self.name, peers: new Map([[self.name, record]]) };
}

export function selfRecord(t: Topology): PeerRecord {
  const r = t.peers.get(t.self);
  if (r === undefined) throw new Error('topology without its own record');
  return r;
}

/** The merge order: a higher version wins, then a higher uid (a restarted peer's records). */
export function isNewer(a: { version: number; uid: Uid }, b: { version: number; uid: Uid }): boolean {
  return a.version > b.version || (a.version === b.version && a.uid > b.uid);
}

/** Sorted by name, one per peer (an established one wins over one still being set up). */
export function canonicalConnections(self: PeerName, conns: readonly ConnectionSummary[]): ConnectionSummary[] {
  const byName = new Map<PeerName, ConnectionSummary>();
  for (const c of conns) {
    if (c.name === self) continue;
    const prev = byName.get(c.name);
    if (prev === undefined || (!prev.established && c.established)) byName.set(c.name, c);
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function sameConnection(a: ConnectionSummary, b: ConnectionSummary): boolean {
  return a.name === b.name && a.address === b.address && a.outbound === b.outbound && a.established === b.established;
}

function sameConnections(a: readonly ConnectionSummary[], b: readonly ConnectionSummary[]): boolean {
  return a.length === b.length && a.every((c, i) => sameConnection(c, b[i]!));
}

function withPeers(t: Topology, changes: ReadonlyMap<PeerName, PeerRecord | undefined>): Topology {
  if (changes.size === 0) return t;
  const peers = new Map(t.peers);
  for (const [name, r] of changes) {
    if (r === undefined) peers.delete(name);
    else peers.set(name, r);
  }
  return { self: t.self, peers };
}

/** Replaces our own connections; our version goes up only when something differs. */
export function setLocalConnections(t: Topology, conns: readonly ConnectionSummary[]): { topology: Topology; changed: boolean } {
  const own = selfRecord(t);
  const connections = canonicalConnections(t.self, conns);
  if (sameConnections(own.connections, connections)) return { topology: t, changed: false };
  const record: PeerRecord = { ...own, version: own.version + 1, connections };
  return { topology: withPeers(t, new Map([[t.self, record]])), changed: true };
}

/**
 * Whether news about our own name means that an old incarnation of us (another uid), or a record
 * we somehow never made, is out there at a version ours does not beat.
 */
export function supersedesSelf(own: PeerRecord, incoming: { uid: Uid; version: number }): boolean {
  return incoming.uid === own.uid ? incoming.version > own.version : incoming.version >= own.version;
}

/** Raises our version beyond `version`, so that our record wins over an old incarnation's. */
export function bumpSelfBeyond(t: Topology, version: number): Topology {
  const own = selfRecord(t);
  if (own.version > version) return t;
  return withPeers(t, new Map([[t.self, { ...own, version: version + 1 }]]));
}

export interface MergeResult {
  readonly topology: Topology;
  /** Records that were stored (ours too, when it was bumped). */
  readonly newInfo: PeerRecord[];
  readonly selfBumped: boolean;
}

/**
 * Stores every incoming record newer than our copy. A record about an old incarnation of
 * ourselves is not stored: our own version is raised beyond it instead, so our record wins
 * everywhere. Peers named only inside connection lists are not added.
 */
export function mergeRecords(t: Topology, incoming: readonly PeerRecord[]): MergeResult {
  const changes = new Map<PeerName, PeerRecord>();
  let bumpTo = 0;
  const own = selfRecord(t);
  for (const r of incoming) {
    if (r.name === t.self) {
      if (supersedesSelf(own, r)) bumpTo = Math.max(bumpTo, r.version);
      continue;
    }
    const held = changes.get(r.name) ?? t.peers.get(r.name);
    if (held === undefined || isNewer(r, held)) changes.set(r.name, r);
  }
  return finishMerge(t, changes, bumpTo);
}

function finishMerge(t: Topology, changes: Map<PeerName, PeerRecord>, bumpTo: number): MergeResult {
  let topology = withPeers(t, changes);
  const newInfo = [...changes.values()];
  if (bumpTo > 0) {
    topology = bumpSelfBeyond(topology, bumpTo);
    newInfo.push(selfRecord(topology));
  }
  return { topology, newInfo, selfBumped: bumpTo > 0 };
}

export interface DeltaResult extends MergeResult {
  /** Deltas we could not apply because our copy is missing or at another version. */
  readonly needFull: PeerVersion[];
  /** The delta that produced each stored record, by name. */
  readonly applied: ReadonlyMap<PeerName, PeerDelta>;
}

/** Applies every delta that fits our copy; reports the ones newer than our copy that do not. */
export function applyDeltas(t: Topology, deltas: readonly PeerDelta[]): DeltaResult {
  const changes = new Map<PeerName, PeerRecord>();
  const applied = new Map<PeerName, PeerDelta>();
  const needFull = new Map<PeerName, PeerVersion>();
  let bumpTo = 0;
  const own = selfRecord(t);
  for (const d of deltas) {
    if (d.name === t.self) {
      if (supersedesSelf(own, d)) bumpTo = Math.max(bumpTo, d.version);
      continue;
    }
    const held = changes.get(d.name) ?? t.peers.get(d.name);
    if (held !== undefined && held.uid === d.uid && held.version === d.fromVersion) {
      changes.set(d.name, applyDelta(held, d));
      applied.set(d.name, d);
      needFull.delete(d.name);
    } else if (held === undefined || isNewer(d, held)) {
      const prev = needFull.get(d.name);
      if (prev === undefined || isNewer(d, prev)) needFull.set(d.name, { name: d.name, uid: d.uid, version: d.version });
    }
  }
  // A later delta in the same batch may have caught up with one we could not apply.
  for (const [name, want] of needFull) {
    const held = changes.get(name);
    if (held !== undefined && !isNewer(want, held)) needFull.delete(name);
  }
  return { ...finishMerge(t, changes, bumpTo), needFull: [...needFull.values()], applied };
}

// Many simulated peers apply the same delta object to the same base record; sharing the result
// keeps a 1,000-peer simulation within memory. For a single peer it is a cache of a pure function.
const deltaResults = new WeakMap<PeerDelta, { base: PeerRecord; result: PeerRecord }>();

/** The record `d` makes of `base` (which must be at d.uid and d.fromVersion). */
export function applyDelta(base: PeerRecord, d: PeerDelta): PeerRecord {
  const memo = deltaResults.get(d);
  if (memo !== undefined && memo.base === base) return memo.result;
  const drop = new Set<PeerName>(d.removes);
  for (const c of d.upserts) drop.add(c.name);
  const kept = base.connections.filter((c) => !drop.has(c.name));
  const result: PeerRecord = {
    name: base.name,
    nickname: d.nickname,
    uid: base.uid,
    version: d.version,
    shortId: d.shortId,
    connections: canonicalConnections(base.name, [...kept, ...d.upserts]),
  };
  deltaResults.set(d, { base, result });
  return result;
}

/** The delta from `from` to `to`, two versions of one incarnation's record. */
export function diffRecords(from: PeerRecord, to: PeerRecord): PeerDelta {
  const before = new Map(from.connections.map((c) => [c.name, c]));
  const upserts: ConnectionSummary[] = [];
  for (const c of to.connections) {
    const prev = before.get(c.name);
    if (prev === undefined || !sameConnection(prev, c)) upserts.push(c);
    before.delete(c.name);
  }
  return {
    name: to.name,
    uid: to.uid,
    fromVersion: from.version,
    version: to.version,
    nickname: to.nickname,
    shortId: to.shortId,
    upserts,
    removes: [...before.keys()],
  };
}

/** Whether a delta says less than the full record it leads to. */
export function deltaIsSmaller(d: PeerDelta, to: PeerRecord): boolean {
  return d.upserts.length + d.removes.length < to.connections.length;
}

// ---- reachability ----

/**
 * Breadth-first search from ourselves over every connection a reached peer lists (whatever its
 * state), as Weave decides who is still part of the mesh. With `lookFor`, it stops as soon as all
 * of those peers are reached and returns undefined; otherwise it returns every reached peer.
 */
function reach(t: Topology, lookFor?: ReadonlySet<PeerName>): Set<PeerName> | undefined {
  const reached = new Set<PeerName>([t.self]);
  let missing = lookFor === undefined ? -1 : [...lookFor].filter((n) => n !== t.self).length;
  if (missing === 0) return undefined;
  const queue: PeerName[] = [t.self];
  for (let i = 0; i < queue.length; i++) {
    const r = t.peers.get(queue[i]!);
    if (r === undefined) continue;
    for (const c of r.connections) {
      if (reached.has(c.name) || !t.peers.has(c.name)) continue;
      reached.add(c.name);
      queue.push(c.name);
      if (lookFor?.has(c.name) && --missing === 0) return undefined;
    }
  }
  return reached;
}

function dropUnreached(t: Topology, reached: ReadonlySet<PeerName>): { topology: Topology; removed: PeerRecord[] } {
  const removed = [...t.peers.values()].filter((r) => !reached.has(r.name));
  return {
    topology: withPeers(t, new Map(removed.map((r) => [r.name, undefined]))),
    removed,
  };
}

/** Forgets every peer we cannot reach over any listed connection. */
export function removeUnreachable(t: Topology): { topology: Topology; removed: PeerRecord[] } {
  return dropUnreached(t, reach(t)!);
}

const listedNames = new WeakMap<PeerRecord, ReadonlySet<PeerName>>();

/** The peers a record lists, as a set (cached: records are immutable and widely shared). */
function listed(r: PeerRecord): ReadonlySet<PeerName> {
  let names = listedNames.get(r);
  if (names === undefined) {
    names = new Set(r.connections.map((c) => c.name));
    listedNames.set(r, names);
  }
  return names;
}

/**
 * The same, cheaply, when only `suspects` can have become unreachable (peers that lost a
 * connection or just arrived). A suspect listed by ourselves, by a direct neighbour, or by a peer
 * one of those lists, is reachable: that settles almost every case in a well-connected mesh at
 * the cost of a few set lookups. For the rest, a search from ourselves stops as soon as it has
 * reached them all.
 */
export function removeUnreachableAmong(
  t: Topology,
  suspects: ReadonlySet<PeerName>,
): { topology: Topology; removed: PeerRecord[] } {
  if (suspects.size === 0) return { topology: t, removed: [] };
  const own = selfRecord(t);
  /** Listed by us or by a peer we list (which is reachable because we list it). */
  const nearby = (n: PeerName): boolean => {
    if (listed(own).has(n)) return true;
    for (const c of own.connections) {
      const r = t.peers.get(c.name);
      if (r !== undefined && listed(r).has(n)) return true;
    }
    return false;
  };
  /** Listed by a peer that is itself nearby (a scan of every record: one set lookup each). */
  const twoAway = (n: PeerName): boolean => {
    for (const r of t.peers.values()) if (r.name !== n && listed(r).has(n) && nearby(r.name)) return true;
    return false;
  };
  const present = [...suspects].filter((n) => n !== t.self && t.peers.has(n));
  // Many suspects (a newcomer learning the whole mesh): one search beats many scans.
  const open = new Set(present.length > 8 ? present : present.filter((n) => !nearby(n) && !twoAway(n)));
  if (open.size === 0) return { topology: t, removed: [] };
  const reached = reach(t, open);
  return reached === undefined ? { topology: t, removed: [] } : dropUnreached(t, reached);
}

/** The names of peers that lost a connection between two versions of a record. */
export function lostConnections(from: PeerRecord | undefined, to: PeerRecord): PeerName[] {
  if (from === undefined) return [];
  const now = new Set(to.connections.map((c) => c.name));
  return from.connections.filter((c) => !now.has(c.name)).map((c) => c.name);
}

// ---- digests ----

const recordHashes = new WeakMap<PeerRecord, Uint32Array>();
const topologyHashes = new WeakMap<Topology, Uint8Array>();

function recordHash(r: PeerRecord): Uint32Array {
  let h = recordHashes.get(r);
  if (h === undefined) {
    const input = Buffer.alloc(22);
    input.writeUIntBE(peerNameToNumber(r.name), 0, 6);
    input.writeBigUInt64BE(BigInt.asUintN(64, r.uid), 6);
    input.writeBigUInt64BE(BigInt(r.version), 14);
    const d = createHash('sha256').update(input).digest();
    h = new Uint32Array([d.readUInt32BE(0), d.readUInt32BE(4), d.readUInt32BE(8), d.readUInt32BE(12)]);
    recordHashes.set(r, h);
  }
  return h;
}

export const TOPOLOGY_HASH_BYTES = 16;

/**
 * A 16-byte hash of the set of (name, uid, version) we hold: the XOR of a SHA-256 prefix of each.
 * Equal hashes mean equal topologies (records with one name, uid and version are equal, since
 * only their owner makes them).
 */
export function topologyHash(t: Topology): Uint8Array {
  let out = topologyHashes.get(t);
  if (out === undefined) {
    const acc = new Uint32Array(4);
    for (const r of t.peers.values()) {
      const h = recordHash(r);
      for (let i = 0; i < 4; i++) acc[i]! ^= h[i]!;
    }
    const b = Buffer.alloc(TOPOLOGY_HASH_BYTES);
    for (let i = 0; i < 4; i++) b.writeUInt32BE(acc[i]!, i * 4);
    out = new Uint8Array(b);
    topologyHashes.set(t, out);
  }
  return out;
}

export function versionOf(r: PeerRecord): PeerVersion {
  return { name: r.name, uid: r.uid, version: r.version };
}
