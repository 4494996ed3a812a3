// The receive side of the sleeve as the TAP reader Worker runs it, without the socket: each datagram
// is cut into chunks (splitDatagram), each chunk goes to its link's InboundLink (replay window,
// reassembly, opening: the same code the main thread used, now with one owner), and each message
// that comes out is either written into the TAP here or handed to the main thread decoded
// (plan.ts decides). Input never throws: refusals are counted by reason, as before.
import { splitDatagram } from '../sleeve/chunker.js';
import { FrameOpener } from '../sleeve/frame-crypto.js';
import { MessageKind, SleeveFormatError } from '../sleeve/header.js';
import { InboundLink } from '../sleeve/inbound.js';
import { Reassembler } from '../sleeve/reassembler.js';
import { macFromBytes, type Mac } from '../forwarder/mac.js';
import { VIRTIO_NET_HDR_LEN } from '../tap/virtio-net-hdr.js';
import { decide, RemoteMacNotes, type ReceiverLink, type ReceiverSnapshot, type ReceiverState } from './plan.js';
import type { ReceiverControl } from './counters.js';
import { markCongestion } from './ecn.js';

/** A drop reason reaching this count gets one log line on the main thread (as DataPlane's own drops). */
export const DROP_NOTE_THRESHOLD = 100;

/** What the Worker hands the main thread. */
export type ReceiverNote =
  /** A message for the main thread; `injected`: the Worker has injected the frame (or dropped it, counted): only flood it on. */
  | {
    readonly type: 'message'; readonly link: string; readonly kind: MessageKind; readonly srcPeer: number; readonly dstPeer: number;
    readonly vnetHdr: boolean; readonly body: Uint8Array; readonly injected: boolean;
  }
  /** Frames from `mac` at peer `peer` were injected by the Worker: learn or refresh it. */
  | { readonly type: 'seen'; readonly mac: Mac; readonly peer: number }
  /** Malformed datagrams reached `total` (posted once per power of ten). */
  | { readonly type: 'malformed'; readonly from: string; readonly reason: string; readonly total: number }
  /** A drop reason reached DROP_NOTE_THRESHOLD. */
  | { readonly type: 'drops'; readonly reason: string; readonly total: number }
  /** The latest snapshot could not be applied: every chunk is refused until the next. */
  | { readonly type: 'snapshot-error'; readonly message: string };

export interface SleeveReceiverOptions {
  readonly control: ReceiverControl;
  readonly tapVnetHdr: boolean;
  /** Writes one packet into the TAP; false if the kernel dropped or refused it. */
  readonly inject: (packet: Uint8Array) => boolean;
  readonly notify: (note: ReceiverNote) => void;
  readonly now?: () => number;
  /**
   * Asked once per unicast frame about to be injected: true if the receive queue is congested and
   * this frame should carry the signal (CoDel's verdict, socket-receiver.ts). Absent: never.
   */
  readonly congested?: () => boolean;
}

interface LinkEntry {
  readonly spec: ReceiverLink;
  readonly in: InboundLink;
}

export class SleeveReceiver {
  private readonly reassembler = new Reassembler();
  private readonly byUid = new Map<bigint, LinkEntry>();
  private readonly notes = new RemoteMacNotes();
  private state: ReceiverState;
  private malformedLogged = 0;
  private readonly now: () => number;

  constructor(private readonly options: SleeveReceiverOptions) {
    this.state = { self: 0, locals: new Set(), handAllFrames: true, tapVnetHdr: options.tapVnetHdr };
    this.now = options.now ?? Date.now;
  }

  /** The main thread's latest view. Links that stay keep their replay window and pending chunks. */
  apply(s: ReceiverSnapshot): void {
    const next = new Map<bigint, LinkEntry>();
    for (const spec of s.links) {
      const had = this.byUid.get(spec.connectionUid);
      if (had !== undefined && sameLink(had.spec, spec)) {
        next.set(spec.connectionUid, had);
        continue;
      }
      const opener = spec.receiveKey === undefined ? undefined : new FrameOpener(spec.receiveKey, !spec.weDialled);
      next.set(spec.connectionUid, {
        spec,
        in: new InboundLink({ connectionUid: spec.connectionUid, weDialled: spec.weDialled, reassembler: this.reassembler, ...(opener ? { opener } : {}) }),
      });
    }
    let removed = false;
    for (const [uid, entry] of this.byUid) {
      if (next.get(uid) !== entry) {
        entry.in.close();
        removed = true;
      }
    }
    // The main thread forgets a gone peer's MACs: tell it of every MAC again at once.
    if (removed) this.notes.reset();
    this.byUid.clear();
    for (const [uid, entry] of next) this.byUid.set(uid, entry);
    this.state = { self: s.self, locals: new Set(s.locals), handAllFrames: s.handAllFrames, tapVnetHdr: this.options.tapVnetHdr };
  }

  /** Drops everything (a snapshot this thread cannot use): every chunk is an unknown connection until the next. */
  clear(): void {
    for (const entry of this.byUid.values()) entry.in.close();
    this.byUid.clear();
  }

  /** One datagram as the socket handed it up (UDP_GRO may have coalesced several); `from` names the sender for logs. */
  onDatagram(datagram: Uint8Array, from: () => string): void {
    const c = this.options.control;
    c.add('receivedBytes', datagram.byteLength);
    const now = this.now();
    for (const chunk of splitDatagram(datagram)) {
      if (chunk instanceof SleeveFormatError) {
        this.countMalformed(from, chunk.reason);
        continue;
      }
      const entry = this.byUid.get(chunk.connectionUid);
      if (entry === undefined) {
        c.add('unknownConnection');
        this.drop('unknown-connection');
        continue;
      }
      const result = entry.in.accept(chunk, now);
      if (result.status === 'pending') continue;
      if (result.status === 'dropped') {
        this.drop(result.reason);
        continue;
      }
      c.add('received');
      const m = result.message;
      const at = m.vnetHdr ? VIRTIO_NET_HDR_LEN : 0;
      // InboundLink guarantees a frame holds an Ethernet header; other kinds carry no MACs.
      const isFrame = m.kind === MessageKind.Frame && m.body.byteLength >= at + 14;
      const src = isFrame ? macFromBytes(m.body, at + 6) : undefined;
      const action = src === undefined ? 'hand' : decide({
        kind: m.kind, srcPeer: m.srcPeer, dstPeer: m.dstPeer, vnetHdr: m.vnetHdr, dst: macFromBytes(m.body, at), src,
      }, this.state);
      // Injected here (written, or dropped and counted): the main thread must not write it again.
      const injected = action !== 'hand';
      if (injected && src !== undefined) {
        if (action !== 'inject' || this.admit(m.body, at)) this.inject(m.body);
        if (this.notes.due(src, m.srcPeer, now)) this.options.notify({ type: 'seen', mac: src, peer: m.srcPeer });
        if (action === 'inject') continue;
      }
      this.options.notify({
        type: 'message', link: entry.spec.key, kind: m.kind, srcPeer: m.srcPeer, dstPeer: m.dstPeer, vnetHdr: m.vnetHdr,
        // A copy of just the body: posting a view would clone its whole underlying buffer, which is reused.
        body: m.body.slice(), injected,
      });
    }
  }

  /**
   * Whether a unicast frame goes on: when CoDel asks for a congestion signal, a frame that
   * negotiated ECN is marked CE and goes on; any other is dropped and counted (queue-delay).
   */
  private admit(frame: Uint8Array, at: number): boolean {
    if (this.options.congested?.() !== true) return true;
    if (markCongestion(frame, at)) {
      this.options.control.add('ecnMarked');
      return true;
    }
    this.drop('queue-delay');
    return false;
  }

  private inject(packet: Uint8Array): void {
    if (this.options.inject(packet)) {
      this.options.control.add('injected');
      this.options.control.add('injectedBytes', packet.byteLength);
    } else {
      this.drop('tap-write');
    }
  }

  private drop(reason: string): void {
    const total = this.options.control.drop(reason);
    if (total === DROP_NOTE_THRESHOLD) this.options.notify({ type: 'drops', reason, total });
  }

  private countMalformed(from: () => string, reason: string): void {
    this.options.control.add('malformed');
    this.drop(`malformed-${reason}`);
    const total = this.options.control.value('malformed');
    // Once per power of ten, so a flood of garbage cannot flood the log.
    if (total >= 10 ** this.malformedLogged) {
      this.malformedLogged++;
      this.options.notify({ type: 'malformed', from: from(), reason, total });
    }
  }
}

function sameLink(a: ReceiverLink, b: ReceiverLink): boolean {
  return a.connectionUid === b.connectionUid && a.weDialled === b.weDialled && sameKey(a.receiveKey, b.receiveKey);
}

function sameKey(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a).equals(Buffer.from(b));
}
