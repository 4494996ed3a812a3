// What the TAP reader Worker needs to send the common captured frames itself (DESIGN §6: the
// TAP->UDP direction on the second core), planned from the main thread's truth. The main thread
// owns the forwarder, the MAC table and the links; whenever they change it plans a snapshot and,
// if it differs from the last one, posts it to the Worker (rare: postMessage is fine for it).
//
// A captured frame is the Worker's to send exactly when the main thread would have made ONE
// unicast of it: its destination MAC is at another peer (not a group MAC: those flood), there is a
// route to that peer, and the next hop's sleeve link is established; and its source MAC is one of
// ours (so learning it would change nothing). Everything else (floods, unknown MACs, our own
// destinations, MACs being learned or moving, links not up) stays with the main thread.
import type { PeerName } from '../../net/peer-name.js';
import { isGroupMac, type Mac } from '../forwarder/mac.js';

/** One sleeve link the Worker may send on: the same connection, counter and keys as the main thread's. */
export interface SnapshotLink {
  /** The connection uid in decimal: names the link within a snapshot and across snapshots. */
  readonly key: string;
  readonly connectionUid: bigint;
  readonly weDialled: boolean;
  readonly stride: number;
  readonly remoteIp: string;
  readonly remotePort: number;
  /** The link's SequenceCounter buffer, shared with the main thread's OutboundLink. */
  readonly sequence: SharedArrayBuffer;
  /** The send direction's first key (epoch 0), when encrypted. */
  readonly sendKey?: Uint8Array;
}

/** A destination MAC the Worker sends to: over `link`, with `dstPeer` (the MAC's peer) in the header. */
export interface SnapshotRoute {
  readonly mac: Mac;
  readonly link: string;
  readonly dstPeer: number;
}

export interface SenderSnapshot {
  /** Our peer number: the source peer of every frame the Worker sends. */
  readonly self: number;
  readonly links: readonly SnapshotLink[];
  readonly routes: readonly SnapshotRoute[];
  /** The MACs the main thread holds as ours. */
  readonly locals: readonly Mac[];
}

/** A link as the main thread sees it. */
export interface LinkView {
  readonly established: boolean;
  readonly link: SnapshotLink;
}

export interface SnapshotInput {
  readonly self: PeerName;
  /** The MAC table's live entries. */
  readonly macs: readonly { readonly mac: Mac; readonly peer: PeerName }[];
  /** Next hop toward each reachable peer. */
  readonly unicast: ReadonlyMap<PeerName, PeerName>;
  /** Our links, by the peer at their other end. */
  readonly links: ReadonlyMap<PeerName, LinkView>;
  readonly peerNumber: (peer: PeerName) => number;
  /** MACs the main thread must see whatever the table says (the fast path's heartbeat MAC). */
  readonly reserved?: (mac: Mac) => boolean;
}

/** The snapshot for the Worker: pure, from the main thread's state. */
export function planSnapshot(input: SnapshotInput): SenderSnapshot {
  const routes: SnapshotRoute[] = [];
  const locals: Mac[] = [];
  const used = new Map<string, SnapshotLink>();
  for (const { mac, peer } of input.macs) {
    if (isGroupMac(mac) || input.reserved?.(mac) === true) continue;
    if (peer === input.self) {
      locals.push(mac);
      continue;
    }
    const nextHop = input.unicast.get(peer);
    if (nextHop === undefined) continue;
    const view = input.links.get(nextHop);
    if (view === undefined || !view.established) continue;
    used.set(view.link.key, view.link);
    routes.push({ mac, link: view.link.key, dstPeer: input.peerNumber(peer) });
  }
  const byMac = (a: { mac: Mac }, b: { mac: Mac }): number => a.mac - b.mac;
  routes.sort(byMac);
  locals.sort((a, b) => a - b);
  const links = [...used.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { self: input.peerNumber(input.self), links, routes, locals };
}

/** Equal snapshots have equal signatures: the main thread posts only when this changes. */
export function snapshotSignature(s: SenderSnapshot): string {
  const links = s.links.map((l) => `${l.key}/${l.stride}/${l.remoteIp}/${l.remotePort}`).join(',');
  const routes = s.routes.map((r) => `${r.mac}>${r.link}/${r.dstPeer}`).join(',');
  return `${s.self}|${links}|${routes}|${s.locals.join(',')}`;
}
