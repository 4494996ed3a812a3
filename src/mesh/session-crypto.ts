// Encryption of a mesh connection when the mesh has a password (DESIGN §4), with tweetnacl:
//
//   1. each side makes an ephemeral X25519 key pair per connection and sends the public half in
//      its preamble (so every connection has fresh keys: forward secrecy);
//   2. both derive the session key SHA-256(X25519(own secret, peer public) ‖ password): a peer
//      without the password derives another key, and its first message fails to open;
//   3. every framed message is a NaCl secretbox (XSalsa20-Poly1305) under that key. The nonce is
//      never sent: each side counts the messages of each direction, so a replayed, reordered,
//      dropped or altered message fails authentication, and the connection is closed.
//
// Nonce layout (24 bytes): byte 0 bit 7 = the direction (1 = sent by the side that dialled),
// bytes 16..23 = the message's number in that direction, big-endian from 0, everything else zero.
// The direction bit keeps the two directions, which share one key, from ever using one nonce.
import { createHash } from 'node:crypto';
import nacl from 'tweetnacl';
import { ProtocolError } from './protocol-error.js';

export const SESSION_KEY_LENGTH = nacl.secretbox.keyLength;
/** Bytes a sealed message has over its plain text (the Poly1305 tag). */
export const SEAL_OVERHEAD = nacl.secretbox.overheadLength;
/**
 * Messages per direction before the counter would lose precision. Never reached in practice
 * (2^53 messages); past it we refuse rather than reuse a nonce.
 */
export const MAX_MESSAGES = Number.MAX_SAFE_INTEGER;

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** A fresh ephemeral X25519 key pair (randomness from tweetnacl, i.e. node:crypto). */
export function generateKeyPair(): KeyPair {
  return nacl.box.keyPair();
}

/** The key pair of a given secret key: for tests and known-answer vectors. */
export function keyPairFromSecretKey(secretKey: Uint8Array): KeyPair {
  return nacl.box.keyPair.fromSecretKey(secretKey);
}

/**
 * SHA-256(X25519(our secret, their public) ‖ password). The password is taken as UTF-8 when it is
 * a string. A public key of low order makes the shared secret all zeros whatever our secret is,
 * which would leave only the password protecting the session: that is refused.
 */
export function deriveSessionKey(ours: KeyPair, theirPublic: Uint8Array, password: string | Uint8Array): Uint8Array {
  if (theirPublic.length !== nacl.scalarMult.groupElementLength) {
    throw new ProtocolError(`peer public key must be ${nacl.scalarMult.groupElementLength} bytes, not ${theirPublic.length}`);
  }
  // X25519 ignores the top bit of a public key (RFC 7748), so two encodings would name one key;
  // ours never set it, and accepting only that encoding leaves no bit of the preamble malleable.
  if ((theirPublic[31]! & 0x80) !== 0) throw new ProtocolError('peer sent a non-canonical public key (top bit set)');
  const shared = nacl.scalarMult(ours.secretKey, theirPublic);
  let any = 0;
  for (const b of shared) any |= b; // no early exit: constant time
  if (any === 0) throw new ProtocolError('peer sent a weak (low-order) public key');
  const key = createHash('sha256').update(shared).update(password).digest();
  shared.fill(0);
  return new Uint8Array(key.buffer, key.byteOffset, key.length);
}

/** The nonce of one direction of a connection, advanced per message. */
class NonceCounter {
  readonly nonce = new Uint8Array(nacl.secretbox.nonceLength);
  private readonly view = new DataView(this.nonce.buffer);
  private next = 0;

  constructor(sentByDialler: boolean) {
    this.nonce[0] = sentByDialler ? 0x80 : 0;
  }

  get exhausted(): boolean {
    return this.next >= MAX_MESSAGES;
  }

  /** Puts the next message's number into the nonce. */
  advance(): void {
    const n = this.next++;
    this.view.setUint32(16, Math.floor(n / 2 ** 32));
    this.view.setUint32(20, n >>> 0);
  }

  /** For tests of the exhaustion path only: skip ahead to message `n`. */
  skipTo(n: number): void {
    this.next = n;
  }
}

/** Seals the messages our side sends. `outbound` = our side dialled this connection. */
export class MessageSealer {
  private readonly key: Uint8Array;
  private readonly counter: NonceCounter;

  constructor(key: Uint8Array, outbound: boolean) {
    if (key.length !== SESSION_KEY_LENGTH) throw new RangeError(`session key must be ${SESSION_KEY_LENGTH} bytes`);
    this.key = key;
    this.counter = new NonceCounter(outbound);
  }

  /**
   * Seals the next message. Past MAX_MESSAGES it throws a RangeError (a limit of ours, not the
   * peer's fault): the connection must then be closed and made again, with fresh keys.
   */
  seal(plain: Uint8Array): Uint8Array {
    if (this.counter.exhausted) throw new RangeError('message counter exhausted: reconnect for fresh keys');
    this.counter.advance();
    return nacl.secretbox(plain, this.counter.nonce, this.key);
  }

  /** Test hook: continue as if `n` messages had been sealed already. */
  skipTo(n: number): void {
    this.counter.skipTo(n);
  }
}

const AUTH_FAILED = 'message authentication failed (wrong password, or a replayed or altered message)';

/**
 * Opens the messages the peer sends. `outbound` is OUR side's role (we dialled), so it opens the
 * other direction. Each message must be the next one; after the first failure every call fails,
 * because the stream's counter can no longer be trusted.
 */
export class MessageOpener {
  private readonly key: Uint8Array;
  private readonly counter: NonceCounter;
  private failure: ProtocolError | undefined;

  constructor(key: Uint8Array, outbound: boolean) {
    if (key.length !== SESSION_KEY_LENGTH) throw new RangeError(`session key must be ${SESSION_KEY_LENGTH} bytes`);
    this.key = key;
    this.counter = new NonceCounter(!outbound);
  }

  open(sealed: Uint8Array): Uint8Array {
    if (this.failure) throw this.failure;
    if (this.counter.exhausted) return this.fail('peer sent more messages than a session key may seal');
    this.counter.advance();
    const plain = sealed.length < SEAL_OVERHEAD ? null : nacl.secretbox.open(sealed, this.counter.nonce, this.key);
    if (plain === null) return this.fail(AUTH_FAILED);
    return plain;
  }

  /** Test hook: continue as if `n` messages had been opened already. */
  skipTo(n: number): void {
    this.counter.skipTo(n);
  }

  private fail(message: string): never {
    this.failure = new ProtocolError(message);
    throw this.failure;
  }
}
