// The mesh's view of a data path ("overlay" in Weave's words): told when a connection comes and
// goes; tells the router, through Router.setLinkState, when the connection's data path is
// established (its own heartbeats are answered) and with what attributes (name, mtu).
import type { PeerName } from '../net/peer-name.js';

export interface OverlayConnection {
  readonly peer: PeerName;
  readonly remoteIp: string;
  /** The peer's mesh port, which its data path listens on too. */
  readonly remotePort: number;
  /** The same number at both ends: the XOR of both connection ids. */
  readonly connectionUid: bigint;
  readonly weDialled: boolean;
  /** The connection's session key when the mesh has a password. */
  readonly sessionKey?: Uint8Array;
  /** The data paths the peer offers (its Hello), most preferred first. */
  readonly remoteOverlays?: readonly string[];
}

export interface LinkState {
  readonly established: boolean;
  readonly attrs: Readonly<Record<string, string | number | boolean>>;
  readonly reason: string;
}

export interface Overlay {
  connectionUp(c: OverlayConnection): void;
  connectionDown(peer: PeerName): void;
}
