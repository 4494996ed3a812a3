// The persisted IPAM state of one peer, as a versioned JSON value: whose it is, for which range,
// the ring, the allocations and (before the ring exists) the consensus claims, which Paxos needs
// to survive restarts. Writing it to disk atomically is the shell's job; this module turns the
// state into a JSON-able value and back, and checks everything on the way back in, because a
// state file for another peer or range, or a damaged one, must be set aside, never used.
import { type Cidr, formatCidr, formatIpv4, parseCidr, parseIpv4, sameCidr } from '../net/ipv4.js';
import { type PeerName, parsePeerName } from '../net/peer-name.js';
import { type Ballot, type Claim, type Claims } from './consensus.js';
import { type Ring, type Token, checkRing, ownerOf } from './ring.js';
import { type Allocation } from './space.js';

export const STATE_FORMAT = 'weft-ipam';
export const STATE_FORMAT_VERSION = 1;

export interface IpamPersistentState {
  readonly peer: PeerName;
  readonly range: Cidr;
  readonly ring: Ring | undefined;
  readonly allocations: readonly Allocation[];
  readonly claims: Claims;
}

interface BallotJson {
  round: number;
  proposer: string;
}

interface ClaimJson {
  voter: string;
  promise: BallotJson | null;
  accepted: { ballot: BallotJson; value: string[] } | null;
}

export interface IpamStateJson {
  format: typeof STATE_FORMAT;
  version: typeof STATE_FORMAT_VERSION;
  peer: string;
  range: string;
  ring: { members: string[]; tokens: Array<{ start: string; owner: string; version: number; free: number }> } | null;
  allocations: Array<{ id: string; address: string }>;
  consensus: ClaimJson[];
}

export function encodeState(state: IpamPersistentState): IpamStateJson {
  return {
    format: STATE_FORMAT,
    version: STATE_FORMAT_VERSION,
    peer: state.peer,
    range: formatCidr(state.range),
    ring: state.ring
      ? {
          members: [...state.ring.members],
          tokens: state.ring.tokens.map((t) => ({ start: formatIpv4(t.start), owner: t.owner, version: t.version, free: t.free })),
        }
      : null,
    allocations: state.allocations.map((a) => ({ id: a.id, address: formatIpv4(a.address) })),
    consensus: [...state.claims].map(([voter, c]) => ({
      voter,
      promise: c.promise ? { round: c.promise.round, proposer: c.promise.proposer } : null,
      accepted: c.accepted
        ? { ballot: { round: c.accepted.ballot.round, proposer: c.accepted.ballot.proposer }, value: [...c.accepted.value] }
        : null,
    })),
  };
}

export function stateToText(state: IpamPersistentState): string {
  return `${JSON.stringify(encodeState(state))}\n`;
}

export type ParseStateResult =
  | { readonly ok: true; readonly state: IpamPersistentState }
  | { readonly ok: false; readonly reason: 'other-peer' | 'other-range' | 'corrupt'; readonly message: string };

/** Thrown inside the parser only; parseState turns it into a result. */
class Corrupt extends Error {}

function fail(what: string): never {
  throw new Corrupt(what);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(obj: Record<string, unknown>, key: string): unknown {
  if (!(key in obj)) fail(`missing "${key}"`);
  return obj[key];
}

function array(v: unknown, what: string): unknown[] {
  return Array.isArray(v) ? v : fail(`${what} is not a list`);
}

function string(v: unknown, what: string): string {
  return typeof v === 'string' ? v : fail(`${what} is not a string`);
}

function count(v: unknown, what: string): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(`${what} is not a whole number`);
}

function peerName(v: unknown, what: string): PeerName {
  const text = string(v, what);
  let name: PeerName;
  try {
    name = parsePeerName(text);
  } catch {
    fail(`${what} "${text}" is not a peer name`);
  }
  return name === text ? name : fail(`${what} "${text}" is not a canonical peer name`);
}

function address(v: unknown, what: string): number {
  const text = string(v, what);
  try {
    return parseIpv4(text);
  } catch {
    fail(`${what} "${text}" is not an IPv4 address`);
  }
}

function ballot(v: unknown, what: string): Ballot {
  if (!isObject(v)) fail(`${what} is not an object`);
  const round = count(field(v, 'round'), `${what} round`);
  if (round < 1) fail(`${what} round is 0`);
  return { round, proposer: peerName(field(v, 'proposer'), `${what} proposer`) };
}

function parseRing(v: unknown, range: Cidr): Ring {
  if (!isObject(v)) fail('ring is not an object');
  const members = array(field(v, 'members'), 'ring members').map((m, i) => peerName(m, `ring member ${i}`));
  const tokens: Token[] = array(field(v, 'tokens'), 'ring tokens').map((t, i) => {
    if (!isObject(t)) fail(`ring token ${i} is not an object`);
    return {
      start: address(field(t, 'start'), `ring token ${i} start`),
      owner: peerName(field(t, 'owner'), `ring token ${i} owner`),
      version: count(field(t, 'version'), `ring token ${i} version`),
      free: count(field(t, 'free'), `ring token ${i} free`),
    };
  });
  const ring: Ring = { range, members, tokens };
  const problem = checkRing(ring);
  if (problem !== undefined) fail(`ring: ${problem}`);
  return ring;
}

/**
 * Reads a persisted state (already JSON-parsed) for peer `expect.peer` and range `expect.range`.
 * Never throws: a state of another peer or range, or anything malformed or inconsistent (an
 * allocation outside the peer's own space, two ids on one address...), is a result that says why.
 */
export function parseState(value: unknown, expect: { peer: PeerName; range: Cidr }): ParseStateResult {
  try {
    if (!isObject(value)) fail('not a JSON object');
    if (field(value, 'format') !== STATE_FORMAT) fail(`not a ${STATE_FORMAT} state`);
    const version = field(value, 'version');
    if (version !== STATE_FORMAT_VERSION) fail(`unknown format version ${String(version)}`);
    const peer = peerName(field(value, 'peer'), 'peer');
    const rangeText = string(field(value, 'range'), 'range');
    let range: Cidr;
    try {
      range = parseCidr(rangeText);
    } catch {
      fail(`range "${rangeText}" is not a valid range`);
    }
    if (peer !== expect.peer) {
      return { ok: false, reason: 'other-peer', message: `persisted IPAM data is for peer ${peer}, we are ${expect.peer}` };
    }
    if (!sameCidr(range, expect.range)) {
      return {
        ok: false,
        reason: 'other-range',
        message: `persisted IPAM data is for range ${formatCidr(range)}, our range is ${formatCidr(expect.range)}`,
      };
    }
    const ringValue = field(value, 'ring');
    const ring = ringValue === null ? undefined : parseRing(ringValue, range);
    const ids = new Set<string>();
    const held = new Set<number>();
    const last = range.start + 2 ** (32 - range.prefixLength) - 1;
    const allocations: Allocation[] = array(field(value, 'allocations'), 'allocations').map((a, i) => {
      if (!isObject(a)) fail(`allocation ${i} is not an object`);
      const id = string(field(a, 'id'), `allocation ${i} id`);
      const addr = address(field(a, 'address'), `allocation ${i} address`);
      if (id === '') fail(`allocation ${i} has an empty id`);
      if (ids.has(id)) fail(`id "${id}" holds two addresses`);
      if (held.has(addr)) fail(`address ${formatIpv4(addr)} is held by two ids`);
      if (addr === range.start || addr === last) fail(`address ${formatIpv4(addr)} is reserved`);
      if (!ring || ownerOf(ring, addr) !== peer) fail(`address ${formatIpv4(addr)} is allocated but not owned by ${peer}`);
      ids.add(id);
      held.add(addr);
      return { id, address: addr };
    });
    const claims = new Map<PeerName, Claim>();
    for (const [i, c] of array(field(value, 'consensus'), 'consensus').entries()) {
      if (!isObject(c)) fail(`consensus claim ${i} is not an object`);
      const voter = peerName(field(c, 'voter'), `consensus claim ${i} voter`);
      if (claims.has(voter)) fail(`two consensus claims of ${voter}`);
      const p = field(c, 'promise');
      const a = field(c, 'accepted');
      const promise = p === null ? null : ballot(p, `consensus claim ${i} promise`);
      let accepted: Claim['accepted'] = null;
      if (a !== null) {
        if (!isObject(a)) fail(`consensus claim ${i} accepted is not an object`);
        const value = array(field(a, 'value'), `consensus claim ${i} value`).map((m, k) => peerName(m, `consensus value ${k}`));
        accepted = { ballot: ballot(field(a, 'ballot'), `consensus claim ${i} accepted ballot`), value };
      }
      claims.set(voter, { promise, accepted });
    }
    return { ok: true, state: { peer, range, ring, allocations, claims } };
  } catch (err) {
    if (err instanceof Corrupt) return { ok: false, reason: 'corrupt', message: `corrupt IPAM state: ${err.message}` };
    throw err;
  }
}

/** parseState of the text of a state file; text that is not JSON is corrupt too. */
export function parseStateText(text: string, expect: { peer: PeerName; range: Cidr }): ParseStateResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: 'corrupt', message: `corrupt IPAM state: not JSON (${(err as Error).message})` };
  }
  return parseState(value, expect);
}
