// Agreement on the initial members of the ring (`--ipalloc-init consensus=N`), pure.
//
// The ring is created from the agreed member set by every peer alike (division.ts), so agreeing
// on the set is all that is needed, and it must be agreed only once: two groups of peers that
// each created a ring of their own would never merge (pain #2). Single-decree Paxos decides it,
// carried by gossip instead of request/response messages:
//
//   - Every voter (a peer that is not an observer) publishes a claim {promise, accepted}. Only the
//     voter changes its claim and the changes only grow (promise and accepted ballot never go
//     down), so the claims of all voters form a CRDT: merge keeps the larger claim per voter.
//     Every peer gossips all the claims it knows.
//   - Acceptor: a voter that sees a proposal (an accepted value) with a ballot not below its own
//     promise accepts it; a voter that sees a higher ballot promised anywhere promises it too.
//   - Proposer: a voter that knows at least a quorum of voters may start ballot (round+1, self) by
//     promising it itself. Once a quorum of claims show that promise, it proposes: the value
//     accepted with the highest ballot among them, or, if none, the set of voters it knows.
//   - Learner: a value is chosen once a quorum of claims have accepted the same ballot.
//
// Why this is safe: a value is chosen only with a quorum of acceptances, a proposer picks its value
// only after a quorum promised, and any two quorums of `floor(N/2)+1` out of N voters share a
// voter, so a later ballot always sees and re-proposes the chosen value. Two partitions can
// therefore never decide differently, and a partition with fewer than a quorum never decides.
// This needs at most N voters taking part before the ring exists (N as given to consensus=N) and
// each voter's claim to survive restarts (state-format.ts persists it).
//
// Evenness: the ring is divided among the members agreed, and a peer that comes later only gets
// half of someone's free space. So while fewer than the N expected voters are known, nobody
// proposes until `waitForAllMs` have passed without news (a voter appearing is news): peers that
// come up at different moments still all get an equal share, and a dead peer delays the ring by
// that long, never for ever. Status meanwhile says "awaiting consensus (quorum: Q, known: K)".
//
// Liveness: duelling proposers are avoided without randomness. The highest-named voter one knows
// proposes first; the others only when nothing has changed for `proposeAfterMs` times their rank,
// so a dead leader is replaced in order.
import { type PeerName, comparePeerNames } from '../net/peer-name.js';

export interface Ballot {
  readonly round: number;
  readonly proposer: PeerName;
}

export interface Accepted {
  readonly ballot: Ballot;
  /** The proposed member set, sorted. */
  readonly value: readonly PeerName[];
}

export interface Claim {
  readonly promise: Ballot | null;
  readonly accepted: Accepted | null;
}

export type Claims = ReadonlyMap<PeerName, Claim>;

export interface ConsensusState {
  readonly self: PeerName;
  /** N of consensus=N: the voters expected before the ring exists. */
  readonly expected: number;
  readonly quorum: number;
  /** False for observers: they never publish a claim, never propose, never count. */
  readonly voter: boolean;
  /** Consensus has been asked for (a local need, or a claim from another peer). */
  readonly active: boolean;
  readonly claims: Claims;
  /** Last time the claims changed: proposers that are not the leader wait for a stall. */
  readonly lastProgressAt: number;
}

/** Quorum for `consensus=N`, as Weave: a strict majority of N. */
export function quorumFor(peers: number): number {
  if (!Number.isInteger(peers) || peers < 1) throw new RangeError(`invalid consensus peer count ${peers}`);
  return Math.floor(peers / 2) + 1;
}

export function compareBallots(a: Ballot | null, b: Ballot | null): number {
  if (a === null || b === null) return (a === null ? 0 : 1) - (b === null ? 0 : 1);
  return a.round - b.round || comparePeerNames(a.proposer, b.proposer);
}

function sameBallot(a: Ballot | null, b: Ballot | null): boolean {
  return compareBallots(a, b) === 0;
}

/** Claims of one voter only grow in this order, so merge keeps the larger. */
export function compareClaims(a: Claim, b: Claim): number {
  return compareBallots(a.promise, b.promise) || compareBallots(a.accepted?.ballot ?? null, b.accepted?.ballot ?? null);
}

const EMPTY_CLAIM: Claim = { promise: null, accepted: null };

export interface ConsensusTiming {
  /** A voter of rank r (0 = highest name) proposes after r (or r+1) of these without news. */
  readonly proposeAfterMs: number;
  /** With fewer than the expected voters known, how long to wait for the rest. */
  readonly waitForAllMs: number;
}

/** `expected` is N of consensus=N; 0 for an observer (which never counts votes). */
export function initialConsensus(
  self: PeerName,
  expected: number,
  voter: boolean,
  claims: Claims = new Map(),
): ConsensusState {
  const quorum = expected > 0 ? quorumFor(expected) : 0;
  return { self, expected, quorum, voter, active: false, claims, lastProgressAt: 0 };
}

/** A local need for the ring (an allocation, a claim, or an explicit prime). */
export function activate(state: ConsensusState, now: number): ConsensusState {
  if (state.active && (!state.voter || state.claims.has(state.self))) return state;
  const claims = new Map(state.claims);
  if (state.voter && !claims.has(state.self)) claims.set(state.self, EMPTY_CLAIM);
  return { ...state, active: true, claims, lastProgressAt: state.active ? state.lastProgressAt : now };
}

/** Voters known (including self when a voter): the K of "awaiting consensus (quorum: Q, known: K)". */
export function knownVoters(state: ConsensusState): number {
  return state.claims.size;
}

/**
 * Merges claims received from a peer (a peer asking at all activates us: observers send an empty
 * set to wake the voters). Changed means our claims differ afterwards.
 */
export function mergeClaims(
  state: ConsensusState,
  incoming: Claims,
  now: number,
): { state: ConsensusState; changed: boolean } {
  let next = activate(state, now);
  let claims: Map<PeerName, Claim> | undefined;
  for (const [voter, claim] of incoming) {
    const mine = (claims ?? next.claims).get(voter);
    if (mine === undefined || compareClaims(claim, mine) > 0) {
      claims ??= new Map(next.claims);
      claims.set(voter, claim);
    }
  }
  if (claims) next = { ...next, claims, lastProgressAt: now };
  return { state: next, changed: claims !== undefined || next !== state };
}

/** The chosen member set, once a quorum of voters accepted one ballot. */
export function chosenValue(state: ConsensusState): readonly PeerName[] | undefined {
  const counts = new Map<string, { n: number; value: readonly PeerName[] }>();
  for (const claim of state.claims.values()) {
    if (!claim.accepted) continue;
    const key = `${claim.accepted.ballot.round}/${claim.accepted.ballot.proposer}`;
    const entry = counts.get(key) ?? { n: 0, value: claim.accepted.value };
    entry.n++;
    counts.set(key, entry);
    if (entry.n >= state.quorum) return entry.value;
  }
  return undefined;
}

function withOwnClaim(state: ConsensusState, claim: Claim, now: number): ConsensusState {
  const claims = new Map(state.claims);
  claims.set(state.self, claim);
  return { ...state, claims, lastProgressAt: now };
}

function highestPromise(state: ConsensusState): Ballot | null {
  let best: Ballot | null = null;
  for (const c of state.claims.values()) if (compareBallots(c.promise, best) > 0) best = c.promise;
  return best;
}

function highestRound(state: ConsensusState): number {
  let round = 0;
  for (const c of state.claims.values()) {
    round = Math.max(round, c.promise?.round ?? 0, c.accepted?.ballot.round ?? 0);
  }
  return round;
}

/** Acceptor rules: accept the best proposal allowed by our promise, then promise the highest ballot. */
function accept(state: ConsensusState, now: number): ConsensusState {
  let own = state.claims.get(state.self) ?? EMPTY_CLAIM;
  let best: Accepted | null = null;
  for (const c of state.claims.values()) {
    if (c.accepted && compareBallots(c.accepted.ballot, best?.ballot ?? null) > 0) best = c.accepted;
  }
  if (
    best &&
    compareBallots(best.ballot, own.promise) >= 0 &&
    compareBallots(best.ballot, own.accepted?.ballot ?? null) > 0
  ) {
    own = { promise: best.ballot, accepted: best };
  }
  const highest = highestPromise(state);
  if (compareBallots(highest, own.promise) > 0) own = { promise: highest, accepted: own.accepted };
  return own === (state.claims.get(state.self) ?? EMPTY_CLAIM) ? state : withOwnClaim(state, own, now);
}

/** Proposer phase 2: once a quorum promised our ballot, propose a value. */
function propose(state: ConsensusState, now: number): ConsensusState {
  const own = state.claims.get(state.self);
  const ballot = own?.promise;
  if (!own || !ballot || ballot.proposer !== state.self || sameBallot(own.accepted?.ballot ?? null, ballot)) {
    return state;
  }
  const promised = [...state.claims.values()].filter((c) => sameBallot(c.promise, ballot));
  if (promised.length < state.quorum) return state;
  let prior: Accepted | null = null;
  for (const c of promised) if (c.accepted && compareBallots(c.accepted.ballot, prior?.ballot ?? null) > 0) prior = c.accepted;
  const value = prior?.value ?? [...state.claims.keys()].sort(comparePeerNames);
  return withOwnClaim(state, { promise: ballot, accepted: { ballot, value } }, now);
}

/** Proposer phase 1, when it is our turn: start a new ballot by promising it ourselves. */
function startBallot(state: ConsensusState, now: number, timing: ConsensusTiming): ConsensusState {
  if (!state.voter || !state.active || state.claims.size < state.quorum) return state;
  const voters = [...state.claims.keys()].sort((a, b) => comparePeerNames(b, a));
  const rank = voters.indexOf(state.self);
  if (rank < 0) return state;
  const someBallot = highestPromise(state) !== null;
  const missing = state.claims.size < state.expected;
  const wait =
    (missing ? timing.waitForAllMs : 0) + timing.proposeAfterMs * (someBallot ? rank + 1 : rank);
  if (now - state.lastProgressAt < wait) return state;
  const own = state.claims.get(state.self) ?? EMPTY_CLAIM;
  const ballot: Ballot = { round: highestRound(state) + 1, proposer: state.self };
  return withOwnClaim(state, { promise: ballot, accepted: own.accepted }, now);
}

/**
 * Runs the acceptor, proposer and learner rules on what we know. Call after every merge and on
 * every tick. `changed` means our own claim changed: persist it, then gossip.
 */
export function advance(
  state: ConsensusState,
  now: number,
  timing: ConsensusTiming,
): { state: ConsensusState; changed: boolean; chosen: readonly PeerName[] | undefined } {
  const decided = chosenValue(state);
  if (decided || !state.voter || !state.active) return { state, changed: false, chosen: decided };
  let next = accept(state, now);
  next = propose(next, now);
  if (next === state) next = startBallot(next, now, timing);
  next = propose(next, now);
  return { state: next, changed: next !== state, chosen: chosenValue(next) };
}
