// The IPAM shell: runs the pure allocator (allocator.ts) on the mesh's "ipam" gossip channel,
// with the state on disk (state-store.ts) and a clock.
//
// Every call into the core returns a Step. Steps are applied in order: first the state is made
// durable (when the step changed it), then messages go out and waiting requests are answered,
// so nothing is acknowledged that a kill -9 could take back. Steps that pile up while a write is
// under way share the next write.
import type { Logger } from '../log/logger.js';
import type { PeerName } from '../net/peer-name.js';
import { formatIpv4, formatAddressInRange, formatCidr, cidrSize, parseIpv4, type Cidr } from '../net/ipv4.js';
import type { GossipChannel, GossipHandler } from '../mesh/gossip-channel.js';
import { Ipam, formatTakeover, type IpamConfig, type IpamEvent, type Reply, type Step } from './allocator.js';
import { encodeIpamMessage, decodeIpamMessage } from './codec.js';
import type { Outgoing } from './messages.js';
import { parseState, stateToText, type IpamPersistentState } from './state-format.js';
import { applyJournal, diffAllocations, encodeJournalEntry } from './journal.js';
import { StateStore } from './state-store.js';
import { ringEntries, ownedCounts, type Ring } from './ring.js';
import { ipamServiceLines, renderIpamRanges } from './status.js';

export const IPAM_CHANNEL = 'ipam';

/** The answer to an API request: a value, or an HTTP status and a one-line message. */
export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly status: number; readonly error: string };

export interface IpamServiceOptions {
  readonly config: IpamConfig;
  readonly statePath: string;
  readonly log: Logger;
  /** How long a request may wait for consensus or space before it fails with the status. */
  readonly requestTimeoutMs: number;
  readonly tickMs?: number;
  readonly gossipIntervalMs: number;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** What the mesh tells us about peers. */
export interface PeerDirectory {
  nickname(peer: PeerName): string | undefined;
  /** Finds a peer by name or nickname. */
  resolve(nameOrNickname: string): PeerName | undefined;
}

type Waiter = (reply: Reply) => void;

/** Numbers for the metrics endpoint. */
export interface IpamCounts {
  readonly allocated: number;
  readonly rangeSize: number;
  readonly pendingAllocates: number;
  readonly pendingClaims: number;
  /** Peers owning part of the ring that we cannot reach, and their share of the range. */
  readonly unreachablePeers: number;
  readonly unreachablePercentage: number;
}

/** A new snapshot replaces the journal after this many lines. */
const JOURNAL_LIMIT = 1000;

/** What is on disk, to decide between a journal line and a new snapshot. */
interface Persisted {
  readonly ring: IpamPersistentState['ring'];
  readonly claims: IpamPersistentState['claims'];
  allocations: ReadonlyMap<string, number>;
  journalLines: number;
}

export class IpamService implements GossipHandler {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly store: StateStore;
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly queue: Step[] = [];
  private flushing = false;
  private channel?: GossipChannel;
  private directory?: PeerDirectory;
  private reachable = new Set<PeerName>();
  private timers: NodeJS.Timeout[] = [];
  private persisted?: Persisted;
  /** The status last logged: every change of it gets one line, with what caused it. */
  private loggedStatus?: string;
  /** The ring and our share of it when last logged: a change of our share gets one line. */
  private loggedRing?: Ring;
  private loggedOwned = 0;

  private constructor(private readonly ipam: Ipam, private readonly options: IpamServiceOptions, store: StateStore) {
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.store = store;
  }

  /**
   * Loads the persisted state (setting aside, with a log line, a file of another peer or range
   * or one that does not parse) and makes the service. Nothing is sent until `attach`.
   */
  static async open(options: IpamServiceOptions): Promise<IpamService> {
    const log = options.log;
    const store = new StateStore(options.statePath);
    const { self, range } = options.config;
    let ipam: Ipam | undefined;
    const loaded = await store.load();
    if (loaded.kind === 'found') {
      const parsed = parseLoaded(loaded.text, loaded.journal, self, range);
      if (parsed.ok) {
        ipam = Ipam.restore(options.config, parsed.state);
        log.info({ path: store.path, allocations: parsed.state.allocations.length, ring: parsed.state.ring !== undefined }, 'IPAM state restored');
      } else {
        const aside = await store.setAside(parsed.reason);
        log.warn({ path: store.path, movedTo: aside, reason: parsed.reason }, `IPAM state set aside, starting afresh: ${parsed.message}`);
      }
    }
    ipam ??= Ipam.create(options.config);
    const service = new IpamService(ipam, options, store);
    // A fresh snapshot (a seeded ring exists from the start): durable before anything is handed out.
    await service.persist();
    return service;
  }

  /** Joins the mesh: starts gossiping, ticking, and (unless an observer) asks for the ring. */
  attach(channel: GossipChannel, directory: PeerDirectory): void {
    this.channel = channel;
    this.directory = directory;
    const tickMs = this.options.tickMs ?? 1000;
    this.timers.push(setInterval(() => this.apply(this.ipam.tick(this.now()), 'timer'), tickMs));
    this.timers.push(setInterval(() => this.gossipToRandomNeighbour(), this.options.gossipIntervalMs));
    for (const t of this.timers) t.unref();
    this.noteStatus('start');
    this.apply(this.ipam.prime(this.now()), 'start');
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** The mesh's reachable peers changed. */
  setReachable(peers: ReadonlySet<PeerName>): void {
    const same = peers.size === this.reachable.size && [...peers].every((p) => this.reachable.has(p));
    if (same) return;
    this.reachable = new Set(peers);
    this.apply(this.ipam.setReachable(peers, this.now()), `reachable peers changed (${peers.size} reachable)`);
  }

  // ---- requests (the HTTP API) ----

  async allocate(id: string): Promise<Result<string>> {
    const reply = await this.request(`allocate:${id}`, () => this.ipam.allocate(id, this.now(), this.now() + this.options.requestTimeoutMs));
    if (reply.kind !== 'allocate') throw new Error('mismatched reply');
    return reply.ok ? { ok: true, value: formatAddressInRange(reply.address, this.ipam.range) } : { ok: false, status: 503, error: reply.error };
  }

  async claim(id: string, addressText: string): Promise<Result<undefined>> {
    let address: number;
    try {
      address = parseIpv4(addressText.replace(/\/\d+$/, ''));
    } catch (err) {
      return { ok: false, status: 400, error: (err as Error).message };
    }
    const reply = await this.request(`claim:${id}`, () => this.ipam.claim(id, address, this.now(), this.now() + this.options.requestTimeoutMs));
    if (reply.kind !== 'claim') throw new Error('mismatched reply');
    return reply.ok ? { ok: true, value: undefined } : { ok: false, status: 409, error: reply.error };
  }

  async release(id: string): Promise<Result<undefined>> {
    const reply = await this.request(`release:${id}`, () => this.ipam.release(id, this.now()));
    if (reply.kind !== 'release') throw new Error('mismatched reply');
    return reply.ok ? { ok: true, value: undefined } : { ok: false, status: 404, error: reply.error };
  }

  lookup(id: string): string | undefined {
    const address = this.ipam.lookup(id);
    return address === undefined ? undefined : formatAddressInRange(address, this.ipam.range);
  }

  owned(): { containerid: string; addrs: string[] }[] {
    return this.ipam.allocations().map((a) => ({ containerid: a.id, addrs: [formatAddressInRange(a.address, this.ipam.range)] }));
  }

  /** `weave rmpeer`: takes over a dead peer's ranges. */
  async rmpeer(nameOrNickname: string): Promise<Result<string>> {
    const peer = this.directory?.resolve(nameOrNickname);
    if (peer === undefined) return { ok: false, status: 404, error: `unknown peer ${nameOrNickname}` };
    const reply = await this.request(`rmpeer:${peer}`, () => this.ipam.rmpeer(peer, this.now()));
    if (reply.kind !== 'rmpeer') throw new Error('mismatched reply');
    if (!reply.ok) return { ok: false, status: 409, error: reply.error };
    const label = this.directory?.nickname(peer) ?? peer;
    return { ok: true, value: formatTakeover(reply.addresses, label) };
  }

  /**
   * `weave reset`: hands every range of ours to a live peer (the allocator picks the heir), waits
   * until that is on disk and broadcast, then refuses everything. Waiting requests fail.
   */
  async shutdown(): Promise<{ heir: PeerName | undefined; heirLabel: string; addresses: number }> {
    const reply = await this.request('shutdown', () => this.ipam.shutdown());
    if (reply.kind !== 'shutdown') throw new Error('mismatched reply');
    const label = reply.heir === undefined ? 'nobody' : `${reply.heir}(${this.directory?.nickname(reply.heir) ?? ''})`;
    this.log.info({ heir: reply.heir, addresses: reply.addresses, reason: 'weave reset' }, `IPAM shut down: ${reply.addresses} IPs handed to ${label}`);
    return { heir: reply.heir, heirLabel: label, addresses: reply.addresses };
  }

  /** Deletes the state files (after shutdown); returns the paths removed. */
  async removeState(): Promise<string[]> {
    this.stop();
    while (this.flushing) await new Promise((r) => setTimeout(r, 10));
    return this.store.remove();
  }

  /** The path of the state file, for messages. */
  get statePath(): string {
    return this.store.path;
  }

  // ---- status (snapshots only: never waits) ----

  /** The allocator's `Status:` value ("ready", "awaiting consensus ...", ...). */
  status(): string {
    return this.ipam.status();
  }

  serviceLines(): string[] {
    return ipamServiceLines(this.ipam.status(), this.ipam.range);
  }

  rangesText(): string {
    const snapshot = this.ipam.snapshot();
    return renderIpamRanges(
      { self: snapshot.self, ring: snapshot.ring, activeIps: snapshot.allocations.length },
      (p) => this.directory?.nickname(p) ?? '',
      (p) => p === snapshot.self || this.reachable.has(p),
    );
  }

  /** The IPAM part of `weave report`, in Weave's shape. */
  report(): Record<string, unknown> {
    const s = this.ipam.snapshot();
    return {
      Paxos: s.consensus.active ? { Elector: s.consensus.voter, KnownNodes: s.consensus.known, Quorum: s.consensus.quorum } : null,
      Range: formatCidr(s.range),
      RangeNumIPs: cidrSize(s.range),
      ActiveIPs: s.allocations.length,
      DefaultSubnet: formatCidr(s.range),
      Status: s.status,
      Entries: s.ring
        ? ringEntries(s.ring).map((e) => ({
            Token: formatIpv4(e.start),
            Size: e.end - e.start,
            Peer: e.owner,
            Nickname: this.directory?.nickname(e.owner) ?? '',
            IsKnownPeer: e.owner === s.self || this.reachable.has(e.owner),
            Version: e.version,
          }))
        : [],
      PendingClaims: s.pendingClaims.map((c) => ({ Ident: c.id, CIDR: formatAddressInRange(c.address, s.range) })),
      PendingAllocates: s.pendingAllocates,
    };
  }

  /** Allocations and ownership for metrics. */
  counts(): IpamCounts {
    const s = this.ipam.snapshot();
    const unreachable = new Map<PeerName, number>();
    if (s.ring) {
      for (const e of ringEntries(s.ring)) {
        if (e.owner !== s.self && !this.reachable.has(e.owner)) unreachable.set(e.owner, (unreachable.get(e.owner) ?? 0) + e.end - e.start);
      }
    }
    const unreachableAddresses = [...unreachable.values()].reduce((a, b) => a + b, 0);
    return {
      allocated: s.allocations.length,
      rangeSize: cidrSize(s.range),
      pendingAllocates: s.pendingAllocates.length,
      pendingClaims: s.pendingClaims.length,
      unreachablePeers: unreachable.size,
      unreachablePercentage: (100 * unreachableAddresses) / cidrSize(s.range),
    };
  }

  get range(): Cidr {
    return this.ipam.range;
  }

  // ---- the gossip channel ----

  onGossip(from: PeerName, payload: Uint8Array): void {
    this.receive(from, payload);
  }

  onBroadcast(src: PeerName, payload: Uint8Array): void {
    this.receive(src, payload);
  }

  onUnicast(src: PeerName, payload: Uint8Array): void {
    this.receive(src, payload);
  }

  onNeighbourUp(peer: PeerName): void {
    const g = this.ipam.gossip();
    if (g) this.channel?.sendToNeighbour(peer, encodeIpamMessage(g));
  }

  private receive(from: PeerName, payload: Uint8Array): void {
    const decoded = decodeIpamMessage(payload);
    if (!decoded.ok) {
      // IPAM content never closes a connection: the topology and the data path stay up.
      this.log.warn({ peer: from, reason: decoded.error }, 'dropped a malformed IPAM message');
      return;
    }
    this.apply(this.ipam.onMessage(from, decoded.message, this.now()), `message from ${from}`);
  }

  private gossipToRandomNeighbour(): void {
    const neighbours = this.channel?.neighbours() ?? [];
    const g = this.ipam.gossip();
    if (neighbours.length === 0 || !g) return;
    const pick = neighbours[Math.floor(this.random() * neighbours.length)]!;
    this.channel?.sendToNeighbour(pick, encodeIpamMessage(g));
  }

  // ---- steps ----

  private request(key: string, call: () => Step): Promise<Reply> {
    return new Promise((resolve) => {
      const list = this.waiters.get(key) ?? [];
      list.push(resolve);
      this.waiters.set(key, list);
      this.apply(call(), `request ${key}`);
    });
  }

  private apply(step: Step, why: string): void {
    this.noteStatus(why);
    this.noteOwnership(why);
    if (step.out.length === 0 && step.replies.length === 0 && step.events.length === 0 && !step.persist) return;
    this.queue.push(step);
    void this.flush();
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        let failure: string | undefined;
        if (batch.some((s) => s.persist)) {
          try {
            await this.persist();
          } catch (err) {
            failure = `cannot save the IPAM state to ${this.store.path}: ${(err as Error).message}`;
            this.log.error({ err }, failure);
          }
        }
        for (const step of batch) {
          for (const e of step.events) this.logEvent(e);
          if (failure === undefined) for (const o of step.out) this.send(o);
          for (const r of step.replies) this.answer(r, failure);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Logs the IPAM status once each time it changes (idle, awaiting consensus, ready, ...). */
  private noteStatus(why: string): void {
    const status = this.ipam.status();
    if (status === this.loggedStatus) return;
    const was = this.loggedStatus;
    this.loggedStatus = status;
    this.log.info({ status, was, reason: why }, `IPAM status: ${status}${was === undefined ? '' : ` (was: ${was}; after ${why})`}`);
  }

  /** Logs our share of the range once each time it changes (division, donation, takeover, an heir's gift). */
  private noteOwnership(why: string): void {
    const ring = this.ipam.ring;
    if (ring === this.loggedRing) return;
    this.loggedRing = ring;
    const owned = ring ? ownedCounts(ring).get(this.options.config.self) ?? 0 : 0;
    if (owned === this.loggedOwned) return;
    const was = this.loggedOwned;
    this.loggedOwned = owned;
    this.log.info({ owned, was, reason: why }, `this peer now owns ${owned} IPs (was ${was}; after ${why})`);
  }

  /** Makes the current state durable: a journal line when only allocations changed, else a snapshot. */
  private async persist(): Promise<void> {
    const state = this.ipam.persistentState();
    const p = this.persisted;
    if (p && p.ring === state.ring && p.claims === state.claims && p.journalLines < JOURNAL_LIMIT) {
      const entry = diffAllocations(p.allocations, state.allocations);
      if (entry === undefined) return;
      await this.store.append(encodeJournalEntry(entry));
      p.allocations = new Map(state.allocations.map((a) => [a.id, a.address]));
      p.journalLines++;
      return;
    }
    await this.store.save(() => stateToText(state));
    this.persisted = {
      ring: state.ring,
      claims: state.claims,
      allocations: new Map(state.allocations.map((a) => [a.id, a.address])),
      journalLines: 0,
    };
  }

  private send(o: Outgoing): void {
    const payload = encodeIpamMessage(o.message);
    if ('broadcast' in o) this.channel?.broadcast(payload);
    else this.channel?.unicast(o.to, payload);
  }

  private answer(reply: Reply, failure: string | undefined): void {
    const key = reply.kind === 'rmpeer' ? `rmpeer:${reply.peer}` : reply.kind === 'shutdown' ? 'shutdown' : `${reply.kind}:${reply.id}`;
    const list = this.waiters.get(key);
    if (!list) return;
    this.waiters.delete(key);
    // Not durable, so not acknowledged: the caller sees the error and may retry.
    const final: Reply = failure !== undefined && reply.kind !== 'shutdown' && reply.ok
      ? { ...reply, ok: false, error: failure } as Reply
      : reply;
    for (const w of list) w(final);
    // Per decision, never per packet: what each request got.
    if (this.log.isLevelEnabled('debug')) this.log.debug({ request: key, reply: describeReply(final) }, `IPAM ${key}: ${describeReply(final)}`);
  }

  private logEvent(e: IpamEvent): void {
    const nick = (p: PeerName): string => `${p}(${this.directory?.nickname(p) ?? ''})`;
    switch (e.kind) {
      case 'ring-created':
        this.log.info({ members: e.members, by: e.by }, `IP range divided evenly among ${e.members.length} peers (${e.by})`);
        return;
      case 'ring-adopted':
        this.log.info({ from: nick(e.from), members: e.members }, `adopted the ring from ${nick(e.from)}`);
        return;
      case 'merge-refused':
        this.log.error({ from: nick(e.from), reason: e.reason, conflicts: e.conflicts.length }, `refused IPAM update from ${nick(e.from)}: ${e.message}`);
        return;
      case 'fork':
        this.log.warn({ from: nick(e.from), forks: e.forks.length }, `conflicting ring entries from ${nick(e.from)} resolved by name`);
        return;
      case 'yielded':
        this.log.warn({ from: nick(e.from), changes: e.changes.length }, `gave up unused space claimed by ${nick(e.from)}`);
        return;
      case 'space-requested':
        this.log.info({ donor: nick(e.donor) }, `asked ${nick(e.donor)} for space`);
        return;
      case 'space-donated':
        this.log.info({ to: nick(e.to), start: formatIpv4(e.start), size: e.end - e.start }, `donated ${e.end - e.start} addresses to ${nick(e.to)}`);
        return;
      case 'space-denied':
        this.log.info({ to: nick(e.to) }, `no space to give to ${nick(e.to)}`);
        return;
      case 'takeover':
        this.log.info({ peer: nick(e.peer) }, formatTakeover(e.addresses, nick(e.peer)));
        return;
    }
  }
}

/** The snapshot with its journal applied, checked as a whole. */
function parseLoaded(text: string, journal: string, peer: PeerName, range: Cidr): ReturnType<typeof parseState> {
  let value: unknown;
  try {
    value = applyJournal(JSON.parse(text), journal).value;
  } catch (err) {
    return { ok: false, reason: 'corrupt', message: `corrupt IPAM state: ${(err as Error).message}` };
  }
  return parseState(value, { peer, range });
}

function describeReply(r: Reply): string {
  if (r.kind === 'shutdown') return `${r.addresses} IPs handed to ${r.heir ?? 'nobody'}`;
  if (!r.ok) return `refused: ${r.error}`;
  switch (r.kind) {
    case 'allocate':
    case 'claim':
      return `address ${formatIpv4(r.address)}`;
    case 'release':
      return r.address === undefined ? 'cancelled' : `freed ${formatIpv4(r.address)}`;
    case 'rmpeer':
      return `${r.addresses} IPs taken over`;
  }
}
