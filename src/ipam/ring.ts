// The ring: who owns which part of the IP range, as a CRDT that every peer holds a replica of.
//
// The range is cut by tokens; a token owns the addresses from its start up to the next token's
// start (the last one up to the end of the range). The first token always sits at the start of the
// range, so every address has exactly one owner in any one replica. Rules:
//   - only a token's owner changes it, and every change raises its version;
//   - tokens are never deleted (a deletion could not be merged), only handed on;
//   - merge keeps, per token start, the entry with the higher (version, owner, free): a total
//     order, so merge is commutative, associative and idempotent, and replicas converge.
// Two entries with one version and different owners can only come from two peers changing one
// token independently (two `rmpeer`s of one dead peer, or a peer that lost its state): a fork.
// Merge still picks one deterministically and reports the fork. What must never happen is that a
// merge silently takes addresses away from a peer that has handed them out to containers: with a
// guard (see `mergeRings`) such a merge is refused as a whole and the replica stays unchanged.
import { type Cidr, cidrEnd, cidrSize, formatCidr, sameCidr } from '../net/ipv4.js';
import { type PeerName, comparePeerNames } from '../net/peer-name.js';
import { divideEvenly } from './division.js';
import { type Interval, formatInterval, normalizeIntervals, subtractIntervals } from './interval.js';

export interface Token {
  /** First address of the span this token owns. */
  readonly start: number;
  readonly owner: PeerName;
  /** Raised by the owner on every change of this token. */
  readonly version: number;
  /** Allocatable addresses the owner has not handed out, as the owner last reported them. */
  readonly free: number;
}

export interface Ring {
  readonly range: Cidr;
  /** The sorted initial members the ring was created from; rings of other members never merge. */
  readonly members: readonly PeerName[];
  /** Sorted by start, strictly increasing, the first at `range.start`. */
  readonly tokens: readonly Token[];
}

/** A token with the end of its span. */
export interface RingEntry extends Token {
  readonly end: number;
}

/**
 * `rmpeer` raises the version of the tokens it takes by this much, so that the takeover wins over
 * changes the dead peer made shortly before dying that have not reached us yet (Weave uses 100).
 */
export const TAKEOVER_VERSION_BUMP = 1000;

/** The first and last address of the range are never handed out (network and broadcast). */
export function reservedIn(range: Cidr, start: number, end: number): number {
  const last = cidrEnd(range) - 1;
  return (start <= range.start && range.start < end ? 1 : 0) + (start <= last && last < end ? 1 : 0);
}

export function allocatableIn(range: Cidr, start: number, end: number): number {
  return end - start - reservedIn(range, start, end);
}

/** The ring every peer builds from the agreed members: even shares, all at version 1. */
export function createRing(range: Cidr, members: Iterable<PeerName>): Ring {
  const shares = divideEvenly(range, members);
  const tokens = shares
    .filter((s) => s.end > s.start)
    .map((s) => ({ start: s.start, owner: s.owner, version: 1, free: allocatableIn(range, s.start, s.end) }));
  return { range, members: shares.map((s) => s.owner), tokens };
}

function tokenEnd(ring: Ring, i: number): number {
  return ring.tokens[i + 1]?.start ?? cidrEnd(ring.range);
}

export function ringEntries(ring: Ring): RingEntry[] {
  return ring.tokens.map((t, i) => ({ ...t, end: tokenEnd(ring, i) }));
}

/** Index of the token whose span holds the address (the last token starting at or before it). */
function tokenIndexOf(ring: Ring, address: number): number {
  let lo = 0;
  let hi = ring.tokens.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((ring.tokens[mid] as Token).start <= address) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export function ownerOf(ring: Ring, address: number): PeerName | undefined {
  if (address < ring.range.start || address >= cidrEnd(ring.range)) return undefined;
  return ring.tokens[tokenIndexOf(ring, address)]?.owner;
}

/** The parts of the range a peer owns, sorted, neighbours joined. */
export function ownedIntervals(ring: Ring, peer: PeerName): Interval[] {
  const spans: Interval[] = [];
  ring.tokens.forEach((t, i) => {
    if (t.owner === peer) spans.push({ start: t.start, end: tokenEnd(ring, i) });
  });
  return normalizeIntervals(spans);
}

/** Addresses owned per peer (peers owning nothing are absent). */
export function ownedCounts(ring: Ring): Map<PeerName, number> {
  const counts = new Map<PeerName, number>();
  ring.tokens.forEach((t, i) => counts.set(t.owner, (counts.get(t.owner) ?? 0) + tokenEnd(ring, i) - t.start));
  return counts;
}

/** Free addresses per peer, as the owners reported them. */
export function freeCounts(ring: Ring): Map<PeerName, number> {
  const counts = new Map<PeerName, number>();
  for (const t of ring.tokens) counts.set(t.owner, (counts.get(t.owner) ?? 0) + t.free);
  return counts;
}

const CANONICAL_NAME = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Structural check of a ring received from elsewhere; the reason, or undefined when sound. */
export function checkRing(ring: Ring): string | undefined {
  const { range, members, tokens } = ring;
  if (!Number.isInteger(range.prefixLength) || range.prefixLength < 0 || range.prefixLength > 32) {
    return `bad prefix length ${range.prefixLength}`;
  }
  if (!Number.isInteger(range.start) || range.start % cidrSize(range) !== 0 || range.start < 0 || cidrEnd(range) > 2 ** 32) {
    return `bad range start ${range.start}`;
  }
  if (members.length === 0) return 'no members';
  for (let i = 0; i < members.length; i++) {
    const m = members[i] as string;
    if (!CANONICAL_NAME.test(m)) return `bad member name "${m}"`;
    if (i > 0 && (members[i - 1] as string) >= m) return 'members not sorted and unique';
  }
  if (tokens.length === 0) return 'no tokens';
  if (tokens[0]?.start !== range.start) return 'first token is not at the start of the range';
  const end = cidrEnd(range);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (!Number.isInteger(t.start) || t.start < range.start || t.start >= end) return `token ${t.start} outside the range`;
    if (i > 0 && (tokens[i - 1] as Token).start >= t.start) return 'tokens not sorted and unique';
    if (!CANONICAL_NAME.test(t.owner)) return `bad owner name "${t.owner}"`;
    if (!Number.isSafeInteger(t.version) || t.version < 1) return `bad version ${t.version}`;
    // Free counts are advisory (they steer the choice of donor); after a fork has been merged a
    // count may describe a span that has since been cut, so only the range bounds them.
    if (!Number.isInteger(t.free) || t.free < 0 || t.free > cidrSize(range)) return `bad free count ${t.free}`;
  }
  return undefined;
}

/** Why two rings cannot be merged at all (other range, other members), or undefined. */
export function incompatibility(ours: Ring, theirs: Ring): string | undefined {
  if (!sameCidr(ours.range, theirs.range)) {
    return `incompatible IP allocation ranges (received: ${formatCidr(theirs.range)}, ours: ${formatCidr(ours.range)})`;
  }
  if (ours.members.length !== theirs.members.length || ours.members.some((m, i) => m !== theirs.members[i])) {
    return `IP allocation was seeded by different peers (received: [${theirs.members.join(' ')}], ours: [${ours.members.join(' ')}])`;
  }
  return undefined;
}

/** Total order on entries of one token start: version, then owner name, then free. */
function compareTokens(a: Token, b: Token): number {
  return a.version - b.version || comparePeerNames(a.owner, b.owner) || a.free - b.free;
}

/** Two peers changed one token independently; merge kept `winner`. */
export interface Fork {
  readonly start: number;
  readonly owners: readonly [PeerName, PeerName];
  readonly version: number;
  readonly winner: PeerName;
}

/** Addresses a merge takes from `self` and gives to `owner`. */
export interface OwnershipChange extends Interval {
  readonly from: PeerName;
  readonly owner: PeerName;
}

export interface MergeGuard {
  /** The replica's own peer. */
  readonly self: PeerName;
  /** True when self has handed out addresses in [start, end). */
  readonly inUse: (start: number, end: number) => boolean;
}

export type MergeResult =
  | {
      readonly ok: true;
      readonly ring: Ring;
      /** The result differs from `ours`. */
      readonly changed: boolean;
      readonly forks: readonly Fork[];
      /** With a guard: parts of self's space with no addresses in use that the merge gave away. */
      readonly yielded: readonly OwnershipChange[];
    }
  | {
      readonly ok: false;
      readonly reason: 'range' | 'members' | 'ownership';
      readonly message: string;
      /** For 'ownership': each part of self's space, in use, that the merge would give to another. */
      readonly conflicts: readonly OwnershipChange[];
    };

/**
 * Merges a received replica into ours. Without a guard this is the plain CRDT join. With a guard
 * it refuses (result `ok: false`, nothing changed) when the join would give addresses that the
 * guard's peer has in use to another owner: then one address would have two owners. A join that
 * takes away space with nothing in use is accepted and listed in `yielded` (the other claim wins;
 * this is how a fork left by two `rmpeer`s heals when one side has not used the space yet).
 */
export function mergeRings(ours: Ring, theirs: Ring, guard?: MergeGuard): MergeResult {
  const problem = incompatibility(ours, theirs);
  if (problem !== undefined) {
    const reason = sameCidr(ours.range, theirs.range) ? 'members' : 'range';
    return { ok: false, reason, message: problem, conflicts: [] };
  }
  const tokens: Token[] = [];
  const forks: Fork[] = [];
  let changed = false;
  let i = 0;
  let j = 0;
  while (i < ours.tokens.length || j < theirs.tokens.length) {
    const a = ours.tokens[i];
    const b = theirs.tokens[j];
    if (a && (!b || a.start < b.start)) {
      tokens.push(a);
      i++;
    } else if (b && (!a || b.start < a.start)) {
      tokens.push(b);
      changed = true;
      j++;
    } else if (a && b) {
      const order = compareTokens(a, b);
      tokens.push(order >= 0 ? a : b);
      if (order < 0) changed = true;
      if (a.version === b.version && a.owner !== b.owner) {
        const owners = [a.owner, b.owner].sort(comparePeerNames) as [PeerName, PeerName];
        forks.push({ start: a.start, owners, version: a.version, winner: order >= 0 ? a.owner : b.owner });
      }
      i++;
      j++;
    }
  }
  const ring: Ring = changed ? { range: ours.range, members: ours.members, tokens } : ours;
  if (!guard || !changed) return { ok: true, ring, changed, forks, yielded: [] };

  const lost = subtractIntervals(ownedIntervals(ours, guard.self), ownedIntervals(ring, guard.self));
  const changes: OwnershipChange[] = [];
  for (const part of lost) {
    for (const e of ringEntries(ring)) {
      const start = Math.max(part.start, e.start);
      const end = Math.min(part.end, e.end);
      if (start < end) changes.push({ start, end, from: guard.self, owner: e.owner });
    }
  }
  const conflicts = changes.filter((c) => guard.inUse(c.start, c.end));
  if (conflicts.length > 0) {
    const message = conflicts
      .map((c) => `peer ${c.owner} says it owns ${formatInterval(c)}, which ${c.from} owns and has addresses in use`)
      .join('; ');
    return { ok: false, reason: 'ownership', message, conflicts };
  }
  return { ok: true, ring, changed, forks, yielded: changes };
}

function assertOwned(ring: Ring, self: PeerName, start: number, end: number): void {
  const inside = ownedIntervals(ring, self).some((i) => i.start <= start && end <= i.end);
  if (!inside || start >= end) {
    throw new RangeError(`${self} cannot hand on ${start}..${end}: not an owned, non-empty span`);
  }
}

/**
 * The owner hands [start, end) of its own space to `to` (a donation): tokens inside go to `to`
 * with a raised version, and tokens are added at `start` and `end` where the span begins or ends
 * inside one of self's tokens. Throws when self does not own the whole span (a caller's bug).
 */
export function grantRange(ring: Ring, self: PeerName, start: number, end: number, to: PeerName): Ring {
  assertOwned(ring, self, start, end);
  const rangeEnd = cidrEnd(ring.range);
  const tokens = [...ring.tokens];
  // New tokens start at version 1: tokens are never deleted, so no replica can hold an older
  // entry at the same start (unless someone else also thought it owned this span: a fork).
  const insert = (token: Token): void => {
    const at = tokens.findIndex((t) => t.start >= token.start);
    if (at < 0) tokens.push(token);
    else if ((tokens[at] as Token).start !== token.start) tokens.splice(at, 0, token);
  };
  if (end < rangeEnd) insert({ start: end, owner: self, version: 1, free: 0 });
  const hadStart = tokens.some((t) => t.start === start);
  insert({ start, owner: to, version: 0, free: 0 });
  return {
    range: ring.range,
    members: ring.members,
    tokens: tokens.map((t, i) => {
      const spanEnd = tokens[i + 1]?.start ?? rangeEnd;
      const allocatable = allocatableIn(ring.range, t.start, spanEnd);
      // The token that now ends at `start` lost part of its span: its count, and so its version,
      // changes (the caller reports exact counts next).
      if (t.start < start || t.start >= end) return t.free > allocatable ? { ...t, free: allocatable, version: t.version + 1 } : t;
      // Inside the grant: the donor gives only addresses it has not handed out.
      const version = t.start === start && !hadStart ? 1 : t.version + 1;
      return { start: t.start, owner: to, version, free: allocatable };
    }),
  };
}

/**
 * Hands every token of `from` to `to`, raising versions by `bump`: 1 when the owner itself hands
 * its space on at shutdown, TAKEOVER_VERSION_BUMP for `rmpeer`. Returns the addresses moved.
 */
export function transferOwnership(
  ring: Ring,
  from: PeerName,
  to: PeerName,
  bump: number,
): { ring: Ring; addresses: number } {
  let addresses = 0;
  const tokens = ring.tokens.map((t, i) => {
    if (t.owner !== from) return t;
    addresses += tokenEnd(ring, i) - t.start;
    return { ...t, owner: to, version: t.version + bump };
  });
  return { ring: addresses === 0 ? ring : { ...ring, tokens }, addresses };
}

/**
 * The owner's new free counts for its tokens (`freeOf(start, end)`); tokens whose count changed
 * get a raised version. Returns the same ring when nothing changed.
 */
export function reportFree(ring: Ring, self: PeerName, freeOf: (start: number, end: number) => number): Ring {
  let changed = false;
  const tokens = ring.tokens.map((t, i) => {
    if (t.owner !== self) return t;
    const free = freeOf(t.start, tokenEnd(ring, i));
    if (free === t.free) return t;
    changed = true;
    return { ...t, free, version: t.version + 1 };
  });
  return changed ? { ...ring, tokens } : ring;
}
