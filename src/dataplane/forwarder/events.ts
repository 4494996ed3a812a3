// What the forwarder learned while deciding, handed back for the shell to log (DESIGN §7: a MAC
// that appears or moves is a state change an operator looks for in `kubectl logs`).
import type { PeerName } from '../../net/peer-name.js';
import { formatMac, type Mac } from './mac.js';

export type ForwarderEvent =
  /** A MAC seen for the first time on our bridge. */
  | { readonly kind: 'local-mac'; readonly mac: Mac }
  /** A MAC that was at another peer now sends from our bridge (not heard from there lately). */
  | { readonly kind: 'local-mac-moved'; readonly mac: Mac; readonly from: PeerName }
  /** A MAC at another peer, new to us or moved there (`was`: where it was, possibly ourselves). */
  | { readonly kind: 'remote-mac'; readonly mac: Mac; readonly peer: PeerName; readonly was?: PeerName }
  /** A frame captured on our bridge from a MAC just seen at another peer: dropped. */
  | { readonly kind: 'mac-conflict'; readonly mac: Mac; readonly peer: PeerName };

/** Weave's wording; `describePeer` may add the nickname ("name(nick)"). */
export function describeForwarderEvent(e: ForwarderEvent, describePeer: (p: PeerName) => string = (p) => p): string {
  const mac = formatMac(e.mac);
  switch (e.kind) {
    case 'local-mac':
      return `Discovered local MAC ${mac}`;
    case 'local-mac-moved':
      return `Discovered local MAC ${mac} (was at ${describePeer(e.from)})`;
    case 'remote-mac':
      return e.was === undefined
        ? `Discovered remote MAC ${mac} at ${describePeer(e.peer)}`
        : `Discovered remote MAC ${mac} at ${describePeer(e.peer)} (was at ${describePeer(e.was)})`;
    case 'mac-conflict':
      return `Captured frame from MAC (${mac}) associated with another peer ${describePeer(e.peer)}`;
  }
}
