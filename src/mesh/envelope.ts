// The typed messages of a mesh connection, and their protobuf `Envelope` (proto/weft.proto).
//
// protobufjs accepts any well-formed protobuf and fills the gaps with defaults, so everything a
// peer sends passes through `decodeMessage`, which checks each field and turns the generated
// objects into the types the rest of the mesh uses (PeerName, Uid). Nothing past this module
// has to wonder whether a name is zero or a uid has 7 bytes. Our own messages are checked by the
// same rules on the way out, so a bug of ours fails here, loudly, instead of at the peer.
import { weft } from '../proto.js';
import { peerNameFromNumber, peerNameToNumber, type PeerName } from '../net/peer-name.js';
import { uidFromBytes, uidToBytes, type Uid } from '../net/uid.js';
import { ProtocolError, quoteForLog } from './protocol-error.js';

export interface Hello {
  readonly name: PeerName;
  readonly nickname: string;
  /** This process's incarnation: a restarted peer keeps its name and gets a new uid. */
  readonly uid: Uid;
  /** Random per connection; the connection's id is the XOR of both sides'. */
  readonly connId: Uid;
  /** 12-bit id for the data path. */
  readonly shortId: number;
  /** Data paths offered, most preferred first. */
  readonly overlays: readonly string[];
  /** The TCP port this peer accepts connections on. */
  readonly listenPort: number;
  /** Software version, for logs only. */
  readonly software: string;
}

export type GossipKind = 'neighbour' | 'broadcast' | 'unicast';

export interface GossipMessage {
  readonly kind: GossipKind;
  readonly channel: string;
  readonly src: PeerName;
  /** Present exactly for unicast. */
  readonly dst?: PeerName;
  /** On decoding, a view of the received frame (not a copy). */
  readonly payload: Uint8Array;
}

export type Message =
  | { readonly type: 'hello'; readonly hello: Hello }
  | { readonly type: 'heartbeat' }
  | { readonly type: 'gossip'; readonly gossip: GossipMessage };

// Limits. A nickname is a host name in practice (at most 253 characters).
const MAX_NAME = 2 ** 48 - 1;
const MAX_SHORT_ID = 4095;
const MAX_NICKNAME = 255;
const MAX_SOFTWARE = 255;
const MAX_OVERLAYS = 16;
const MAX_OVERLAY_NAME = 32;
const MAX_CHANNEL = 64;
const MAX_PORT = 65535;
/** C0 and C1 control characters and DEL: they have no place in names and would mangle logs. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const KIND_TO_WIRE: Record<GossipKind, weft.Gossip.Kind> = {
  neighbour: weft.Gossip.Kind.NEIGHBOUR,
  broadcast: weft.Gossip.Kind.BROADCAST,
  unicast: weft.Gossip.Kind.UNICAST,
};
const WIRE_TO_KIND = new Map<number, GossipKind>(
  Object.entries(KIND_TO_WIRE).map(([kind, wire]) => [wire, kind as GossipKind]),
);

// ---- encoding -------------------------------------------------------------------------------

/** Encodes one of our messages. A message that breaks the rules is our bug: RangeError. */
export function encodeMessage(m: Message): Uint8Array {
  const problem = checkMessage(m);
  if (problem) throw new RangeError(`refusing to send an invalid ${m.type}: ${problem}`);
  return weft.Envelope.encode(toEnvelope(m)).finish();
}

function toEnvelope(m: Message): weft.Envelope.$Properties {
  switch (m.type) {
    case 'hello': {
      const h = m.hello;
      return {
        hello: {
          name: peerNameToNumber(h.name),
          nickname: h.nickname,
          uid: uidToBytes(h.uid),
          connId: uidToBytes(h.connId),
          shortId: h.shortId,
          overlays: [...h.overlays],
          listenPort: h.listenPort,
          software: h.software,
        },
      };
    }
    case 'heartbeat':
      return { heartbeat: {} };
    case 'gossip': {
      const g = m.gossip;
      return {
        gossip: {
          kind: KIND_TO_WIRE[g.kind],
          channel: g.channel,
          src: peerNameToNumber(g.src),
          ...(g.kind === 'unicast' && g.dst !== undefined ? { dst: peerNameToNumber(g.dst) } : {}),
          payload: g.payload,
        },
      };
    }
  }
}

// ---- decoding -------------------------------------------------------------------------------

/**
 * Decodes and checks one message from a peer. Throws ProtocolError, naming the message and the
 * field, for anything we do not accept, including a well-formed message of a type this version
 * does not know.
 */
export function decodeMessage(bytes: Uint8Array): Message {
  let envelope: weft.Envelope;
  try {
    envelope = weft.Envelope.decode(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ProtocolError(`undecodable message of ${bytes.length} bytes: ${reason}`);
  }
  let message: Message;
  switch (envelope.body) {
    case 'hello':
      message = { type: 'hello', hello: fromWireHello(envelope.hello!) };
      break;
    case 'heartbeat':
      message = { type: 'heartbeat' };
      break;
    case 'gossip':
      message = { type: 'gossip', gossip: fromWireGossip(envelope.gossip!) };
      break;
    default:
      throw new ProtocolError(`message of unknown type (${bytes.length} bytes)`);
  }
  const problem = checkMessage(message);
  if (problem) throw new ProtocolError(`invalid ${message.type} from peer: ${problem}`);
  return message;
}

// The wire-to-type conversions only reject what cannot be represented (a name beyond 48 bits, a
// uid of the wrong length); checkMessage then applies every rule to the typed value.

function fromWireHello(h: weft.Hello.$Properties): Hello {
  return {
    name: wireName('hello', 'name', uint64Field(h, 'name')),
    nickname: h.nickname ?? '',
    uid: wireUid('uid', h.uid),
    connId: wireUid('connId', h.connId),
    shortId: h.shortId ?? 0,
    overlays: h.overlays ?? [],
    listenPort: h.listenPort ?? 0,
    software: h.software ?? '',
  };
}

function fromWireGossip(g: weft.Gossip.$Properties): GossipMessage {
  const kind = WIRE_TO_KIND.get(g.kind ?? 0);
  if (kind === undefined) throw new ProtocolError(`invalid gossip from peer: unknown kind ${String(g.kind)}`);
  const src = wireName('gossip', 'src', uint64Field(g, 'src'));
  const payload = g.payload ?? new Uint8Array(0);
  const channel = g.channel ?? '';
  if (kind !== 'unicast') return { kind, channel, src, payload };
  // A unicast without dst would have nowhere to go: a dst of 0 is "absent" in proto3.
  const dst = uint64Field(g, 'dst');
  if (dst === 0) throw new ProtocolError('invalid gossip from peer: unicast without dst');
  return { kind, channel, src, dst: wireName('gossip', 'dst', dst), payload };
}

/**
 * A uint64 field as decoded: the generated decoder sets the field on the message only when it is
 * not zero, and otherwise leaves the prototype's default, which is a Long object if protobufjs
 * found the `long` package when the generated module was loaded. Own properties only, then.
 */
function uint64Field<K extends string>(message: { [key in K]?: number | null }, field: K): number {
  return Object.hasOwn(message, field) ? (message[field] ?? 0) : 0;
}

function wireName(message: string, field: string, n: number): PeerName {
  // Zero is proto3's "absent"; names are 48-bit MAC-style values.
  if (!Number.isInteger(n) || n <= 0 || n > MAX_NAME) {
    throw new ProtocolError(`invalid ${message} from peer: ${field} ${n} is not a 48-bit peer name`);
  }
  return peerNameFromNumber(n);
}

function wireUid(field: string, value: Uint8Array | null | undefined): Uid {
  if (!value || value.length !== 8) {
    throw new ProtocolError(`invalid hello from peer: ${field} must be 8 bytes, got ${value ? value.length : 0}`);
  }
  return uidFromBytes(value);
}

// ---- the rules, for both directions -----------------------------------------------------------

/** What is wrong with a message, or undefined. */
function checkMessage(m: Message): string | undefined {
  switch (m.type) {
    case 'hello':
      return checkHello(m.hello);
    case 'heartbeat':
      return undefined;
    case 'gossip':
      return checkGossip(m.gossip);
  }
}

function checkHello(h: Hello): string | undefined {
  return (
    checkName('name', h.name) ??
    checkUid('uid', h.uid) ??
    checkUid('connId', h.connId) ??
    (Number.isInteger(h.shortId) && h.shortId >= 0 && h.shortId <= MAX_SHORT_ID
      ? undefined
      : `shortId ${h.shortId} is not a 12-bit value`) ??
    checkText('nickname', h.nickname, 1, MAX_NICKNAME) ??
    checkText('software', h.software, 0, MAX_SOFTWARE) ??
    (h.overlays.length <= MAX_OVERLAYS ? undefined : `${h.overlays.length} overlays, more than ${MAX_OVERLAYS}`) ??
    h.overlays.reduce<string | undefined>((p, o, i) => p ?? checkText(`overlays[${i}]`, o, 1, MAX_OVERLAY_NAME), undefined) ??
    (Number.isInteger(h.listenPort) && h.listenPort >= 1 && h.listenPort <= MAX_PORT
      ? undefined
      : `listenPort ${h.listenPort} is not a TCP port`)
  );
}

function checkGossip(g: GossipMessage): string | undefined {
  if (!Object.hasOwn(KIND_TO_WIRE, g.kind)) return `unknown kind ${quoteForLog(String(g.kind))}`;
  if (g.kind === 'unicast' && g.dst === undefined) return 'unicast without dst';
  return (
    checkText('channel', g.channel, 1, MAX_CHANNEL) ??
    checkName('src', g.src) ??
    (g.kind === 'unicast' && g.dst !== undefined ? checkName('dst', g.dst) : undefined)
  );
}

function checkName(field: string, name: PeerName): string | undefined {
  const n = peerNameToNumber(name);
  return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(name) && n > 0
    ? undefined
    : `${field} ${quoteForLog(name)} is not a non-zero peer name`;
}

function checkUid(field: string, uid: Uid): string | undefined {
  return uid > 0n && uid < 2n ** 64n ? undefined : `${field} must be a non-zero 64-bit value`;
}

/** Lengths are in UTF-8 bytes, the unit the wire and the log pay for. */
function checkText(field: string, text: string, min: number, max: number): string | undefined {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes < min) return `${field} is empty`;
  if (bytes > max) return `${field} is ${bytes} bytes long, more than ${max}`;
  if (CONTROL.test(text)) return `${field} ${quoteForLog(text)} contains control characters`;
  return undefined;
}
