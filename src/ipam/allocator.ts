// One peer's IPAM, pure: the ring, the addresses it handed out, consensus, and the requests
// waiting for space. The shell drives it with events and carries out what each returns:
//
//   local requests   allocate, claim, release, rmpeer, shutdown, prime
//   from the mesh    onMessage(from, message), setReachable(peers)
//   time             tick(now): retries, timeouts, consensus turns, free-space reports
//
// Every event returns a Step: messages to send, replies to waiting requests, events worth a log
// line, and whether the persistent state changed. The shell must write persistentState() to disk
// *before* it sends `out` or answers `replies`: an allocation is acknowledged only when it is
// durable, and no peer learns of a ring change this peer could forget in a crash.
//
// Time is passed in (`now`, in ms) and only compared; nothing here reads a clock or a random source.
import { type Cidr, cidrContains, formatIpv4, sameCidr } from '../net/ipv4.js';
import { type PeerName, comparePeerNames } from '../net/peer-name.js';
import {
  type ConsensusState,
  type ConsensusTiming,
  activate,
  advance,
  initialConsensus,
  knownVoters,
  mergeClaims,
} from './consensus.js';
import { type Interval, intervalSize } from './interval.js';
import { type GossipMessage, type IpamMessage, type Outgoing, broadcast, unicast } from './messages.js';
import {
  type Fork,
  type OwnershipChange,
  type Ring,
  TAKEOVER_VERSION_BUMP,
  checkRing,
  createRing,
  freeCounts,
  grantRange,
  incompatibility,
  mergeRings,
  ownedCounts,
  ownedIntervals,
  ownerOf,
  reportFree,
  transferOwnership,
} from './ring.js';
import { type Allocation, Space } from './space.js';
import { type IpamPersistentState } from './state-format.js';
import { ipamStatus } from './status.js';

export type IpamMode =
  /**
   * consensus=N: agree on the initial members with a majority of N voters (peers that are not
   * observers) as quorum, waiting a while for all N so that the first split is even.
   */
  | { readonly kind: 'consensus'; readonly peers: number }
  /** The initial members are fixed; every peer must be given the same list. */
  | { readonly kind: 'seed'; readonly members: readonly PeerName[] }
  /** Never votes; waits for a ring made by others. */
  | { readonly kind: 'observer' };

export interface IpamTiming extends ConsensusTiming {
  /** How long to wait for a donor's answer before asking again (Weave: 5 s). */
  readonly spaceRetryMs: number;
}

export const DEFAULT_TIMING: IpamTiming = { spaceRetryMs: 2000, proposeAfterMs: 1000, waitForAllMs: 10_000 };

export interface IpamConfig {
  readonly self: PeerName;
  readonly range: Cidr;
  readonly mode: IpamMode;
  readonly timing?: Partial<IpamTiming>;
}

export type Reply =
  | { readonly kind: 'allocate'; readonly id: string; readonly ok: true; readonly address: number }
  | { readonly kind: 'allocate'; readonly id: string; readonly ok: false; readonly error: string }
  | { readonly kind: 'claim'; readonly id: string; readonly address: number; readonly ok: true }
  | { readonly kind: 'claim'; readonly id: string; readonly address: number; readonly ok: false; readonly error: string }
  | { readonly kind: 'release'; readonly id: string; readonly ok: true; readonly address: number | undefined }
  | { readonly kind: 'release'; readonly id: string; readonly ok: false; readonly error: string }
  | { readonly kind: 'rmpeer'; readonly peer: PeerName; readonly ok: true; readonly addresses: number }
  | { readonly kind: 'rmpeer'; readonly peer: PeerName; readonly ok: false; readonly error: string }
  | { readonly kind: 'shutdown'; readonly heir: PeerName | undefined; readonly addresses: number };

export type IpamEvent =
  | { readonly kind: 'ring-created'; readonly members: readonly PeerName[]; readonly by: 'seed' | 'consensus' }
  | { readonly kind: 'ring-adopted'; readonly from: PeerName; readonly members: readonly PeerName[] }
  | {
      readonly kind: 'merge-refused';
      readonly from: PeerName;
      readonly reason: 'range' | 'members' | 'ownership' | 'invalid';
      readonly message: string;
      readonly conflicts: readonly OwnershipChange[];
    }
  | { readonly kind: 'fork'; readonly from: PeerName; readonly forks: readonly Fork[] }
  | { readonly kind: 'yielded'; readonly from: PeerName; readonly changes: readonly OwnershipChange[] }
  | { readonly kind: 'space-requested'; readonly donor: PeerName }
  | { readonly kind: 'space-donated'; readonly to: PeerName; readonly start: number; readonly end: number }
  | { readonly kind: 'space-denied'; readonly to: PeerName }
  | { readonly kind: 'takeover'; readonly peer: PeerName; readonly addresses: number };

export interface Step {
  readonly out: readonly Outgoing[];
  readonly replies: readonly Reply[];
  readonly events: readonly IpamEvent[];
  /** persistentState() changed: write it before sending `out` and answering `replies`. */
  readonly persist: boolean;
}

/** An immutable picture for status, report and metrics; never waits on anything. */
export interface IpamSnapshot {
  readonly self: PeerName;
  readonly range: Cidr;
  readonly status: string;
  readonly ring: Ring | undefined;
  readonly allocations: readonly Allocation[];
  readonly pendingAllocates: readonly string[];
  readonly pendingClaims: ReadonlyArray<{ readonly id: string; readonly address: number }>;
  readonly consensus: { readonly active: boolean; readonly voter: boolean; readonly quorum: number; readonly known: number };
  /** Addresses owned by this peer, and how many of them can still be handed out. */
  readonly owned: number;
  readonly free: number;
}

interface PendingAllocate {
  deadline: number;
}

interface PendingClaim {
  address: number;
  deadline: number;
  askedAt: number | undefined;
}

class StepBuilder {
  out: Outgoing[] = [];
  replies: Reply[] = [];
  events: IpamEvent[] = [];
  persist = false;
  done(): Step {
    return { out: this.out, replies: this.replies, events: this.events, persist: this.persist };
  }
}

export class Ipam {
  readonly self: PeerName;
  readonly range: Cidr;
  readonly mode: IpamMode;
  readonly #timing: IpamTiming;
  #ring: Ring | undefined;
  #space: Space;
  #consensus: ConsensusState;
  #reachable = new Set<PeerName>();
  readonly #pendingAllocates = new Map<string, PendingAllocate>();
  readonly #pendingClaims = new Map<string, PendingClaim>();
  #spaceRequest: { donor: PeerName; sentAt: number } | undefined;
  #denied = new Map<PeerName, number>();
  #wokeVotersAt: number | undefined;
  /** Our claim has been broadcast since consensus became active here. */
  #announced = false;
  #stopped = false;

  private constructor(config: IpamConfig, state: IpamPersistentState | undefined) {
    this.self = config.self;
    this.range = config.range;
    this.mode = config.mode;
    this.#timing = { ...DEFAULT_TIMING, ...config.timing };
    this.#ring = state?.ring;
    this.#space = new Space(config.range, state?.allocations ?? []);
    const expected = config.mode.kind === 'consensus' ? config.mode.peers : 0;
    this.#consensus = initialConsensus(config.self, expected, config.mode.kind === 'consensus', state?.claims ?? new Map());
    if (!this.#ring && config.mode.kind === 'seed') this.#ring = createRing(config.range, config.mode.members);
  }

  /** A peer starting with no persisted state. */
  static create(config: IpamConfig): Ipam {
    return new Ipam(config, undefined);
  }

  /** A peer resuming from its persisted state (parseState checked that it is ours and sound). */
  static restore(config: IpamConfig, state: IpamPersistentState): Ipam {
    if (state.peer !== config.self) throw new Error(`state of ${state.peer} given to ${config.self}`);
    return new Ipam(config, state);
  }

  // ---- queries ----

  get ring(): Ring | undefined {
    return this.#ring;
  }

  lookup(id: string): number | undefined {
    return this.#space.addressOf(id);
  }

  allocations(): Allocation[] {
    return this.#space.entries();
  }

  status(): string {
    return ipamStatus({
      self: this.self,
      ring: this.#ring,
      isReachable: (p) => this.#reachable.has(p),
      pending: this.#pendingAllocates.size + this.#pendingClaims.size,
      consensusActive: this.#consensus.active,
      voter: this.#consensus.voter,
      quorum: this.#consensus.quorum,
      knownVoters: knownVoters(this.#consensus),
    });
  }

  snapshot(): IpamSnapshot {
    const owned = this.#owned();
    return {
      self: this.self,
      range: this.range,
      status: this.status(),
      ring: this.#ring,
      allocations: this.#space.entries(),
      pendingAllocates: [...this.#pendingAllocates.keys()],
      pendingClaims: [...this.#pendingClaims].map(([id, c]) => ({ id, address: c.address })),
      consensus: {
        active: this.#consensus.active,
        voter: this.#consensus.voter,
        quorum: this.#consensus.quorum,
        known: knownVoters(this.#consensus),
      },
      owned: owned.reduce((n, i) => n + intervalSize(i), 0),
      free: this.#freeIn(owned),
    };
  }

  persistentState(): IpamPersistentState {
    return {
      peer: this.self,
      range: this.range,
      ring: this.#ring,
      allocations: this.#space.entries(),
      claims: this.#consensus.claims,
    };
  }

  /** The complete mergeable state, for a new neighbour and for periodic anti-entropy. */
  gossip(): GossipMessage | undefined {
    if (this.#ring) return { kind: 'gossip', ring: this.#ring };
    if (this.#consensus.active) return { kind: 'gossip', consensus: this.#consensus.claims };
    return undefined;
  }

  // ---- local requests ----

  /**
   * POST /ip/{id}: the id's address, or the lowest free one of our space. Without a ring or free
   * space the request waits (consensus, a donor) until `deadline`, then fails with the status.
   */
  allocate(id: string, now: number, deadline = Number.POSITIVE_INFINITY): Step {
    const step = new StepBuilder();
    if (this.#stopped) {
      step.replies.push({ kind: 'allocate', id, ok: false, error: 'IPAM is shut down' });
      return step.done();
    }
    const held = this.#space.addressOf(id);
    if (held !== undefined) {
      step.replies.push({ kind: 'allocate', id, ok: true, address: held });
      return step.done();
    }
    if (this.#pendingClaims.has(id)) {
      step.replies.push({ kind: 'allocate', id, ok: false, error: `${id} is waiting for a claimed address` });
      return step.done();
    }
    const pending = this.#pendingAllocates.get(id);
    this.#pendingAllocates.set(id, { deadline: Math.max(deadline, pending?.deadline ?? deadline) });
    this.#progress(step, now);
    return step.done();
  }

  /** PUT /ip/{id}/{ip}: give `id` this particular address (which may be owned by another peer). */
  claim(id: string, address: number, now: number, deadline = Number.POSITIVE_INFINITY): Step {
    const step = new StepBuilder();
    const fail = (error: string): Step => {
      step.replies.push({ kind: 'claim', id, address, ok: false, error });
      return step.done();
    };
    if (this.#stopped) return fail('IPAM is shut down');
    const ip = formatIpv4(address);
    if (!cidrContains(this.range, address)) return fail(`address ${ip} is not in the IP range`);
    if (this.#space.isReserved(address)) return fail(`address ${ip} is the first or last address of the IP range`);
    const holder = this.#space.holderOf(address);
    const held = this.#space.addressOf(id);
    if (holder === id) {
      step.replies.push({ kind: 'claim', id, address, ok: true });
      return step.done();
    }
    if (holder !== undefined) return fail(`address ${ip} is already owned by ${holder}`);
    if (held !== undefined) return fail(`${id} already has address ${formatIpv4(held)}`);
    if (this.#pendingAllocates.has(id)) return fail(`${id} is waiting for an address`);
    const other = this.#pendingClaims.get(id);
    if (other && other.address !== address) return fail(`${id} is waiting for address ${formatIpv4(other.address)}`);
    for (const [otherId, c] of this.#pendingClaims) {
      if (otherId !== id && c.address === address) return fail(`address ${ip} is being claimed by ${otherId}`);
    }
    this.#pendingClaims.set(id, { address, deadline: Math.max(deadline, other?.deadline ?? deadline), askedAt: other?.askedAt });
    this.#progress(step, now);
    return step.done();
  }

  /** DELETE /ip/{id}: frees the id's address (and cancels a waiting request for it). */
  release(id: string, now: number): Step {
    const step = new StepBuilder();
    const cancelled = this.#cancel(step, id, `${id} was released while waiting`);
    const address = this.#space.remove(id);
    if (address === undefined) {
      step.replies.push(
        cancelled
          ? { kind: 'release', id, ok: true, address: undefined }
          : { kind: 'release', id, ok: false, error: `no IP address allocated to ${id}` },
      );
      return step.done();
    }
    step.persist = true;
    step.replies.push({ kind: 'release', id, ok: true, address });
    this.#progress(step, now);
    return step.done();
  }

  /**
   * DELETE /peer/{name}: take over every range of a dead peer. Refused for ourselves and for a
   * peer we can reach. Safe only when no other peer does the same for that peer (the Kubernetes
   * reclaimer holds a lock for this) and the dead peer's last changes have reached us.
   */
  rmpeer(peer: PeerName, now: number): Step {
    const step = new StepBuilder();
    const fail = (error: string): Step => {
      step.replies.push({ kind: 'rmpeer', peer, ok: false, error });
      return step.done();
    };
    if (this.#stopped) return fail('IPAM is shut down');
    if (peer === this.self) return fail(`cannot take over our own IP ranges (${peer}); use 'weave reset' to leave`);
    if (this.#reachable.has(peer)) return fail(`peer ${peer} is reachable; rmpeer is only for peers that are dead`);
    if (!this.#ring) {
      step.replies.push({ kind: 'rmpeer', peer, ok: true, addresses: 0 });
      return step.done();
    }
    const { ring, addresses } = transferOwnership(this.#ring, peer, this.self, TAKEOVER_VERSION_BUMP);
    if (addresses > 0) {
      this.#setRing(step, this.#withFreeReported(ring));
      step.out.push(broadcast({ kind: 'gossip', ring: this.#ring as Ring }));
      step.events.push({ kind: 'takeover', peer, addresses });
    }
    step.replies.push({ kind: 'rmpeer', peer, ok: true, addresses });
    this.#progress(step, now);
    return step.done();
  }

  /**
   * Leaving for good (`weave reset`): hand all our space to an heir, preferring a reachable peer
   * that owns space, then any reachable peer, then an unreachable owner. Waiting requests fail and
   * our allocations are dropped (their containers go with us). Afterwards this instance refuses
   * everything. The persisted state then owns nothing, so even if the shell fails to delete it, a
   * restart from it cannot claim the heir's space.
   */
  shutdown(): Step {
    const step = new StepBuilder();
    for (const id of [...this.#pendingAllocates.keys(), ...this.#pendingClaims.keys()]) this.#cancel(step, id, 'IPAM is shutting down');
    this.#stopped = true;
    let heir: PeerName | undefined;
    let addresses = 0;
    if (this.#ring) {
      const owners = [...ownedCounts(this.#ring).keys()].filter((p) => p !== this.self).sort(comparePeerNames);
      const reachable = [...this.#reachable].filter((p) => p !== this.self).sort(comparePeerNames);
      heir = owners.find((p) => this.#reachable.has(p)) ?? reachable[0] ?? owners[0];
      if (heir !== undefined) {
        const moved = transferOwnership(this.#ring, this.self, heir, 1);
        addresses = moved.addresses;
        if (addresses > 0) {
          this.#setRing(step, moved.ring);
          step.out.push(broadcast({ kind: 'gossip', ring: moved.ring }));
        }
      }
    }
    if (this.#space.size > 0) {
      this.#space = new Space(this.range);
      step.persist = true;
    }
    step.replies.push({ kind: 'shutdown', heir, addresses });
    return step.done();
  }

  /** Ask for the ring now (consensus mode starts voting) instead of at the first allocation. */
  prime(now: number): Step {
    const step = new StepBuilder();
    if (!this.#ring && !this.#stopped) {
      if (this.mode.kind === 'observer') this.#wokeVotersAt = undefined;
      this.#consensus = activate(this.#consensus, now);
      this.#progress(step, now);
    }
    return step.done();
  }

  // ---- mesh events ----

  /** The peers we have a route to now (from the topology). */
  setReachable(peers: Iterable<PeerName>, now: number): Step {
    const step = new StepBuilder();
    this.#reachable = new Set(peers);
    this.#reachable.delete(this.self);
    if (this.#spaceRequest && !this.#reachable.has(this.#spaceRequest.donor)) this.#spaceRequest = undefined;
    if (!this.#stopped) this.#progress(step, now);
    return step.done();
  }

  onMessage(from: PeerName, message: IpamMessage, now: number): Step {
    const step = new StepBuilder();
    if (this.#stopped || from === this.self) return step.done();
    switch (message.kind) {
      case 'gossip':
        this.#onGossip(step, from, message, now);
        break;
      case 'space-request':
        this.#onSpaceRequest(step, from);
        break;
      case 'space-denied':
        if (this.#spaceRequest?.donor === from) this.#spaceRequest = undefined;
        this.#denied.set(from, now);
        break;
      case 'address-request':
        this.#onAddressRequest(step, from, message.address);
        break;
      case 'address-denied':
        for (const [id, c] of this.#pendingClaims) {
          if (c.address === message.address) {
            this.#pendingClaims.delete(id);
            step.replies.push({ kind: 'claim', id, address: c.address, ok: false, error: message.reason });
          }
        }
        break;
    }
    this.#progress(step, now);
    return step.done();
  }

  /** Timeouts, retries, consensus turns, and publishing our free counts. */
  tick(now: number): Step {
    const step = new StepBuilder();
    if (this.#stopped) return step.done();
    const status = this.status();
    for (const [id, p] of this.#pendingAllocates) {
      if (p.deadline <= now) {
        this.#pendingAllocates.delete(id);
        step.replies.push({ kind: 'allocate', id, ok: false, error: status });
      }
    }
    for (const [id, c] of this.#pendingClaims) {
      if (c.deadline <= now) {
        this.#pendingClaims.delete(id);
        const owner = this.#ring && ownerOf(this.#ring, c.address);
        const error = owner && owner !== this.self ? `address ${formatIpv4(c.address)} is owned by other peer ${owner}` : status;
        step.replies.push({ kind: 'claim', id, address: c.address, ok: false, error });
      }
    }
    for (const [peer, at] of this.#denied) if (now - at >= this.#timing.spaceRetryMs) this.#denied.delete(peer);
    if (this.#spaceRequest && now - this.#spaceRequest.sentAt >= this.#timing.spaceRetryMs) this.#spaceRequest = undefined;
    if (this.#ring) {
      const ring = this.#withFreeReported(this.#ring);
      if (ring !== this.#ring) {
        this.#setRing(step, ring);
        step.out.push(broadcast({ kind: 'gossip', ring }));
      }
    }
    this.#progress(step, now);
    return step.done();
  }

  // ---- internals ----

  #owned(): Interval[] {
    return this.#ring ? ownedIntervals(this.#ring, this.self) : [];
  }

  #freeIn(spans: readonly Interval[]): number {
    return spans.reduce((n, s) => n + this.#space.freeIn(s.start, s.end), 0);
  }

  #withFreeReported(ring: Ring): Ring {
    return reportFree(ring, this.self, (start, end) => this.#space.freeIn(start, end));
  }

  #setRing(step: StepBuilder, ring: Ring): void {
    this.#ring = ring;
    step.persist = true;
  }

  /** Fails a waiting request for `id`; true when there was one. */
  #cancel(step: StepBuilder, id: string, error: string): boolean {
    if (this.#pendingAllocates.delete(id)) {
      step.replies.push({ kind: 'allocate', id, ok: false, error });
      return true;
    }
    const claim = this.#pendingClaims.get(id);
    if (claim) {
      this.#pendingClaims.delete(id);
      step.replies.push({ kind: 'claim', id, address: claim.address, ok: false, error });
      return true;
    }
    return false;
  }

  /** After every event: get a ring, serve what waits, and ask for space or addresses we need. */
  #progress(step: StepBuilder, now: number): void {
    if (this.#stopped) return;
    const waiting = this.#pendingAllocates.size + this.#pendingClaims.size > 0;
    if (!this.#ring) {
      this.#seekRing(step, now, waiting);
      if (!this.#ring) return;
    }
    const ring = this.#ring;
    // Claims of addresses we own.
    for (const [id, c] of this.#pendingClaims) {
      if (ownerOf(ring, c.address) !== this.self) continue;
      this.#pendingClaims.delete(id);
      const holder = this.#space.holderOf(c.address);
      if (holder === undefined && this.#space.addressOf(id) === undefined) {
        this.#space.add(id, c.address);
        step.persist = true;
        step.replies.push({ kind: 'claim', id, address: c.address, ok: true });
      } else {
        step.replies.push({ kind: 'claim', id, address: c.address, ok: false, error: `address ${formatIpv4(c.address)} is already owned by ${holder ?? id}` });
      }
    }
    // Allocations, first come first served.
    if (this.#pendingAllocates.size > 0) {
      const owned = ownedIntervals(ring, this.self);
      for (const id of [...this.#pendingAllocates.keys()]) {
        const address = this.#space.lowestFree(owned);
        if (address === undefined) break;
        this.#pendingAllocates.delete(id);
        this.#space.add(id, address);
        step.persist = true;
        step.replies.push({ kind: 'allocate', id, ok: true, address });
      }
    }
    if (this.#pendingAllocates.size > 0 && !this.#spaceRequest) this.#askForSpace(step, now);
    // Claims of addresses others own: ask the owner (again after spaceRetryMs).
    for (const c of this.#pendingClaims.values()) {
      const owner = ownerOf(ring, c.address);
      if (!owner || owner === this.self || !this.#reachable.has(owner)) continue;
      if (c.askedAt !== undefined && now - c.askedAt < this.#timing.spaceRetryMs) continue;
      c.askedAt = now;
      step.out.push(unicast(owner, { kind: 'address-request', address: c.address }));
    }
  }

  #seekRing(step: StepBuilder, now: number, waiting: boolean): void {
    if (waiting) this.#consensus = activate(this.#consensus, now);
    if (!this.#consensus.active) return;
    if (this.mode.kind === 'observer') {
      // Wake the voters: any consensus gossip, even empty, makes them take part.
      if (this.#wokeVotersAt === undefined || now - this.#wokeVotersAt >= this.#timing.spaceRetryMs) {
        this.#wokeVotersAt = now;
        step.out.push(broadcast({ kind: 'gossip', consensus: new Map() }));
      }
      return;
    }
    const before = this.#consensus;
    const { state, changed, chosen } = advance(before, now, this.#timing);
    this.#consensus = state;
    if (chosen) {
      const ring = createRing(this.range, chosen);
      this.#setRing(step, ring);
      step.events.push({ kind: 'ring-created', members: ring.members, by: 'consensus' });
      step.out.push(broadcast({ kind: 'gossip', ring }));
      return;
    }
    if (changed || !this.#announced) {
      this.#announced = true;
      step.persist = true;
      step.out.push(broadcast({ kind: 'gossip', consensus: state.claims }));
    }
  }

  #onGossip(step: StepBuilder, from: PeerName, message: GossipMessage, now: number): void {
    if (message.ring) {
      this.#onRing(step, from, message.ring);
      // The donor answered (a grant, or news that it has less than we thought): ask anew if
      // still short, instead of waiting for the retry.
      if (this.#spaceRequest?.donor === from) this.#spaceRequest = undefined;
    } else if (message.consensus && this.#ring) {
      // The sender is still without a ring: it can have ours at once.
      step.out.push(unicast(from, { kind: 'gossip', ring: this.#ring }));
    }
    if (message.consensus && !this.#ring) {
      // Any consensus gossip makes us take part; #progress announces our claim.
      const merged = mergeClaims(this.#consensus, message.consensus, now);
      this.#consensus = merged.state;
      if (merged.changed) step.persist = true;
    }
  }

  #onRing(step: StepBuilder, from: PeerName, theirs: Ring): void {
    const invalid = checkRing(theirs);
    if (invalid !== undefined) {
      step.events.push({ kind: 'merge-refused', from, reason: 'invalid', message: `invalid ring: ${invalid}`, conflicts: [] });
      return;
    }
    if (!this.#ring) {
      if (!sameCidr(this.range, theirs.range)) {
        const message = incompatibility({ range: this.range, members: theirs.members, tokens: [] }, theirs) ?? '';
        step.events.push({ kind: 'merge-refused', from, reason: 'range', message, conflicts: [] });
        return;
      }
      this.#setRing(step, theirs);
      step.events.push({ kind: 'ring-adopted', from, members: theirs.members });
      return;
    }
    const result = mergeRings(this.#ring, theirs, {
      self: this.self,
      inUse: (start, end) => this.#space.countIn(start, end) > 0,
    });
    if (!result.ok) {
      step.events.push({ kind: 'merge-refused', from, reason: result.reason, message: result.message, conflicts: result.conflicts });
      return;
    }
    if (result.forks.length > 0) step.events.push({ kind: 'fork', from, forks: result.forks });
    if (result.yielded.length > 0) step.events.push({ kind: 'yielded', from, changes: result.yielded });
    if (result.changed) this.#setRing(step, result.ring);
  }

  /** Ask the reachable peer with the most free space (as the ring says) to give us some. */
  #askForSpace(step: StepBuilder, now: number): void {
    if (!this.#ring) return;
    let donor: PeerName | undefined;
    let most = 0;
    for (const [peer, free] of freeCounts(this.#ring)) {
      if (peer === this.self || !this.#reachable.has(peer) || this.#denied.has(peer) || free <= 0) continue;
      if (free > most || (free === most && donor !== undefined && comparePeerNames(peer, donor) < 0)) {
        donor = peer;
        most = free;
      }
    }
    if (donor === undefined) return;
    this.#spaceRequest = { donor, sentAt: now };
    step.out.push(unicast(donor, { kind: 'space-request' }));
    step.events.push({ kind: 'space-requested', donor });
  }

  /** A peer with no space asks: give it half of our free space, from our largest free run. */
  #onSpaceRequest(step: StepBuilder, from: PeerName): void {
    const ring = this.#ring;
    const owned = this.#owned();
    const free = this.#freeIn(owned);
    const run = this.#space.largestFreeRun(owned);
    if (!ring || free === 0 || !run) {
      step.out.push(unicast(from, { kind: 'space-denied' }));
      step.events.push({ kind: 'space-denied', to: from });
      return;
    }
    const amount = Math.min(Math.max(1, Math.floor(free / 2)), intervalSize(run));
    const start = run.end - amount;
    // The upper end of the run: our own allocations grow from the bottom of our space.
    this.#setRing(step, this.#withFreeReported(grantRange(ring, this.self, start, run.end, from)));
    step.events.push({ kind: 'space-donated', to: from, start, end: run.end });
    const gossip: GossipMessage = { kind: 'gossip', ring: this.#ring as Ring };
    step.out.push(unicast(from, gossip), broadcast(gossip));
  }

  /** A peer wants one address we own for a claim: give exactly that address if it is free. */
  #onAddressRequest(step: StepBuilder, from: PeerName, address: number): void {
    const ring = this.#ring;
    const ip = formatIpv4(address);
    const owner = ring && ownerOf(ring, address);
    if (!ring || owner !== this.self) {
      const reason = owner ? `address ${ip} is owned by other peer ${owner}` : `address ${ip} is not in the IP range`;
      step.out.push(unicast(from, { kind: 'address-denied', address, reason }));
      return;
    }
    const holder = this.#space.holderOf(address);
    if (holder !== undefined || this.#space.isReserved(address)) {
      const reason = `address ${ip} is already in use on peer ${this.self}`;
      step.out.push(unicast(from, { kind: 'address-denied', address, reason }));
      return;
    }
    this.#setRing(step, this.#withFreeReported(grantRange(ring, this.self, address, address + 1, from)));
    step.events.push({ kind: 'space-donated', to: from, start: address, end: address + 1 });
    const gossip: GossipMessage = { kind: 'gossip', ring: this.#ring as Ring };
    step.out.push(unicast(from, gossip), broadcast(gossip));
  }
}

/** What `weave rmpeer` prints. */
export function formatTakeover(addresses: number, peerLabel: string): string {
  return `${addresses} IPs taken over from ${peerLabel}`;
}
