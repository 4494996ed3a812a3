// A mesh of forwarders in one process: every peer has its own Forwarder with the routes the real
// route computation gives it over one shared topology, and frames are passed along the sends each
// decision asks for, hop by hop, until none is left. Used by the property tests.
import fc from 'fast-check';
import { ok } from 'node:assert/strict';
import type { PeerName } from '../../../src/net/peer-name.js';
import { meshGraphArb, meshPeer, meshRecords, type MeshGraph } from '../../lib/random-mesh.js';
import { computeRoutes } from '../../../src/mesh/routes.js';
import type { PeerRecord, Topology } from '../../../src/mesh/topology.js';
import { Forwarder, type Decision } from '../../../src/dataplane/forwarder/forwarder.js';
import type { FrameMacs } from '../../../src/dataplane/forwarder/mac.js';
import type { MacTableOptions } from '../../../src/dataplane/forwarder/mac-table.js';

export const peer = meshPeer;
export type Graph = MeshGraph;
export const graphArb = (maxPeers: number): fc.Arbitrary<Graph> =>
  meshGraphArb({ minPeers: 2, maxPeers, extraPerPeer: 2, kinds: ['both', 'both', 'both', 'oneSided', 'halfEstablished'] });
export const buildPeers = (g: Graph): Map<PeerName, PeerRecord> => meshRecords(g, 'sorted');

/** Which links the data plane may use: listed as established by both ends. */
function usableLinks(peers: Map<PeerName, PeerRecord>): Set<string> {
  const links = new Set<string>();
  for (const r of peers.values()) {
    for (const c of r.connections) {
      const back = peers.get(c.name)?.connections.find((x) => x.name === r.name);
      if (c.established && back?.established === true) links.add(`${r.name}>${c.name}`);
    }
  }
  return links;
}

export interface Delivery {
  /** How many times each peer wrote the frame into its TAP. */
  readonly injected: Map<PeerName, number>;
  /** Every decision taken by a peer that received the frame, in order. */
  readonly hops: { readonly at: PeerName; readonly decision: Decision }[];
  /** The decision of the capturing peer. */
  readonly captured: Decision;
}

export class MeshSim {
  readonly peers: Map<PeerName, PeerRecord>;
  readonly forwarders = new Map<PeerName, Forwarder>();
  readonly #links: Set<string>;

  constructor(
    g: Graph,
    readonly macTable: MacTableOptions = {},
  ) {
    this.peers = buildPeers(g);
    this.#links = usableLinks(this.peers);
    for (const name of this.peers.keys()) this.reset(name);
  }

  get names(): PeerName[] {
    return [...this.peers.keys()];
  }

  /** A fresh forwarder (empty MAC table) for `name`. */
  reset(name: PeerName): Forwarder {
    const topology: Topology = { self: name, peers: this.peers };
    const f = new Forwarder({ self: name, routes: computeRoutes(topology), macTable: this.macTable });
    this.forwarders.set(name, f);
    return f;
  }

  fwd(name: PeerName): Forwarder {
    const f = this.forwarders.get(name);
    if (f === undefined) throw new Error(`no peer ${name}`);
    return f;
  }

  /** A frame captured at `at`, carried through the mesh until every copy has arrived. */
  capture(at: PeerName, frame: FrameMacs, now: number): Delivery {
    const captured = this.fwd(at).onCaptured(frame, now);
    const injected = new Map<PeerName, number>();
    const hops: { at: PeerName; decision: Decision }[] = [];
    const queue = captured.sends.map((s) => ({ from: at, send: s }));
    for (let i = 0; i < queue.length; i++) {
      const { from, send } = queue[i]!;
      ok(this.#links.has(`${from}>${send.nextHop}`), `${from} sent over ${from} -> ${send.nextHop}, not an established symmetric link`);
      const decision = this.fwd(send.nextHop).onReceived(frame, send, from, now);
      hops.push({ at: send.nextHop, decision });
      if (decision.inject) injected.set(send.nextHop, (injected.get(send.nextHop) ?? 0) + 1);
      for (const s of decision.sends) queue.push({ from: send.nextHop, send: s });
      ok(queue.length <= this.peers.size * this.peers.size, 'a storm: more copies than the mesh can explain');
    }
    return { injected, hops, captured };
  }
}
