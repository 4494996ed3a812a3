// IPAM status as Weave users read it: the `Status:` line, the `Service: ipam` section of
// `weave status`, and `weave status ipam` (one line per peer with its share of the range). Pure:
// the API renders these from the allocator's snapshot and the topology's nicknames and
// reachability, without ever waiting on the allocator (pain #9).
import { type Cidr, cidrSize, formatCidr } from '../net/ipv4.js';
import { type PeerName, comparePeerNames } from '../net/peer-name.js';
import { type Ring, ownedCounts } from './ring.js';

export const STATUS_IDLE = 'idle';
export const STATUS_PRIMING = 'priming';
export const STATUS_READY = 'ready';
export const STATUS_WAITING = 'waiting for IP(s) to become available';
export const STATUS_ALL_UNREACHABLE = "all IP ranges owned by unreachable peers - use 'rmpeer' if they are dead";

export function awaitingConsensusStatus(quorum: number, known: number): string {
  return `awaiting consensus (quorum: ${quorum}, known: ${known})`;
}

export interface StatusFacts {
  readonly self: PeerName;
  readonly ring: Ring | undefined;
  /** Peers we currently have a route to (self always counts as reachable). */
  readonly isReachable: (peer: PeerName) => boolean;
  /** Allocations and claims waiting for space. */
  readonly pending: number;
  /** Consensus has started (Weave's "awaiting consensus" flag). */
  readonly consensusActive: boolean;
  readonly voter: boolean;
  readonly quorum: number;
  readonly knownVoters: number;
}

/** The `Status:` value, decided in Weave's order. */
export function ipamStatus(f: StatusFacts): string {
  if (f.ring) {
    const owners = [...ownedCounts(f.ring).keys()];
    if (!owners.some((p) => p === f.self || f.isReachable(p))) return STATUS_ALL_UNREACHABLE;
    return f.pending > 0 ? STATUS_WAITING : STATUS_READY;
  }
  if (f.consensusActive) return f.voter ? awaitingConsensusStatus(f.quorum, f.knownVoters) : STATUS_PRIMING;
  return STATUS_IDLE;
}

/** `label: value` with the label right-aligned to 15 columns, as every `weave status` line. */
export function statusLine(label: string, value: string): string {
  return `${label.padStart(15)}: ${value}`;
}

/** The `Service: ipam` section of `weave status`, one string per line. */
export function ipamServiceLines(status: string, range: Cidr, defaultSubnet: Cidr = range): string[] {
  return [
    statusLine('Service', 'ipam'),
    statusLine('Status', status),
    statusLine('Range', formatCidr(range)),
    statusLine('DefaultSubnet', formatCidr(defaultSubnet)),
  ];
}

/**
 * Go's `%04.1f` of a float32 percentage, which is what Weave printed: zero-padded to four
 * characters, one decimal, exact halves rounded to even.
 */
export function formatPercent(part: number, total: number): string {
  const value = Math.fround(Math.fround(Math.fround(part) * 100) / Math.fround(total));
  const tenths = value * 10; // exact: a float32 has 24 significant bits, a double 53
  let rounded = Math.round(tenths);
  if (tenths - Math.floor(tenths) === 0.5 && rounded % 2 !== 0) rounded -= 1;
  const text = (rounded / 10).toFixed(1);
  return text.padStart(4, '0');
}

export interface RangesView {
  readonly self: PeerName;
  readonly ring: Ring | undefined;
  /** Addresses handed out by self: the "(N active)" of its line. */
  readonly activeIps: number;
}

/**
 * `weave status ipam`: every peer owning part of the range with its address count and share,
 * ourselves first with "(N active)", then the others by name (Weave used Go map order, which is
 * random), unreachable ones marked. Each line ends with "\n"; trailing blanks are Weave's.
 */
export function renderIpamRanges(
  view: RangesView,
  nickname: (peer: PeerName) => string,
  isReachable: (peer: PeerName) => boolean,
): string {
  if (!view.ring) return '';
  const total = cidrSize(view.ring.range);
  const counts = ownedCounts(view.ring);
  const line = (peer: PeerName, ips: number, info: string): string =>
    `${`${peer}(${nickname(peer)})`.padEnd(37)} ${String(ips).padStart(8)} IPs (${formatPercent(ips, total)}% of total) ${info}\n`;
  let out = '';
  const ours = counts.get(view.self);
  if (ours !== undefined) out += line(view.self, ours, `(${view.activeIps} active)`);
  const others = [...counts.keys()].filter((p) => p !== view.self).sort(comparePeerNames);
  for (const peer of others) {
    out += line(peer, counts.get(peer) ?? 0, isReachable(peer) ? '' : '- unreachable!');
  }
  return out;
}
