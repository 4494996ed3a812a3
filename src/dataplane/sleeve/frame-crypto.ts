// Sealing of sleeve messages when the mesh has a password (DESIGN §6).
//
//   1. Keys: each direction of a connection gets its own 32-byte key, derived with HKDF-SHA256
//      from the connection's session key (the one the control plane agreed with X25519 and the
//      password). The salt is the connection uid (so the keys belong to the uid the header names);
//      the info string says what the key is for and which way it goes. A message sealed for one
//      direction therefore never opens in the other, and a reflected datagram fails.
//   2. Nonce (12 bytes): 4 fixed bytes naming the direction, then the message's 64-bit sequence
//      number, which travels in the clear in the sleeve header. Each sequence number is sealed
//      once: the sealer hands them out in order and refuses any other.
//   3. AEAD: node:crypto's aes-256-gcm or chacha20-poly1305 (FRAME_CIPHER, chosen by measurement;
//      see test/dataplane/sleeve/sleeve.bench.ts), 16-byte tag, the message header bytes
//      (MESSAGE_HEADER_LENGTH) as associated data. One seal per message, i.e. per GSO super-frame,
//      before it is cut into chunks: the cost of a call (µs) is paid once per 64 KB.
//   4. Key updates: AES-GCM must not seal unbounded data under one key (its confidentiality
//      bound grows with the square of the blocks sealed). Every KEY_UPDATE_AFTER_MESSAGES
//      messages (so that even messages of the largest size stay within KEY_UPDATE_AFTER_BLOCKS)
//      the sealer moves to the next key, HKDF of the current one, and flips the key-phase bit of
//      the header: the key epoch is floor(sequence / KEY_UPDATE_AFTER_MESSAGES), a function of
//      the number alone, so threads sharing a direction's sequence counter (sequence-counter.ts)
//      agree on the key of every number without sharing anything else. The opener, seeing the
//      other phase on a newer sequence number, derives the same next key. No message is
//      exchanged for it, each direction on its own; the old key opens late (reordered) messages
//      until the next update, and is then forgotten.
//   5. Limits: `needsRekey` turns true after REKEY_AFTER_MESSAGES; the sealer refuses past
//      MAX_SEQUENCE (2^53 − 1) rather than ever reuse a nonce. A rekey is a new connection (fresh
//      X25519 keys, new session key and connection uid), as the control plane already does.
//
// Opening never throws on input from the network: it returns null.
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  type CipherChaCha20Poly1305,
  type CipherGCM,
  type DecipherChaCha20Poly1305,
  type DecipherGCM,
  type KeyObject,
} from 'node:crypto';
import { AEAD_TAG_LENGTH, MAX_MESSAGE_LENGTH, MAX_SEQUENCE } from './header.js';
import { SequenceCounter } from './sequence-counter.js';

export type FrameCipherName = 'chacha20-poly1305' | 'aes-256-gcm';

/**
 * The faster of the two for 64 KB messages on the development machine (AMD EPYC with AES-NI,
 * Node 20 / OpenSSL 3.0.19): seal 2.55 against 1.82 GB/s, open 2.44 against 1.77 GB/s (medians of
 * 5 runs, sleeve.bench.ts). Both peers must use the same: it is part of the sleeve version.
 */
export const FRAME_CIPHER: FrameCipherName = 'aes-256-gcm';

export const FRAME_KEY_LENGTH = 32;
export const SESSION_KEY_LENGTH = 32;
export const NONCE_LENGTH = 12;
/**
 * Past this many messages in one direction `needsRekey` says so, long before the hard limit
 * (2^48 messages of 64 KB is 16 EiB: in practice connections are remade far sooner).
 */
export const REKEY_AFTER_MESSAGES = 2 ** 48;
/**
 * Cipher blocks (16 bytes; each message counts its blocks plus one) sealed under one key before
 * the next key takes over: 2^34 blocks (256 GiB) keeps AES-GCM's confidentiality advantage
 * around 2^-57, the margin TLS 1.3 keeps for its records (RFC 8446 §5.5; draft-irtf-cfrg-aead-
 * limits). At 5 Gbit/s that is a key update every 7 minutes, which costs one HKDF.
 */
export const KEY_UPDATE_AFTER_BLOCKS = 2 ** 34;
/** Cipher blocks one message can take at most: its sealed body (MAX_MESSAGE_LENGTH) plus one. */
export const MAX_BLOCKS_PER_MESSAGE = Math.ceil(MAX_MESSAGE_LENGTH / 16) + 1;
/**
 * Messages sealed under one key: as many of the largest message as fit KEY_UPDATE_AFTER_BLOCKS
 * (2,795,683; about 7 minutes at 5 Gbit/s of 64 KB messages, sooner for nothing smaller).
 */
export const KEY_UPDATE_AFTER_MESSAGES = Math.floor(KEY_UPDATE_AFTER_BLOCKS / MAX_BLOCKS_PER_MESSAGE);
const KEY_UPDATE_INFO = 'weft sleeve v1 key update';

const DIALLER_TO_LISTENER = 'dialler->listener';
const LISTENER_TO_DIALLER = 'listener->dialler';
/** First nonce byte per direction; the other three fixed bytes are zero. */
const NONCE_PREFIX_FROM_DIALLER = 0x01;
const NONCE_PREFIX_FROM_LISTENER = 0x02;

export interface FrameKeys {
  /** Seals what this side sends. */
  readonly send: Uint8Array;
  /** Opens what the other side sends. */
  readonly receive: Uint8Array;
}

/**
 * The two direction keys of a connection, from our side: `weDialled` says which end we are. The
 * purpose label separates keys derived from the same session key for other uses.
 */
export function deriveFrameKeys(sessionKey: Uint8Array, connectionUid: bigint, weDialled: boolean, purpose = 'frames'): FrameKeys {
  const fromDialler = deriveDirectionKey(sessionKey, connectionUid, true, purpose);
  const fromListener = deriveDirectionKey(sessionKey, connectionUid, false, purpose);
  return weDialled ? { send: fromDialler, receive: fromListener } : { send: fromListener, receive: fromDialler };
}

/** The key of one direction: HKDF-SHA256(session key, salt = uid, info = "weft sleeve v1 <purpose> <direction>"). */
export function deriveDirectionKey(sessionKey: Uint8Array, connectionUid: bigint, fromDialler: boolean, purpose = 'frames'): Uint8Array {
  if (sessionKey.length !== SESSION_KEY_LENGTH) throw new RangeError(`session key must be ${SESSION_KEY_LENGTH} bytes, not ${sessionKey.length}`);
  if (!/^[a-z0-9-]+$/.test(purpose)) throw new RangeError(`purpose label ${JSON.stringify(purpose)}: want [a-z0-9-]+`);
  const salt = Buffer.alloc(8);
  salt.writeBigUInt64BE(BigInt.asUintN(64, connectionUid));
  const info = `weft sleeve v1 ${purpose} ${fromDialler ? DIALLER_TO_LISTENER : LISTENER_TO_DIALLER}`;
  return new Uint8Array(hkdfSync('sha256', sessionKey, salt, info, FRAME_KEY_LENGTH));
}

export interface FrameCipherOptions {
  /** Default FRAME_CIPHER. */
  readonly cipher?: FrameCipherName;
}

export interface FrameSealerOptions extends FrameCipherOptions {
  /** Default KEY_UPDATE_AFTER_MESSAGES; small values are for tests. Every sealer of a direction must use the same. */
  readonly keyUpdateAfterMessages?: number;
  /** The direction's sequence counter, when other threads seal for it too; a new one otherwise. */
  readonly sequence?: SequenceCounter;
}

/** The key that follows `key`: HKDF-SHA256(key, no salt, "weft sleeve v1 key update"). */
export function nextKey(key: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', key, new Uint8Array(0), KEY_UPDATE_INFO, FRAME_KEY_LENGTH));
}

/** Seals the messages of one direction (ours). */
export class FrameSealer {
  readonly cipher: FrameCipherName;
  /** Messages per key: epoch = floor(sequence / this). */
  readonly keyUpdateAfterMessages: number;
  /** The numbers this direction hands out; shared with every thread that seals for it. */
  readonly sequence: SequenceCounter;
  /** The key of epoch `epoch`; later epochs' keys are derived from it when first needed. */
  private key: Uint8Array;
  private keyObject: KeyObject;
  private epoch = 0;
  private readonly nonce = Buffer.alloc(NONCE_LENGTH);

  /**
   * `fromDialler`: this direction is the one sent by the side that dialled. `key` is the
   * direction's first key (epoch 0) even when `sequence` has moved on: the sealer derives forward.
   */
  constructor(
    key: Uint8Array,
    readonly fromDialler: boolean,
    options: FrameSealerOptions = {},
  ) {
    if (key.length !== FRAME_KEY_LENGTH) throw new RangeError(`frame key must be ${FRAME_KEY_LENGTH} bytes`);
    this.cipher = options.cipher ?? FRAME_CIPHER;
    this.keyUpdateAfterMessages = options.keyUpdateAfterMessages ?? KEY_UPDATE_AFTER_MESSAGES;
    if (!Number.isSafeInteger(this.keyUpdateAfterMessages) || this.keyUpdateAfterMessages < 1) {
      throw new RangeError(`keyUpdateAfterMessages ${this.keyUpdateAfterMessages}: want a positive integer`);
    }
    this.sequence = options.sequence ?? SequenceCounter.create();
    this.key = Uint8Array.from(key);
    this.keyObject = createSecretKey(this.key);
    this.nonce[0] = fromDialler ? NONCE_PREFIX_FROM_DIALLER : NONCE_PREFIX_FROM_LISTENER;
  }

  /** The sequence number the next message would carry (another thread may take it first). */
  get nextSequence(): number {
    return this.sequence.next;
  }

  /** The key phase the next message would carry in its header (0 or 1). */
  get keyPhase(): number {
    return this.phaseOf(this.sequence.next);
  }

  /** How many key updates this direction has made (the epoch of the next message). */
  get keyEpoch(): number {
    return this.epochOf(this.sequence.next);
  }

  get needsRekey(): boolean {
    return this.sequence.next >= REKEY_AFTER_MESSAGES;
  }

  /** No sequence number is left: the connection must be remade before anything else is sent. */
  get exhausted(): boolean {
    return this.sequence.next > MAX_SEQUENCE;
  }

  /** The key phase a message numbered `sequence` carries in its header. */
  phaseOf(sequence: number): number {
    return this.epochOf(sequence) & 1;
  }

  private epochOf(sequence: number): number {
    return Math.floor(sequence / this.keyUpdateAfterMessages);
  }

  /**
   * Takes the next sequence number for a message this thread will seal with sealTaken() (its
   * header carries the number and phaseOf(number)). Throws a RangeError when exhausted.
   */
  take(): number {
    return this.sequence.take();
  }

  /**
   * Seals a message whose header carries `sequence` and `keyPhase`, which must be nextSequence
   * and keyPhase: anything else (a number used twice, or skipped; the wrong phase) is a bug of
   * ours and throws a RangeError, as does sealing when exhausted. Returns the ciphertext and
   * the tag as pieces, for layoutChunks to copy once. (For one thread; senders sharing the
   * counter use take() and sealTaken().)
   */
  seal(sequence: number, keyPhase: number, aad: Uint8Array, plain: Uint8Array | readonly Uint8Array[]): Buffer[] {
    if (this.exhausted) throw new RangeError('frame sequence numbers exhausted: remake the connection for fresh keys');
    if (keyPhase !== this.phaseOf(sequence)) throw new RangeError(`sealing sequence ${sequence} with key phase ${keyPhase}, its key's is ${this.phaseOf(sequence)}`);
    if (!this.sequence.takeExactly(sequence)) {
      throw new RangeError(`sealing sequence ${sequence}, expected ${this.nextSequence}: a nonce is never reused or skipped`);
    }
    return this.sealTaken(sequence, aad, plain);
  }

  /**
   * Seals a message numbered `sequence`, a number this thread took with take(): the caller
   * guarantees it is sealed once. The key is that of the number's epoch; one thread's numbers
   * only grow, so its keys only move forward (an older epoch is a bug: RangeError).
   */
  sealTaken(sequence: number, aad: Uint8Array, plain: Uint8Array | readonly Uint8Array[]): Buffer[] {
    const epoch = this.epochOf(sequence);
    if (epoch < this.epoch) throw new RangeError(`sequence ${sequence} belongs to key epoch ${epoch}, this sealer is at ${this.epoch}`);
    if (epoch > this.epoch) {
      while (this.epoch < epoch) {
        this.key = nextKey(this.key);
        this.epoch++;
      }
      this.keyObject = createSecretKey(this.key);
    }
    writeSequence(this.nonce, sequence);
    const c = newCipher(this.cipher, this.keyObject, this.nonce);
    let plainLength = 0;
    if (plain instanceof Uint8Array) plainLength = plain.length;
    else for (const piece of plain) plainLength += piece.length;
    c.setAAD(aad, { plaintextLength: plainLength });
    const out: Buffer[] = [];
    if (plain instanceof Uint8Array) out.push(c.update(plain));
    else for (const piece of plain) out.push(c.update(piece));
    out.push(c.final(), c.getAuthTag());
    return out;
  }

  /**
   * Test hook: continue as if `n` messages had been sealed. The current key is taken to be that
   * of n's epoch (the keys in between are not derived), so tests can reach far numbers quickly.
   */
  skipTo(n: number): void {
    this.sequence.skipTo(n);
    this.epoch = this.epochOf(n);
  }
}

interface EpochKey {
  readonly bytes: Uint8Array;
  readonly object: KeyObject;
}

function epochKey(bytes: Uint8Array): EpochKey {
  return { bytes, object: createSecretKey(bytes) };
}

/** Opens the messages of one direction (the peer's). */
export class FrameOpener {
  readonly cipher: FrameCipherName;
  private readonly nonce = Buffer.alloc(NONCE_LENGTH);
  private epoch = 0;
  private current: EpochKey;
  private previous: EpochKey | undefined;
  private upcoming: EpochKey | undefined;
  /** The lowest sequence number opened with the current key: older ones used the previous key. */
  private switchedAt = 0;

  /** `fromDialler`: the messages this opens were sent by the side that dialled. */
  constructor(
    key: Uint8Array,
    readonly fromDialler: boolean,
    options: Pick<FrameCipherOptions, 'cipher'> = {},
  ) {
    if (key.length !== FRAME_KEY_LENGTH) throw new RangeError(`frame key must be ${FRAME_KEY_LENGTH} bytes`);
    this.cipher = options.cipher ?? FRAME_CIPHER;
    this.current = epochKey(Uint8Array.from(key));
    this.nonce[0] = fromDialler ? NONCE_PREFIX_FROM_DIALLER : NONCE_PREFIX_FROM_LISTENER;
  }

  /** How many key updates of the peer this side has followed. */
  get keyEpoch(): number {
    return this.epoch;
  }

  /**
   * The plain body, or null when the message does not authenticate (altered, forged, sealed with
   * another key or for the other direction, or shorter than a tag). A message in the other key
   * phase opens with the previous key when it is older than the current key's first message, and
   * otherwise with the next key, which then becomes the current one.
   */
  open(sequence: number, keyPhase: number, aad: Uint8Array, sealed: Uint8Array): Buffer | null {
    if (sealed.length < AEAD_TAG_LENGTH) return null;
    if (!Number.isInteger(sequence) || sequence < 0 || sequence > MAX_SEQUENCE) return null;
    if (keyPhase === (this.epoch & 1)) return this.tryOpen(this.current, sequence, aad, sealed);
    if (keyPhase !== ((this.epoch + 1) & 1)) return null;
    if (sequence < this.switchedAt) return this.previous ? this.tryOpen(this.previous, sequence, aad, sealed) : null;
    this.upcoming ??= epochKey(nextKey(this.current.bytes));
    const plain = this.tryOpen(this.upcoming, sequence, aad, sealed);
    if (plain !== null) {
      // Only an authentic message moves the keys on.
      this.previous = this.current;
      this.current = this.upcoming;
      this.upcoming = undefined;
      this.epoch++;
      this.switchedAt = sequence;
    }
    return plain;
  }

  private tryOpen(key: EpochKey, sequence: number, aad: Uint8Array, sealed: Uint8Array): Buffer | null {
    writeSequence(this.nonce, sequence);
    const split = sealed.length - AEAD_TAG_LENGTH;
    try {
      const d = newDecipher(this.cipher, key.object, this.nonce);
      d.setAAD(aad, { plaintextLength: split });
      d.setAuthTag(sealed.subarray(split));
      const head = d.update(sealed.subarray(0, split));
      const tail = d.final(); // throws when the tag does not match
      return tail.length === 0 ? head : Buffer.concat([head, tail]);
    } catch {
      // The only failure here is authentication (the arguments are ours and well formed).
      return null;
    }
  }
}

// (Two branches only because @types/node overloads createCipheriv per algorithm family.)
function newCipher(name: FrameCipherName, key: KeyObject, nonce: Buffer): CipherGCM | CipherChaCha20Poly1305 {
  const options = { authTagLength: AEAD_TAG_LENGTH };
  return name === 'aes-256-gcm' ? createCipheriv(name, key, nonce, options) : createCipheriv(name, key, nonce, options);
}

function newDecipher(name: FrameCipherName, key: KeyObject, nonce: Buffer): DecipherGCM | DecipherChaCha20Poly1305 {
  const options = { authTagLength: AEAD_TAG_LENGTH };
  return name === 'aes-256-gcm' ? createDecipheriv(name, key, nonce, options) : createDecipheriv(name, key, nonce, options);
}

function writeSequence(nonce: Buffer, sequence: number): void {
  nonce.writeUInt32BE(Math.floor(sequence / 2 ** 32), 4);
  nonce.writeUInt32BE(sequence >>> 0, 8);
}
