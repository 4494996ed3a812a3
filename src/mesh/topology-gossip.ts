// The topology channel's protocol: a pure state machine that the router shell drives with our
// connection changes, messages from direct neighbours and a timer, and that answers with the
// messages to send. No sockets, no clocks, no randomness of its own.
//
// How news travels:
//  1. A change of our own connections goes to every neighbour at once: a delta (usually one
//     connection more or less) to those that knew us; the full record, with the delta beside it,
//     to new neighbours.
//  2. Whoever learns something new from a flood passes it on to every neighbour except the one it
//     came from, as a delta where it can (flooding, which stops where nothing is new). An update
//     says which version of the sender's record it was flooded under; a receiver holding that
//     version knows exactly whom the sender reached and skips those. In a full mesh that is
//     everyone, so each peer hears a change once instead of once per neighbour. A peer is spared
//     its own record, unless our copy changed incarnation (a restarted peer must hear of its old
//     incarnation, to raise its version beyond it).
//  3. A delta that does not fit our copy (we missed a version) makes us ask its sender for the
//     full record, and we owe that record the flood the delta would have had. Requests in flight
//     are remembered, so each record is asked for once.
//  4. Anti-entropy, for what floods missed: on each tick we probe one random neighbour with a
//     16-byte hash of every (name, uid, version) we hold. A differing hash is echoed once (by then
//     deltas that were merely in flight have landed); only if it still differs are version lists
//     exchanged, and each side pulls what it lacks. New connections start the same exchange (the
//     peer with the lower name probes). News we pulled is not flooded: we probe our neighbours,
//     and those that lack it pull it. Nothing ever ships the whole topology on a timer, and a
//     newcomer connected to many peers fetches each record once, not once per neighbour, and
//     does not send it all on to every neighbour either.
//  5. Peers we can no longer reach over any listed connection are forgotten at once. Until the
//     next tick we remember them as "ghosts": a ghost that comes back into reach (news arrived in
//     an unlucky order) is restored without asking anyone and passed on, and a neighbour with a
//     stale view cannot make us fetch what we just forgot.
import type { PeerName } from '../net/peer-name.js';
import type { Uid } from '../net/uid.js';
import { computeRoutes, type Routes } from './routes.js';
import type { TopologyMessage } from './topology-codec.js';
import {
  applyDeltas,
  bumpSelfBeyond,
  createTopology,
  deltaIsSmaller,
  diffRecords,
  isNewer,
  lostConnections,
  mergeRecords,
  removeUnreachableAmong,
  selfRecord,
  setLocalConnections,
  supersedesSelf,
  topologyHash,
  versionOf,
  type ConnectionSummary,
  type PeerDelta,
  type PeerRecord,
  type PeerVersion,
  type SelfIdentity,
  type Topology,
} from './topology.js';

export interface Outgoing {
  readonly to: PeerName;
  readonly message: TopologyMessage;
}

export interface Step {
  readonly out: readonly Outgoing[];
  /** The topology changed: routes may differ. */
  readonly changed: boolean;
  /** Peers forgotten as unreachable ("Removed unreachable peer name(nick)"). */
  readonly removed: readonly PeerRecord[];
}

const NOTHING: Step = Object.freeze({ out: [], changed: false, removed: [] });

/** A record to pass on, as a delta when the receivers probably hold its predecessor. */
interface News {
  readonly record: PeerRecord;
  readonly delta?: PeerDelta;
  /**
   * Whether the record's owner is spared its own record: yes, unless the incarnation changed in
   * our view. A restarted peer must hear of its old incarnation, to raise its version beyond it.
   */
  readonly spareOwner?: boolean;
}

export class TopologyGossip {
  #topology: Topology;
  #routes: Routes | undefined;
  readonly #random: () => number;
  /** Records asked for and not yet received: the version we know exists, and whom we asked. */
  readonly #pending = new Map<PeerName, { readonly version: number; readonly from: PeerName }>();
  /** Records we must flood once we have them (a flooded delta did not fit our copy). */
  readonly #owed = new Map<PeerName, { readonly version: number; readonly skip: ReadonlySet<PeerName> }>();
  /** Records forgotten, or never kept, as unreachable since the last tick. */
  readonly #ghosts = new Map<PeerName, PeerRecord>();

  constructor(self: SelfIdentity, random: () => number) {
    this.#topology = createTopology(self);
    this.#random = random;
  }

  get topology(): Topology {
    return this.#topology;
  }

  /** Routes of the current topology, computed on first use after each change. */
  get routes(): Routes {
    return (this.#routes ??= computeRoutes(this.#topology));
  }

  /** Our connection set changed; `conns` is all of our current connections. */
  setLocalConnections(conns: readonly ConnectionSummary[]): Step {
    const before = this.#topology;
    const result = setLocalConnections(before, conns);
    if (!result.changed) return NOTHING;
    const oldSelf = selfRecord(before);
    const newSelf = selfRecord(result.topology);
    const gone = new Set(lostConnections(oldSelf, newSelf));
    for (const [name, p] of this.#pending) if (gone.has(p.from)) this.#pending.delete(name);

    const gc = removeUnreachableAmong(result.topology, gone);
    this.#bury(gc.removed);
    const { topology, revived } = this.#revive(gc.topology, [newSelf]);
    this.#set(topology);

    // Our own change goes to every neighbour, and with it what came back from the ghosts.
    const delta = diffRecords(oldSelf, newSelf);
    const knewUs = new Set(oldSelf.connections.map((c) => c.name));
    const extra = revived;
    const useDelta = deltaIsSmaller(delta, newSelf);
    const asDelta = update(extra, [delta], newSelf.version);
    // A new neighbour gets the full record, and the delta too, so that it can pass the change
    // on as a delta to neighbours that knew us.
    const asFull = update([newSelf, ...extra], useDelta ? [delta] : [], newSelf.version);
    const out = newSelf.connections.map((c) => ({
      to: c.name,
      message: useDelta && knewUs.has(c.name) ? asDelta : asFull,
    }));
    return { out, changed: true, removed: gc.removed.filter((r) => before.peers.has(r.name)) };
  }

  /** A direct connection is up: the peer with the lower name starts a sync. */
  neighbourUp(peer: PeerName): Step {
    if (this.#topology.self >= peer) return NOTHING;
    return { out: [{ to: peer, message: this.#probe(false) }], changed: false, removed: [] };
  }

  /** A message from a direct neighbour. */
  onMessage(from: PeerName, m: TopologyMessage): Step {
    switch (m.type) {
      case 'update':
        return this.#onUpdate(from, m.peers, m.deltas, m.senderVersion);
      case 'digest':
        if (m.full || m.versions.length > 0) return this.#onVersions(from, m.versions, m.full);
        return this.#onProbe(from, m.hash, m.reply);
      case 'request':
        return this.#onRequest(from, m.names);
    }
  }

  /** An anti-entropy round: the shell calls this every gossip interval. */
  tick(): Step {
    this.#pending.clear();
    this.#owed.clear();
    this.#ghosts.clear();
    const neighbours = selfRecord(this.#topology).connections;
    if (neighbours.length === 0) return NOTHING;
    const pick = neighbours[Math.min(neighbours.length - 1, Math.floor(this.#random() * neighbours.length))]!;
    return { out: [{ to: pick.name, message: this.#probe(false) }], changed: false, removed: [] };
  }

  // ---- news ----

  #onUpdate(from: PeerName, peers: readonly PeerRecord[], deltas: readonly PeerDelta[], senderVersion: number): Step {
    const before = this.#topology;
    // Ghosts this message speaks of come back into the working copy, so the merge compares
    // against what we knew; the reachability check below then decides again.
    const restored: PeerRecord[] = [];
    if (this.#ghosts.size > 0) {
      for (const n of new Set([...peers.map((r) => r.name), ...deltas.map((d) => d.name)])) {
        const g = this.#ghosts.get(n);
        if (g !== undefined && !before.peers.has(n)) restored.push(g);
      }
    }
    const work = restored.length === 0 ? before : mergeRecords(before, restored).topology;

    const merged = mergeRecords(work, peers);
    const applied = applyDeltas(merged.topology, deltas);
    // Most updates in a flood are old news: nothing to do.
    if (restored.length === 0 && applied.topology === before && applied.needFull.length === 0) return NOTHING;
    const fresh = new Map<PeerName, PeerRecord>();
    for (const r of [...merged.newInfo, ...applied.newInfo]) if (r.name !== before.self) fresh.set(r.name, r);
    const selfBumped = merged.selfBumped || applied.selfBumped;

    // Who may have dropped out of reach: peers that lost a connection, and peers new to us.
    const suspects = new Set<PeerName>(restored.map((g) => g.name));
    for (const r of fresh.values()) {
      const old = work.peers.get(r.name);
      if (old === undefined) suspects.add(r.name);
      for (const n of lostConnections(old, r)) suspects.add(n);
    }
    const gc = removeUnreachableAmong(applied.topology, suspects);
    this.#bury(gc.removed);
    const kept = [...fresh.values()].filter((r) => gc.topology.peers.get(r.name) === r);
    const back = restored.filter((g) => gc.topology.peers.has(g.name) && !fresh.has(g.name));
    for (const r of [...kept, ...back]) this.#ghosts.delete(r.name);
    const { topology, revived } = this.#revive(gc.topology, [...kept, ...back]);
    this.#settle([...kept, ...revived]);
    this.#set(topology);

    // Pass the news on. What was flooded to us we flood on. What we pulled (an answer to our
    // request) we only announce with a probe: a neighbour that lacks it pulls it once, where
    // flooding it would make a newcomer send everything it just fetched to every neighbour.
    const out = selfBumped ? this.#announceSelf() : [];
    const owed = kept.flatMap((r) => this.#payOwed(r));
    if (senderVersion > 0) {
      const received = new Map(deltas.map((d) => [d.name, d]));
      const news = kept.map((r) => {
        const old = work.peers.get(r.name);
        return { record: r, spareOwner: old?.uid === r.uid, ...this.#asDelta(old, r, received.get(r.name)) };
      });
      const senderNow = topology.peers.get(from);
      const covered = senderNow?.version === senderVersion ? senderNow.connections.map((c) => c.name) : [];
      const skip = new Set([from, ...covered]);
      out.push(...this.#flood(news, skip));
      // A delta that did not fit our copy: once we have the full record, we owe it the same flood.
      for (const w of applied.needFull) {
        const o = this.#owed.get(w.name);
        if (o === undefined || o.version < w.version) this.#owed.set(w.name, { version: w.version, skip });
      }
    } else {
      out.push(...owed.flatMap(({ record, skip }) => this.#flood([{ record }], skip)));
      if (kept.length > owed.length) out.push(...this.#probeNeighbours(from));
    }
    // What came back from the ghosts goes to every neighbour: they are likely to have forgotten
    // it too, or never to have had it, and no one else is sending it.
    out.push(...this.#flood([...back, ...revived].map((r) => ({ record: r })), new Set()));
    const request = this.#request(applied.needFull, from);
    if (request !== undefined) out.push(request);

    const removed = gc.removed.filter((r) => before.peers.has(r.name));
    const changed = selfBumped || kept.length > 0 || back.length > 0 || revived.length > 0 || removed.length > 0;
    return { out, changed, removed };
  }

  /**
   * The cheapest faithful form of a record for our neighbours: the delta that came with it (they
   * probably hold its base, as the sender did), else the change from the copy we held, else the
   * full record.
   */
  #asDelta(old: PeerRecord | undefined, r: PeerRecord, received: PeerDelta | undefined): { delta?: PeerDelta } {
    if (received !== undefined && received.uid === r.uid && received.version === r.version) return { delta: received };
    if (old === undefined || old.uid !== r.uid || old.version >= r.version) return {};
    const delta = diffRecords(old, r);
    return deltaIsSmaller(delta, r) ? { delta } : {};
  }

  /** Sends news to every neighbour not in `skip` (sparing owners their own records, see News). */
  #flood(news: readonly News[], skip: ReadonlySet<PeerName>): Outgoing[] {
    if (news.length === 0) return [];
    const own = selfRecord(this.#topology);
    const shared = updateOf(news, own.version);
    const spared = new Set(news.filter((n) => n.spareOwner === true).map((n) => n.record.name));
    const out: Outgoing[] = [];
    for (const c of own.connections) {
      if (skip.has(c.name)) continue;
      if (!spared.has(c.name)) {
        out.push({ to: c.name, message: shared });
      } else if (news.length > 1) {
        out.push({ to: c.name, message: updateOf(news.filter((n) => n.record.name !== c.name), own.version) });
      }
    }
    return out;
  }

  /** The flood we owe for this record, if it is the one we were waiting for. */
  #payOwed(r: PeerRecord): { record: PeerRecord; skip: ReadonlySet<PeerName> }[] {
    const o = this.#owed.get(r.name);
    if (o === undefined || r.version < o.version) return [];
    this.#owed.delete(r.name);
    return [{ record: r, skip: o.skip }];
  }

  /** A probe to every neighbour but one: "compare with me, I have news". */
  #probeNeighbours(except: PeerName): Outgoing[] {
    const message = this.#probe(false);
    return selfRecord(this.#topology)
      .connections.filter((c) => c.name !== except)
      .map((c) => ({ to: c.name, message }));
  }

  /** Our (bumped) record, in full, to every neighbour. */
  #announceSelf(): Outgoing[] {
    const own = selfRecord(this.#topology);
    const message = update([own], [], own.version);
    return own.connections.map((c) => ({ to: c.name, message }));
  }

  // ---- anti-entropy ----

  #probe(reply: boolean): TopologyMessage {
    return { type: 'digest', hash: topologyHash(this.#topology), full: false, reply, versions: [] };
  }

  #onProbe(from: PeerName, hash: Uint8Array, reply: boolean): Step {
    const ours = topologyHash(this.#topology);
    if (Buffer.compare(ours, hash) === 0) return NOTHING;
    // The first difference may be news in flight: echo our hash. A second one is real.
    const message: TopologyMessage = reply
      ? { type: 'digest', hash: ours, full: true, reply: false, versions: [...this.#topology.peers.values()].map(versionOf) }
      : this.#probe(true);
    return { out: [{ to: from, message }], changed: false, removed: [] };
  }

  /**
   * A version list: pull what it has and we lack. When it is the sender's complete list, also
   * tell the sender what we have that it lacks, so that it can pull in turn.
   */
  #onVersions(from: PeerName, versions: readonly PeerVersion[], full: boolean): Step {
    const before = this.#topology;
    const own = selfRecord(before);
    const want: PeerVersion[] = [];
    let bumpTo = 0;
    for (const v of versions) {
      if (v.name === before.self) {
        if (supersedesSelf(own, v)) bumpTo = Math.max(bumpTo, v.version);
        continue;
      }
      const held = before.peers.get(v.name);
      if (held === undefined ? !this.#isGhostAtLeast(v) : isNewer(v, held)) want.push(v);
    }
    const out: Outgoing[] = [];
    if (bumpTo > 0) {
      this.#set(bumpSelfBeyond(before, bumpTo));
      out.push(...this.#announceSelf());
    }
    const request = this.#request(want, from);
    if (request !== undefined) out.push(request);
    if (full) {
      const theirs = new Map(versions.map((v) => [v.name, v]));
      const lacking: PeerVersion[] = [];
      for (const r of this.#topology.peers.values()) {
        const v = theirs.get(r.name);
        if (v === undefined || isNewer(r, v)) lacking.push(versionOf(r));
      }
      if (lacking.length > 0) {
        out.push({ to: from, message: { type: 'digest', hash: topologyHash(this.#topology), full: false, reply: false, versions: lacking } });
      }
    }
    return { out, changed: bumpTo > 0, removed: [] };
  }

  /** Whether we forgot this peer, at this version or later, as unreachable since the last tick. */
  #isGhostAtLeast(v: PeerVersion): boolean {
    const g = this.#ghosts.get(v.name);
    return g !== undefined && !isNewer(v, g);
  }

  #onRequest(from: PeerName, names: readonly PeerName[]): Step {
    const records = names.flatMap((n) => {
      const r = this.#topology.peers.get(n);
      return r === undefined ? [] : [r];
    });
    if (records.length === 0) return NOTHING;
    return { out: [{ to: from, message: update(records, [], 0) }], changed: false, removed: [] };
  }

  /** Asks `from` for the records we lack, except those already asked for at that version. */
  #request(wanted: readonly { name: PeerName; uid: Uid; version: number }[], from: PeerName): Outgoing | undefined {
    const names: PeerName[] = [];
    for (const w of wanted) {
      const p = this.#pending.get(w.name);
      if (p !== undefined && p.version >= w.version) continue;
      this.#pending.set(w.name, { version: w.version, from });
      names.push(w.name);
    }
    return names.length === 0 ? undefined : { to: from, message: { type: 'request', names } };
  }

  /** Requests answered by records we now hold. */
  #settle(records: readonly PeerRecord[]): void {
    if (this.#pending.size === 0) return;
    for (const r of records) {
      const p = this.#pending.get(r.name);
      if (p !== undefined && r.version >= p.version) this.#pending.delete(r.name);
    }
  }

  // ---- forgetting ----

  /** Remembers records that were just dropped as unreachable, until the next tick. */
  #bury(removed: readonly PeerRecord[]): void {
    for (const r of removed) this.#ghosts.set(r.name, r);
  }

  /** Brings back ghosts that `from` (reachable records) and what they bring back connect to. */
  #revive(t: Topology, from: readonly PeerRecord[]): { topology: Topology; revived: PeerRecord[] } {
    if (this.#ghosts.size === 0) return { topology: t, revived: [] };
    const revived: PeerRecord[] = [];
    const queue = [...from];
    for (let i = 0; i < queue.length; i++) {
      for (const c of queue[i]!.connections) {
        const g = this.#ghosts.get(c.name);
        if (g === undefined || t.peers.has(c.name)) continue;
        this.#ghosts.delete(c.name);
        revived.push(g);
        queue.push(g);
      }
    }
    const topology = revived.length === 0 ? t : mergeRecords(t, revived).topology;
    return { topology, revived };
  }

  #set(t: Topology): void {
    if (t !== this.#topology) {
      this.#topology = t;
      this.#routes = undefined;
    }
  }
}

function update(peers: readonly PeerRecord[], deltas: readonly PeerDelta[], senderVersion: number): TopologyMessage {
  return { type: 'update', peers, deltas, senderVersion };
}

function updateOf(news: readonly News[], senderVersion: number): TopologyMessage {
  const peers: PeerRecord[] = [];
  const deltas: PeerDelta[] = [];
  for (const n of news) {
    if (n.delta !== undefined) deltas.push(n.delta);
    else peers.push(n.record);
  }
  return update(peers, deltas, senderVersion);
}
