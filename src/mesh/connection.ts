// One TCP connection to another peer: the shell around the wire codecs (DESIGN §4).
//
// Stages, in the order a connection meets them:
//   1. both sides write their preamble (magic, version range, X25519 public key when encrypted);
//   2. read the peer's preamble within the handshake timeout; agree on version and encryption;
//   3. with a password, derive the session key; from here every frame is a sealed secretbox;
//   4. exchange Hello; the router decides whether to keep the connection (self, collision,
//      duplicate, limit);
//   5. messages flow; heartbeats every interval, and silence for two intervals closes it.
// Anything malformed closes this connection with one log line; nothing a peer sends can throw
// out of here.
import type { Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { ProtocolError } from './protocol-error.js';
import {
  encodePreamble, parsePreamble, negotiateVersion, checkEncryptionAgreement,
  PROTOCOL_MIN_VERSION, PROTOCOL_MAX_VERSION, type Preamble,
} from './preamble.js';
import { FrameReader, encodeFrame } from './frame-reader.js';
import { generateKeyPair, deriveSessionKey, MessageSealer, MessageOpener, type KeyPair } from './session-crypto.js';
import { encodeMessage, decodeMessage, type Hello, type Message } from './envelope.js';
import type { Uid } from '../net/uid.js';

export interface ConnectionCallbacks {
  /** The peer introduced itself. Return undefined to keep the connection, or why it must close. */
  onHello(conn: Connection, hello: Hello): string | undefined;
  onMessage(conn: Connection, message: Message): void;
  /** Called exactly once, when the connection is gone; `error` says why unless we closed it cleanly. */
  onClose(conn: Connection, error: string | undefined): void;
}

export interface ConnectionOptions {
  readonly socket: Socket;
  readonly outbound: boolean;
  /** For outbound connections the address we dialled; for inbound ones the remote address. */
  readonly address: string;
  readonly hello: Omit<Hello, 'connId'>;
  readonly connId: Uid;
  readonly password?: string;
  readonly heartbeatIntervalMs: number;
  readonly handshakeTimeoutMs: number;
  readonly log: Logger;
  readonly callbacks: ConnectionCallbacks;
}

type Stage = 'preamble' | 'hello' | 'open' | 'closed';

/**
 * Bytes we let queue up for a peer that does not read. Gossip is small and coalesced, so a queue
 * this long means the peer is stuck; closing the connection beats growing without bound.
 */
const MAX_UNSENT_BYTES = 64 * 1024 * 1024;

export class Connection {
  readonly outbound: boolean;
  readonly address: string;
  readonly encrypted: boolean;
  remote?: Hello;
  /** XOR of both connection ids: the same number at both ends, used to break ties. */
  connectionUid?: bigint;
  protocolVersion?: number;
  established = false;
  /** The data path's attributes once it is established (name, mtu). */
  linkAttrs: Readonly<Record<string, string | number | boolean>> = {};
  /** The session key, when the mesh has a password: the data path derives its keys from it. */
  sessionKey?: Uint8Array;
  log: Logger;

  private stage: Stage = 'preamble';
  private readonly socket: Socket;
  private readonly frames = new FrameReader();
  private preambleBuffer: Buffer = Buffer.alloc(0);
  private readonly keyPair?: KeyPair;
  private sealer?: MessageSealer;
  private opener?: MessageOpener;
  private heartbeatTimer?: NodeJS.Timeout;
  private deadline?: NodeJS.Timeout;
  private readonly options: ConnectionOptions;

  constructor(options: ConnectionOptions) {
    this.options = options;
    this.outbound = options.outbound;
    this.address = options.address;
    this.socket = options.socket;
    this.encrypted = options.password !== undefined;
    this.log = options.log.child({ conn: `${options.outbound ? '->' : '<-'}[${options.address}]` });
    if (this.encrypted) this.keyPair = generateKeyPair();

    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('error', (err) => this.close(err.message));
    this.socket.on('close', () => this.close('connection closed by peer'));
    this.resetDeadline(options.handshakeTimeoutMs, 'timed out waiting for the peer\'s handshake');

    const preamble: Preamble = {
      minVersion: PROTOCOL_MIN_VERSION,
      maxVersion: PROTOCOL_MAX_VERSION,
      ...(this.keyPair ? { publicKey: this.keyPair.publicKey } : {}),
    };
    this.socket.write(encodePreamble(preamble));
  }

  get isOpen(): boolean {
    return this.stage === 'open';
  }

  /** Remote peer's identity for logs: name(nickname). */
  get remoteLabel(): string {
    return this.remote ? `${this.remote.name}(${this.remote.nickname})` : 'unknown';
  }

  send(message: Message): void {
    if (this.stage === 'closed') return;
    let bytes = encodeMessage(message);
    if (this.sealer) bytes = this.sealer.seal(bytes);
    this.socket.write(encodeFrame(bytes));
    if (this.socket.writableLength > MAX_UNSENT_BYTES) {
      this.close(`peer is not reading: more than ${MAX_UNSENT_BYTES} bytes unsent`);
    }
  }

  /** Closes the connection; `error` (when given) is logged and reported to the router. */
  close(error?: string): void {
    if (this.stage === 'closed') return;
    this.stage = 'closed';
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.deadline);
    this.socket.destroy();
    this.options.callbacks.onClose(this, error);
  }

  private receive(chunk: Buffer): void {
    try {
      if (this.stage === 'preamble') {
        this.preambleBuffer = Buffer.concat([this.preambleBuffer, chunk]);
        const parsed = parsePreamble(this.preambleBuffer);
        if (parsed === undefined) return;
        this.acceptPreamble(parsed.preamble);
        chunk = this.preambleBuffer.subarray(parsed.consumed);
        this.preambleBuffer = Buffer.alloc(0);
      }
      for (const frame of this.frames.push(chunk)) {
        if (this.stage === 'closed') return;
        this.receiveFrame(frame);
      }
    } catch (err) {
      this.close(err instanceof ProtocolError ? err.message : `internal error: ${(err as Error).message}`);
      if (!(err instanceof ProtocolError)) this.log.error({ err }, 'unexpected error handling a message');
    }
  }

  private acceptPreamble(theirs: Preamble): void {
    const ours: Preamble = { minVersion: PROTOCOL_MIN_VERSION, maxVersion: PROTOCOL_MAX_VERSION };
    this.protocolVersion = negotiateVersion(ours, theirs);
    checkEncryptionAgreement(this.keyPair ? { ...ours, publicKey: this.keyPair.publicKey } : ours, theirs);
    if (this.keyPair && theirs.publicKey) {
      const key = deriveSessionKey(this.keyPair, theirs.publicKey, this.options.password ?? '');
      this.sessionKey = key;
      this.sealer = new MessageSealer(key, this.outbound);
      this.opener = new MessageOpener(key, this.outbound);
    }
    this.stage = 'hello';
    this.send({ type: 'hello', hello: { ...this.options.hello, connId: this.options.connId } });
  }

  private receiveFrame(frame: Uint8Array): void {
    const message = decodeMessage(this.opener ? this.openFirst(frame) : frame);
    // Any message proves the peer alive.
    this.resetDeadline(this.options.heartbeatIntervalMs * 2, 'timed out waiting for a heartbeat');
    if (this.stage === 'hello') {
      if (message.type !== 'hello') throw new ProtocolError(`expected Hello, got ${message.type}`);
      this.remote = message.hello;
      this.connectionUid = this.options.connId ^ message.hello.connId;
      this.log = this.log.child({ peer: `${message.hello.name}(${message.hello.nickname})` });
      // Open before asking the router, so that what it sends on accepting goes out.
      this.stage = 'open';
      const refusal = this.options.callbacks.onHello(this, message.hello);
      if (refusal !== undefined) {
        this.close(refusal);
        return;
      }
      this.heartbeatTimer = setInterval(() => this.send({ type: 'heartbeat' }), this.options.heartbeatIntervalMs);
      this.heartbeatTimer.unref();
      return;
    }
    if (message.type === 'hello') throw new ProtocolError('unexpected second Hello');
    if (message.type === 'heartbeat') return;
    this.options.callbacks.onMessage(this, message);
  }

  /** The first sealed message is the Hello: failing to open it almost always means another password. */
  private openFirst(frame: Uint8Array): Uint8Array {
    try {
      return this.opener!.open(frame);
    } catch (err) {
      if (this.stage === 'hello') {
        throw new ProtocolError('cannot decrypt the peer\'s Hello: the peer uses a different password');
      }
      throw err;
    }
  }

  private resetDeadline(ms: number, why: string): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.close(why), ms);
    this.deadline.unref();
  }
}
