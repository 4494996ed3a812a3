// The send path of one sleeve connection, without the socket. A message (a frame with its
// virtio_net_hdr, a heartbeat, a PMTU probe...) meets these stages in this order:
//
//   1. number it: the sealer's next sequence number when the connection is encrypted, our own
//      counter otherwise (the number is the message id chunks are reassembled by);
//   2. build its header (kind, flags, source and destination peers, connection uid, sequence, and
//      the chunk count, which follows from the sealed size and the stride);
//   3. seal the body once, with the header bytes as associated data (encrypted connections);
//   4. lay the chunks out back to back: each buffer returned is ONE send() on a socket with
//      UDP_SEGMENT = stride (or, without it, one send per `stride` bytes).
import { chunkCountFor, chunkPayloadSize, layoutChunks, MAX_UDP_PAYLOAD, type SendAllocator } from './chunker.js';
import type { FrameSealer } from './frame-crypto.js';
import { SequenceCounter } from './sequence-counter.js';
import { AEAD_TAG_LENGTH, MAX_CHUNKS, MAX_MESSAGE_LENGTH, MAX_SEQUENCE, messageHeaderBytes, type MessageHeader, type MessageKind } from './header.js';

export interface OutboundOptions {
  /** The mesh connection's uid (the XOR of both sides' connection ids). */
  readonly connectionUid: bigint;
  /** Our side dialled this connection. */
  readonly weDialled: boolean;
  /** Chunk datagram size: chunkStride(verified PMTU). */
  readonly stride: number;
  /** Present exactly when the connection is encrypted; must seal the direction we send. */
  readonly sealer?: FrameSealer;
  /** Bytes per send (default 65507, the largest UDP payload). */
  readonly maxSendBytes?: number;
  /**
   * The sequence counter of a plain connection, when another thread sends on it too (an
   * encrypted connection's is its sealer's). A new one otherwise.
   */
  readonly sequence?: SequenceCounter;
}

export interface OutboundMessage {
  readonly kind: MessageKind;
  /** 48-bit peer names as numbers. */
  readonly srcPeer: number;
  readonly dstPeer: number;
  /** The body starts with a virtio_net_hdr. */
  readonly vnetHdr: boolean;
  /** The body, whole or in pieces (e.g. the virtio_net_hdr and the frame). */
  readonly body: Uint8Array | readonly Uint8Array[];
}

/** The body length that fills exactly one chunk of `stride` bytes (a PMTU probe's). */
export function singleChunkBody(stride: number, encrypted: boolean): number {
  return chunkPayloadSize(stride) - (encrypted ? AEAD_TAG_LENGTH : 0);
}

export class OutboundLink {
  readonly connectionUid: bigint;
  readonly weDialled: boolean;
  private readonly sealer: FrameSealer | undefined;
  private readonly maxSendBytes: number;
  private currentStride: number;
  /** Where message numbers come from: the sealer's counter when encrypted. */
  readonly sequence: SequenceCounter;

  constructor(options: OutboundOptions) {
    if (options.sealer && options.sealer.fromDialler !== options.weDialled) {
      throw new RangeError('the sealer is for the other direction of this connection');
    }
    this.connectionUid = options.connectionUid;
    this.weDialled = options.weDialled;
    this.sealer = options.sealer;
    this.maxSendBytes = options.maxSendBytes ?? MAX_UDP_PAYLOAD;
    if (options.sealer && options.sequence && options.sequence !== options.sealer.sequence) {
      throw new RangeError('an encrypted link numbers with its sealer\'s counter');
    }
    this.sequence = options.sealer?.sequence ?? options.sequence ?? SequenceCounter.create();
    chunkCountFor(0, options.stride); // validates the stride
    this.currentStride = options.stride;
  }

  get stride(): number {
    return this.currentStride;
  }

  /** A new verified path MTU: later messages are cut to the new stride. */
  set stride(stride: number) {
    chunkCountFor(0, stride);
    this.currentStride = stride;
  }

  get encrypted(): boolean {
    return this.sealer !== undefined;
  }

  /** The largest body (before sealing) that pack accepts at the current stride. */
  get maxBody(): number {
    return this.maxBodyAt(this.currentStride);
  }

  private maxBodyAt(stride: number): number {
    chunkCountFor(0, stride); // validates the stride
    const sealed = Math.min(MAX_MESSAGE_LENGTH, MAX_CHUNKS * chunkPayloadSize(stride));
    return sealed - (this.sealer ? AEAD_TAG_LENGTH : 0);
  }

  /** The sealer asks for new keys (a new connection) soon. */
  get needsRekey(): boolean {
    return this.sealer?.needsRekey ?? false;
  }

  get nextSequence(): number {
    return this.sequence.next;
  }

  /**
   * The buffers to send for one message. Throws a RangeError for what is a bug or a local limit,
   * never a peer's doing: a body above maxBody, or no sequence numbers left. `stride` overrides
   * the link's for this message: a PMTU probe of a candidate MTU goes as one datagram of
   * chunkStride(candidate) bytes, its body singleChunkBody(that stride, encrypted) long.
   * `allocate` gives the send buffers' memory (see SendArena).
   */
  pack(message: OutboundMessage, stride = this.currentStride, allocate?: SendAllocator): Buffer[] {
    const pieces: readonly Uint8Array[] = message.body instanceof Uint8Array ? [message.body] : message.body;
    let plainLength = 0;
    for (const p of pieces) plainLength += p.length;
    const maxBody = this.maxBodyAt(stride);
    if (plainLength > maxBody) throw new RangeError(`message body of ${plainLength} bytes: at most ${maxBody} at stride ${stride}`);
    // Checked before a number is taken: a refused message spends none.
    checkPeerNumber(message.srcPeer, 'source peer');
    checkPeerNumber(message.dstPeer, 'destination peer');
    const sealedLength = plainLength + (this.sealer ? AEAD_TAG_LENGTH : 0);
    const chunkCount = chunkCountFor(sealedLength, stride);
    // 1. number: taken atomically, so another thread sending on this link never gets it too
    const sequence = this.sealer ? this.sealer.take() : this.sequence.take();
    // 2. header
    const header: MessageHeader = {
      kind: message.kind,
      vnetHdr: message.vnetHdr,
      sealed: this.sealer !== undefined,
      fromDialler: this.weDialled,
      keyPhase: this.sealer ? this.sealer.phaseOf(sequence) : 0,
      srcPeer: message.srcPeer,
      dstPeer: message.dstPeer,
      connectionUid: this.connectionUid,
      sequence,
      chunkCount,
    };
    // 3. seal
    const body = this.sealer ? this.sealer.sealTaken(sequence, messageHeaderBytes(header), pieces) : pieces;
    // 4. chunks
    const sends = layoutChunks(header, body, stride, this.maxSendBytes, allocate);
    return sends;
  }
}

function checkPeerNumber(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 48) throw new RangeError(`${what} ${n}: not a 48-bit peer number`);
}
