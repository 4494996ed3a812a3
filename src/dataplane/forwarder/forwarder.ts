// The forwarding decision for each Ethernet frame, as data: where the frame goes (our TAP, which
// connections, with which overlay header) and what was learned on the way. Pure and synchronous:
// the shell reads frames, calls one of the two entry points, and carries out the decision.
//
// A frame meets these steps (Weave's rules, reference §2.2):
//
// Captured from our bridge (onCaptured):
//   1. learn its source MAC as ours (a MAC just seen at another peer: a conflict, dropped);
//   2. drop bridge-local protocols (STP and the rest of 01:80:c2:00:00:0x);
//   3. destination MAC ours: drop (the bridge delivers it);
//   4. destination MAC at peer P: unicast to P, sent to the next hop toward P;
//   5. unknown, broadcast or multicast destination: flood to our next hops of our own
//      broadcast tree, each copy addressed to that hop.
//
// Received from the overlay with header {srcPeer, dstPeer} (onReceived):
//   1. dstPeer is not us: relay toward dstPeer by the unicast routes (the MAC is not needed);
//   2. learn the source MAC at srcPeer (a move is logged);
//   3. inject it into our TAP;
//   4. unless the destination MAC is ours, flood on along srcPeer's broadcast tree (excluding the
//      hop it came from), each copy addressed to that hop.
//
// A flooded copy carries dstPeer = the hop it is sent to, so each hop of the tree runs step 2-4;
// a unicast carries the final peer, so the peers in between only relay.
import type { PeerName } from '../../net/peer-name.js';
import type { Routes } from '../../mesh/routes.js';
import type { ForwarderEvent } from './events.js';
import { isBridgeReservedMac, isGroupMac, type FrameMacs } from './mac.js';
import { MacTable, type MacTableOptions } from './mac-table.js';

/** The part of the mesh's routes the forwarder uses (established symmetric connections only). */
export type ForwardingRoutes = Pick<Routes, 'unicast' | 'broadcast'>;

/** The overlay header of a frame: the peer that captured it and the peer it is addressed to. */
export interface OverlayHeader {
  readonly srcPeer: PeerName;
  readonly dstPeer: PeerName;
}

/** Send the frame over the connection to `nextHop`, with this header. */
export interface Send extends OverlayHeader {
  readonly nextHop: PeerName;
}

export type DropReason =
  /** STP and the other link-local protocols of 01:80:c2:00:00:0x. */
  | 'bridge-reserved'
  /** Captured, for a MAC of our own bridge: the bridge has delivered it. */
  | 'local-destination'
  /** Captured from a MAC just seen at another peer. */
  | 'mac-conflict'
  /** A multicast source MAC: not a valid frame. */
  | 'group-source'
  /** For a peer we have no established route to. */
  | 'no-route'
  /** The next hop toward its peer is where it came from (routes are changing): not bounced back. */
  | 'would-return'
  /** Arrived from the overlay claiming to come from us. */
  | 'own-frame';

export interface Decision {
  /** Write the frame into our TAP. */
  readonly inject: boolean;
  /** Send a copy over each of these connections. */
  readonly sends: readonly Send[];
  /** Why the frame goes nowhere; undefined when it goes somewhere, or has nowhere to flood to. */
  readonly dropped: DropReason | undefined;
  /** What was learned, for the log. */
  readonly events: readonly ForwarderEvent[];
}

export interface ForwarderOptions {
  readonly self: PeerName;
  readonly routes: ForwardingRoutes;
  readonly macTable?: MacTableOptions;
}

const NO_EVENTS: readonly ForwarderEvent[] = Object.freeze([]);
const NO_SENDS: readonly Send[] = Object.freeze([]);

function dropped(reason: DropReason, events: readonly ForwarderEvent[] = NO_EVENTS): Decision {
  return { inject: false, sends: NO_SENDS, dropped: reason, events };
}

export class Forwarder {
  readonly self: PeerName;
  readonly macs: MacTable;
  #routes: ForwardingRoutes;

  constructor(options: ForwarderOptions) {
    this.self = options.self;
    this.#routes = options.routes;
    this.macs = new MacTable(options.self, options.macTable);
  }

  get routes(): ForwardingRoutes {
    return this.#routes;
  }

  /** New routes (the mesh recomputed them); the next frame uses them. */
  setRoutes(routes: ForwardingRoutes): void {
    this.#routes = routes;
  }

  /** A peer left the mesh: its MACs are forgotten (frames to them flood until relearned). */
  peerGone(peer: PeerName): number {
    return this.macs.forgetPeer(peer).length;
  }

  /** A frame our TAP read from the bridge, sent by a local pod (or the host). */
  onCaptured(frame: FrameMacs, now: number): Decision {
    if (isGroupMac(frame.src)) return dropped('group-source');
    let events = NO_EVENTS;
    const learned = this.macs.learnLocal(frame.src, now);
    switch (learned.kind) {
      case 'conflict':
        return dropped('mac-conflict', [{ kind: 'mac-conflict', mac: frame.src, peer: learned.peer }]);
      case 'new':
        events = [{ kind: 'local-mac', mac: frame.src }];
        break;
      case 'moved':
        events = [{ kind: 'local-mac-moved', mac: frame.src, from: learned.from }];
        break;
      case 'known':
        break;
    }
    if (isBridgeReservedMac(frame.dst)) return dropped('bridge-reserved', events);
    const owner = isGroupMac(frame.dst) ? undefined : this.macs.lookup(frame.dst, now);
    if (owner === this.self) return dropped('local-destination', events);
    if (owner !== undefined) {
      const nextHop = this.#routes.unicast.get(owner);
      // No route to the peer the MAC was last seen at: that knowledge is stale (the peer is gone
      // or cut off), so the frame floods as if the MAC were unknown, and finds it if it moved.
      if (nextHop !== undefined) {
        return { inject: false, sends: [{ nextHop, srcPeer: this.self, dstPeer: owner }], dropped: undefined, events };
      }
    }
    return { inject: false, sends: this.#flood(this.self, undefined), dropped: undefined, events };
  }

  /** A frame that arrived over the connection to `fromHop` with overlay header `header`. */
  onReceived(frame: FrameMacs, header: OverlayHeader, fromHop: PeerName, now: number): Decision {
    if (header.srcPeer === this.self) return dropped('own-frame');
    if (header.dstPeer !== this.self) {
      const nextHop = this.#routes.unicast.get(header.dstPeer);
      if (nextHop === undefined) return dropped('no-route');
      if (nextHop === fromHop) return dropped('would-return');
      return { inject: false, sends: [{ nextHop, srcPeer: header.srcPeer, dstPeer: header.dstPeer }], dropped: undefined, events: NO_EVENTS };
    }
    if (isGroupMac(frame.src)) return dropped('group-source');
    let events = NO_EVENTS;
    const learned = this.macs.learnRemote(frame.src, header.srcPeer, now);
    if (learned.kind === 'new') events = [{ kind: 'remote-mac', mac: frame.src, peer: header.srcPeer }];
    else if (learned.kind === 'moved') events = [{ kind: 'remote-mac', mac: frame.src, peer: header.srcPeer, was: learned.from }];
    if (isBridgeReservedMac(frame.dst)) return dropped('bridge-reserved', events);
    const local = !isGroupMac(frame.dst) && this.macs.lookup(frame.dst, now) === this.self;
    return { inject: true, sends: local ? NO_SENDS : this.#flood(header.srcPeer, fromHop), dropped: undefined, events };
  }

  /** One copy per next hop of `source`'s broadcast tree (but not back to `except`), addressed to that hop. */
  #flood(source: PeerName, except: PeerName | undefined): readonly Send[] {
    const hops = this.#routes.broadcast(source);
    if (hops.length === 0) return NO_SENDS;
    const sends: Send[] = [];
    for (const nextHop of hops) {
      if (nextHop !== except) sends.push({ nextHop, srcPeer: source, dstPeer: nextHop });
    }
    return sends;
  }
}
