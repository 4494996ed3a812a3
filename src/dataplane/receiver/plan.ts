// What the sleeve's receive path in the TAP reader Worker does with each message it opened, pure
// (DESIGN §6: the UDP->TAP direction off the main thread). The Worker owns the receive side of every link (reassembler,
// replay window, opener): each message is opened there exactly once. It then either writes the
// frame into the TAP itself, or hands the decoded message to the main thread, which owns the
// forwarder, the heartbeats and the relays. The rules follow Forwarder.onReceived: the Worker
// takes only the frames for which the main thread would inject and do nothing else, or (group
// destinations) inject and flood on, where it injects and hands over the flooding.
import { isBridgeReservedMac, isGroupMac, type Mac } from '../forwarder/mac.js';
import { MessageKind } from '../sleeve/header.js';

/** One link's receive side, as the main thread describes it to the Worker. */
export interface ReceiverLink {
  /** The connection uid in decimal: names the link across snapshots. */
  readonly key: string;
  readonly connectionUid: bigint;
  readonly weDialled: boolean;
  /** The receive direction's key, when encrypted. */
  readonly receiveKey?: Uint8Array;
}

export interface ReceiverSnapshot {
  /** Our peer number. */
  readonly self: number;
  /** Every link that is up (established or not: heartbeats arrive before it is). */
  readonly links: readonly ReceiverLink[];
  /** The MACs the main thread holds as ours: unicasts to them are injected by the Worker. */
  readonly locals: readonly Mac[];
  /**
   * Hand every frame to the main thread (the fast path is on: it answers some frames with
   * announcements and takes its heartbeats out of them).
   */
  readonly handAllFrames: boolean;
}

/** Equal snapshots have equal signatures: the main thread posts only when this changes. */
export function receiverSignature(s: ReceiverSnapshot): string {
  const links = s.links.map((l) => `${l.key}/${l.weDialled ? 1 : 0}/${l.receiveKey === undefined ? 'p' : Buffer.from(l.receiveKey).toString('hex')}`);
  return `${s.self}|${links.join(',')}|${s.locals.join(',')}|${s.handAllFrames ? 1 : 0}`;
}

/** What the Worker knows when it decides. */
export interface ReceiverState {
  readonly self: number;
  readonly locals: ReadonlySet<Mac>;
  readonly handAllFrames: boolean;
  /** Whether our TAP carries the virtio_net_hdr. */
  readonly tapVnetHdr: boolean;
}

export interface OpenedMessage {
  readonly kind: MessageKind;
  readonly srcPeer: number;
  readonly dstPeer: number;
  readonly vnetHdr: boolean;
  readonly dst: Mac;
  readonly src: Mac;
}

export type ReceiverAction =
  /** Write it into the TAP; nothing else is to be done with it. */
  | 'inject'
  /** Write it into the TAP, and hand it over for flooding on along the source's broadcast tree. */
  | 'inject-and-hand'
  /** Hand it over: heartbeats, relays, unknown destinations, anything unusual. */
  | 'hand';

export function decide(m: OpenedMessage, s: ReceiverState): ReceiverAction {
  if (m.kind !== MessageKind.Frame || s.handAllFrames) return 'hand';
  // A frame our TAP cannot take as it is (segmentation or an empty header to add): the main thread converts.
  if (m.vnetHdr !== s.tapVnetHdr) return 'hand';
  // Relays, our own frames coming back, and invalid sources are the forwarder's to judge.
  if (m.dstPeer !== s.self || m.srcPeer === s.self || isGroupMac(m.src)) return 'hand';
  if (isBridgeReservedMac(m.dst)) return 'hand';
  if (isGroupMac(m.dst)) return 'inject-and-hand';
  return s.locals.has(m.dst) ? 'inject' : 'hand';
}

/** How often, at most, the Worker tells the main thread a remote MAC is alive (as the send side's `seen`). */
export const DEFAULT_NOTE_EVERY_MS = 1000;
/** MACs remembered for rate limiting; past it the memory starts over (MACs come off the network). */
const MAX_NOTED = 16_384;

/**
 * Rate limit of the "MAC seen at peer" notes for the frames the Worker injects: the main thread
 * learns a MAC at once when it is new or moved (its log line and the send side's snapshot depend
 * on it), and otherwise once per `everyMs` so that its MAC table entry does not expire.
 */
export class RemoteMacNotes {
  private readonly noted = new Map<Mac, { peer: number; at: number }>();

  constructor(private readonly everyMs = DEFAULT_NOTE_EVERY_MS) {}

  /** After a frame from `mac` at `peer` was injected: true if the main thread should hear of it. */
  due(mac: Mac, peer: number, now: number): boolean {
    const last = this.noted.get(mac);
    if (last !== undefined && last.peer === peer && now - last.at < this.everyMs) return false;
    if (last === undefined && this.noted.size >= MAX_NOTED) this.noted.clear();
    this.noted.set(mac, { peer, at: now });
    return true;
  }

  /** The main thread forgot MACs (a peer left): hear of every MAC again at once. */
  reset(): void {
    this.noted.clear();
  }
}
