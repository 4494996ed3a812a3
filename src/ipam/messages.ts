// What the IPAM gossip channel carries, as typed values. Encoding them (protobuf, see
// proto/weft.proto) is the shell's business; the pure core only makes and takes these.
//
//   gossip          the mergeable state: the ring once it exists, the consensus claims before.
//                   Broadcast after every local change, sent whole to a new neighbour and
//                   periodically to random neighbours (anti-entropy), and as the reply to a
//                   space or address request. Merging it twice changes nothing.
//   space-request   unicast to the chosen donor: "I have no free space, give me some".
//   space-denied    unicast reply when the donor has nothing to give.
//   address-request unicast to the owner of an address we are asked to claim.
//   address-denied  unicast reply when the owner cannot give that address (it is in use).
import { type PeerName } from '../net/peer-name.js';
import { type Claims } from './consensus.js';
import { type Ring } from './ring.js';

export interface GossipMessage {
  readonly kind: 'gossip';
  readonly ring?: Ring;
  /** Present while the sender has no ring and takes part in, or asks for, consensus. */
  readonly consensus?: Claims;
}

export interface SpaceRequest {
  readonly kind: 'space-request';
}

export interface SpaceDenied {
  readonly kind: 'space-denied';
}

export interface AddressRequest {
  readonly kind: 'address-request';
  readonly address: number;
}

export interface AddressDenied {
  readonly kind: 'address-denied';
  readonly address: number;
  readonly reason: string;
}

export type IpamMessage = GossipMessage | SpaceRequest | SpaceDenied | AddressRequest | AddressDenied;

/** Where a message goes: one peer (unicast, relayed along routes) or every reachable peer. */
export type Destination = { readonly to: PeerName } | { readonly broadcast: true };

export type Outgoing = Destination & { readonly message: IpamMessage };

export function unicast(to: PeerName, message: IpamMessage): Outgoing {
  return { to, message };
}

export function broadcast(message: IpamMessage): Outgoing {
  return { broadcast: true, message };
}
