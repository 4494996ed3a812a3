// The interface between the mesh and whoever gossips over it (DESIGN §3–4): the topology is one
// channel, IPAM another. A channel only sees payload bytes and peer names; relaying along routes,
// framing and encryption stay inside the mesh.
import type { PeerName } from '../net/peer-name.js';

/** What a channel's owner implements. */
export interface GossipHandler {
  /** A message a direct neighbour sent to us alone. */
  onGossip(from: PeerName, payload: Uint8Array): void;
  /** A broadcast from `src`, delivered once to every reachable peer. */
  onBroadcast(src: PeerName, payload: Uint8Array): void;
  /** A message from `src` addressed to us. */
  onUnicast(src: PeerName, payload: Uint8Array): void;
  /** A direct connection to `peer` is up: a good moment to offer it our state. */
  onNeighbourUp?(peer: PeerName): void;
}

/** What the mesh gives a channel to send with. */
export interface GossipChannel {
  readonly name: string;
  /** To one direct neighbour; false when there is no connection to it. */
  sendToNeighbour(peer: PeerName, payload: Uint8Array): boolean;
  /** To every direct neighbour except `except`. */
  sendToNeighbours(payload: Uint8Array, except?: PeerName): void;
  /** To every reachable peer, once each, along our broadcast tree. */
  broadcast(payload: Uint8Array): void;
  /** To one peer, relayed hop by hop; false when it is unreachable. */
  unicast(dst: PeerName, payload: Uint8Array): boolean;
  /** Our direct neighbours now. */
  neighbours(): PeerName[];
}
