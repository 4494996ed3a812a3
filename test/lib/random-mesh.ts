// Random meshes for property tests: a spanning tree of established symmetric links (so every peer
// reaches every other) plus extra links, some of them one-sided or not established, turned into
// the peer records every peer of such a mesh would hold.
import fc from 'fast-check';
import { peerNameFromNumber, type PeerName } from '../../src/net/peer-name.js';
import type { ConnectionSummary, PeerRecord } from '../../src/mesh/topology.js';

/** Peer i; names are spread out so that name order (which routes sort by) differs from index order. */
export const meshPeer = (i: number): PeerName => peerNameFromNumber(0x0200_0000_0000 + ((i * 7919) % 1000));

export type LinkKind = 'both' | 'oneSided' | 'halfEstablished';

export interface MeshGraph {
  readonly n: number;
  readonly tree: readonly (readonly [number, number])[];
  readonly extra: readonly { readonly a: number; readonly b: number; readonly kind: LinkKind }[];
  /** Seeds the order of connection lists and records when they are shuffled. */
  readonly shuffle: number;
}

export interface MeshGraphOptions {
  readonly minPeers: number;
  readonly maxPeers: number;
  /** At most this many extra links per peer. */
  readonly extraPerPeer: number;
  /** Drawn uniformly for each extra link: repeat a kind to weight it. */
  readonly kinds: readonly LinkKind[];
}

export function meshGraphArb(o: MeshGraphOptions): fc.Arbitrary<MeshGraph> {
  return fc.integer({ min: o.minPeers, max: o.maxPeers }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      tree: fc.tuple(...Array.from({ length: n - 1 }, (_, i) => fc.integer({ min: 0, max: i }).map((p) => [p, i + 1] as const))),
      extra: fc.array(
        fc.record({
          a: fc.integer({ min: 0, max: n - 1 }),
          b: fc.integer({ min: 0, max: n - 1 }),
          kind: fc.constantFrom<LinkKind>(...o.kinds),
        }),
        { maxLength: o.extraPerPeer * n },
      ),
      shuffle: fc.nat(),
    }),
  );
}

/**
 * The peers map every peer of the mesh holds. `order` 'shuffled' scrambles connection lists and
 * records by `g.shuffle` (for checks that the result does not depend on order); 'sorted' lists
 * connections by name.
 */
export function meshRecords(g: MeshGraph, order: 'shuffled' | 'sorted'): Map<PeerName, PeerRecord> {
  const lists = Array.from({ length: g.n }, () => new Map<number, boolean>()); // remote -> established
  for (const [a, b] of g.tree) {
    lists[a]!.set(b, true);
    lists[b]!.set(a, true);
  }
  for (const { a, b, kind } of g.extra) {
    if (a === b || lists[a]!.has(b) || lists[b]!.has(a)) continue;
    lists[a]!.set(b, true);
    if (kind !== 'oneSided') lists[b]!.set(a, kind === 'both');
  }
  let seed = g.shuffle;
  const arrange = <T extends { readonly name: PeerName }>(xs: T[]): T[] => {
    if (order === 'sorted') return xs.sort((x, y) => (x.name < y.name ? -1 : 1));
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const j = seed % (i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  };
  const records = lists.map((l, i): PeerRecord => {
    const connections: ConnectionSummary[] = [...l].map(([r, established]) => ({
      name: meshPeer(r),
      address: `10.0.0.${r}:6783`,
      outbound: i < r,
      established,
    }));
    return { name: meshPeer(i), nickname: `n${i}`, uid: BigInt(i + 1), version: 1, shortId: i, connections: arrange(connections) };
  });
  return new Map((order === 'shuffled' ? arrange(records) : records).map((r) => [r.name, r]));
}
