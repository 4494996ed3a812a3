// The initial division of the range among the agreed members: equal contiguous shares in sorted
// name order. Weave halved the range recursively so that every share was a CIDR block, which gives
// three peers 50/25/25; nothing in the ring needs aligned blocks, so weft splits evenly: with
// `size = q·N + r` the first r members get q+1 addresses and the others q, so no two shares differ
// by more than one address and the shares tile the range exactly.
import { type Cidr, cidrSize } from '../net/ipv4.js';
import { type PeerName, comparePeerNames } from '../net/peer-name.js';

export interface Share {
  readonly owner: PeerName;
  /** First address of the share. */
  readonly start: number;
  /** One past the last address; `end - start` may be 0 when there are more members than addresses. */
  readonly end: number;
}

/** Sorted, duplicate-free member list: the canonical form every peer computes the ring from. */
export function normalizeMembers(members: Iterable<PeerName>): PeerName[] {
  return [...new Set(members)].sort(comparePeerNames);
}

/** Every member's share, in sorted name order. Throws when there are no members. */
export function divideEvenly(range: Cidr, members: Iterable<PeerName>): Share[] {
  const sorted = normalizeMembers(members);
  if (sorted.length === 0) throw new RangeError('cannot divide the IP range among zero peers');
  const size = cidrSize(range);
  const base = Math.floor(size / sorted.length);
  const extra = size - base * sorted.length;
  const shares: Share[] = [];
  let start = range.start;
  sorted.forEach((owner, i) => {
    const end = start + base + (i < extra ? 1 : 0);
    shares.push({ owner, start, end });
    start = end;
  });
  return shares;
}
