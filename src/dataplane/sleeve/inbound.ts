// The receive path of one sleeve connection, without the socket. Before it, the shell has cut
// what the socket handed up into chunks (splitDatagram) and found the connection by each chunk's
// connection uid; a chunk then meets these stages in this order:
//
//   1. it must belong here: our connection uid, sent by the other side (not a reflection of our
//      own datagrams), sealed exactly when the connection is encrypted;
//   2. the replay window's check: a message already delivered, or too old, stops here, before
//      any copy or decryption (so late chunks of a delivered message never open a slot);
//   3. reassembly: nothing goes on until every chunk of the message is in;
//   4. opening (encrypted connections), with the message header as associated data;
//   5. the replay window accepts the sequence number: only now, after authentication, so that a
//      forged datagram cannot move the window;
//   6. a frame must be at least an Ethernet header (and the virtio_net_hdr it says it carries).
// Every refusal is counted by reason; none throws.
import type { FrameOpener } from './frame-crypto.js';
import { ETHERNET_HEADER_LENGTH, MessageKind, VIRTIO_NET_HDR_LENGTH, type Chunk } from './header.js';
import type { Reassembler, ReassemblyRejection } from './reassembler.js';
import { ReplayWindow } from '../replay/window.js';

export type InboundDrop =
  | 'foreign-connection' // another connection's uid (the shell should not have handed it here)
  | 'direction' // carries our own direction: a reflected datagram
  | 'encryption-mismatch' // plain on an encrypted connection, or the reverse
  | 'replay' // the sequence number was delivered already, or is too old to tell
  | 'duplicate' // a chunk we hold already
  | ReassemblyRejection
  | 'authentication' // did not open: altered, forged, or sealed with another key
  | 'short-frame'; // a frame message too short to be an Ethernet frame

export interface InboundMessage {
  readonly kind: MessageKind;
  readonly srcPeer: number;
  readonly dstPeer: number;
  readonly vnetHdr: boolean;
  readonly sequence: number;
  /** The opened body. May be a view of the received buffer (plain one-chunk messages). */
  readonly body: Uint8Array;
}

export type InboundResult =
  | { readonly status: 'message'; readonly message: InboundMessage }
  | { readonly status: 'pending' }
  | { readonly status: 'dropped'; readonly reason: InboundDrop };

export interface InboundOptions {
  readonly connectionUid: bigint;
  /** Our side dialled this connection (so the peer's datagrams say fromDialler = false). */
  readonly weDialled: boolean;
  /** Present exactly when the connection is encrypted; must open the peer's direction. */
  readonly opener?: FrameOpener;
  /** Shared by all connections, so that its memory bounds hold across them. */
  readonly reassembler: Reassembler;
  /** Replay window bits (default 8192). */
  readonly windowBits?: number;
}

const PENDING: InboundResult = Object.freeze({ status: 'pending' });

export class InboundLink {
  readonly connectionUid: bigint;
  private readonly peerIsDialler: boolean;
  private readonly opener: FrameOpener | undefined;
  private readonly reassembler: Reassembler;
  private readonly window: ReplayWindow;
  private readonly dropCounts = new Map<InboundDrop, number>();
  private delivered = 0;

  constructor(options: InboundOptions) {
    if (options.opener && options.opener.fromDialler === options.weDialled) {
      throw new RangeError('the opener is for our own direction of this connection');
    }
    this.connectionUid = options.connectionUid;
    this.peerIsDialler = !options.weDialled;
    this.opener = options.opener;
    this.reassembler = options.reassembler;
    this.window = new ReplayWindow(options.windowBits);
  }

  /** Refusals so far, by reason. */
  get drops(): ReadonlyMap<InboundDrop, number> {
    return this.dropCounts;
  }

  get messages(): number {
    return this.delivered;
  }

  accept(chunk: Chunk, nowMs: number): InboundResult {
    // 1. belongs here
    if (chunk.connectionUid !== this.connectionUid) return this.drop('foreign-connection');
    if (chunk.fromDialler !== this.peerIsDialler) return this.drop('direction');
    if (chunk.sealed !== (this.opener !== undefined)) return this.drop('encryption-mismatch');
    // 2. fresh
    if (!this.window.check(chunk.sequence)) return this.drop('replay');
    // 3. whole
    const r = this.reassembler.accept(chunk, nowMs);
    if (r.status === 'pending') return PENDING;
    if (r.status === 'duplicate') return this.drop('duplicate');
    if (r.status === 'rejected') return this.drop(r.reason);
    const { header, aad } = r.message;
    // 4. authentic
    let body = r.message.body;
    if (this.opener) {
      const opened = this.opener.open(header.sequence, header.keyPhase, aad, body);
      if (opened === null) return this.drop('authentication');
      body = opened;
    }
    // 5. recorded (false only if an identical copy got here first)
    if (!this.window.accept(header.sequence)) return this.drop('replay');
    // 6. sane
    if (header.kind === MessageKind.Frame && body.length < ETHERNET_HEADER_LENGTH + (header.vnetHdr ? VIRTIO_NET_HDR_LENGTH : 0)) {
      return this.drop('short-frame');
    }
    this.delivered++;
    return {
      status: 'message',
      message: { kind: header.kind, srcPeer: header.srcPeer, dstPeer: header.dstPeer, vnetHdr: header.vnetHdr, sequence: header.sequence, body },
    };
  }

  /** The connection closed: release what the reassembler holds for it. */
  close(): void {
    this.reassembler.forgetSender(this.connectionUid);
  }

  private drop(reason: InboundDrop): InboundResult {
    this.dropCounts.set(reason, (this.dropCounts.get(reason) ?? 0) + 1);
    return { status: 'dropped', reason };
  }
}
