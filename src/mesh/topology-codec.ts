// The messages of the topology channel, and their protobuf form (TopologyMessage in
// proto/weft.proto). Decoding checks every field and yields domain values (PeerName, Uid,
// connection lists sorted by name), so the gossip core never sees a malformed record. Our own
// messages pass the same checks on the way out: a bug of ours fails here, not at the peer.
import { weft } from '../proto.js';
import { peerNameFromNumber, peerNameToNumber, type PeerName } from '../net/peer-name.js';
import { uidFromBytes, uidToBytes, type Uid } from '../net/uid.js';
import { ProtocolError, quoteForLog } from './protocol-error.js';
import {
  canonicalConnections,
  TOPOLOGY_HASH_BYTES,
  type ConnectionSummary,
  type PeerDelta,
  type PeerRecord,
  type PeerVersion,
} from './topology.js';

export type TopologyMessage =
  /**
   * News. `senderVersion` > 0: the sender flooded this to every peer its own record at that
   * version lists (see topology-gossip.ts); 0: it went to us alone (an answer to a request).
   */
  | {
      readonly type: 'update';
      readonly peers: readonly PeerRecord[];
      readonly deltas: readonly PeerDelta[];
      readonly senderVersion: number;
    }
  /**
   * Anti-entropy: a probe (no versions, not full), a complete version list (full), or an
   * announcement of versions the receiver lacks (not full, with versions).
   */
  | {
      readonly type: 'digest';
      readonly hash: Uint8Array;
      readonly full: boolean;
      readonly reply: boolean;
      readonly versions: readonly PeerVersion[];
    }
  /** Asks for the full records of these peers. */
  | { readonly type: 'request'; readonly names: readonly PeerName[] };

/** A topology message we refuse. A ProtocolError, so the connection shell closes the link. */
export class TopologyDecodeError extends ProtocolError {
  constructor(message: string) {
    super(message);
    this.name = 'TopologyDecodeError';
  }
}

const MAX_NAME = 2 ** 48 - 1;
const MAX_SHORT_ID = 4095;
const MAX_TEXT = 255;
/** C0 and C1 control characters and DEL: they have no place in names and would mangle logs. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// ---- encoding -------------------------------------------------------------------------------

/** Encodes one of our messages. A message that breaks the rules is our bug: RangeError. */
export function encodeTopologyMessage(m: TopologyMessage): Uint8Array {
  const problem = checkMessage(m);
  if (problem !== undefined) throw new RangeError(`refusing to send an invalid topology ${m.type}: ${problem}`);
  return weft.TopologyMessage.encode(toWire(m)).finish();
}

function toWire(m: TopologyMessage): weft.TopologyMessage.$Properties {
  switch (m.type) {
    case 'update':
      return {
        update: { peers: m.peers.map(wireRecord), deltas: m.deltas.map(wireDelta), senderVersion: m.senderVersion },
      };
    case 'digest':
      return {
        digest: {
          hash: m.hash,
          full: m.full,
          reply: m.reply,
          versions: m.versions.map((v) => ({ name: peerNameToNumber(v.name), uid: uidToBytes(v.uid), version: v.version })),
        },
      };
    case 'request':
      return { request: { names: m.names.map(peerNameToNumber) } };
  }
}

function wireConnection(c: ConnectionSummary): weft.ConnectionSummary.$Properties {
  return { name: peerNameToNumber(c.name), address: c.address, outbound: c.outbound, established: c.established };
}

function wireRecord(r: PeerRecord): weft.PeerSummary.$Properties {
  return {
    name: peerNameToNumber(r.name),
    nickname: r.nickname,
    uid: uidToBytes(r.uid),
    version: r.version,
    shortId: r.shortId,
    connections: r.connections.map(wireConnection),
  };
}

function wireDelta(d: PeerDelta): weft.PeerDelta.$Properties {
  return {
    name: peerNameToNumber(d.name),
    uid: uidToBytes(d.uid),
    fromVersion: d.fromVersion,
    version: d.version,
    nickname: d.nickname,
    shortId: d.shortId,
    upserts: d.upserts.map(wireConnection),
    removes: d.removes.map(peerNameToNumber),
  };
}

// ---- decoding -------------------------------------------------------------------------------

/** Decodes and checks a topology message from a peer; throws TopologyDecodeError otherwise. */
export function decodeTopologyMessage(bytes: Uint8Array): TopologyMessage {
  let wire: weft.TopologyMessage;
  try {
    wire = weft.TopologyMessage.decode(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new TopologyDecodeError(`undecodable topology message of ${bytes.length} bytes: ${reason}`);
  }
  let m: TopologyMessage;
  switch (wire.body) {
    case 'update': {
      const u = wire.update!;
      m = {
        type: 'update',
        peers: (u.peers ?? []).map(fromWireRecord),
        deltas: (u.deltas ?? []).map(fromWireDelta),
        senderVersion: counter('update', 'senderVersion', uint64Field(u, 'senderVersion')),
      };
      break;
    }
    case 'digest': {
      const d = wire.digest!;
      m = {
        type: 'digest',
        hash: d.hash ?? new Uint8Array(0),
        full: d.full === true,
        reply: d.reply === true,
        versions: (d.versions ?? []).map((v) => ({
          name: name('version', uint64Field(v, 'name')),
          uid: uid('version', v.uid),
          version: counter('version', 'version', uint64Field(v, 'version')),
        })),
      };
      break;
    }
    case 'request':
      m = { type: 'request', names: (wire.request!.names ?? []).map((n) => name('request', n)) };
      break;
    default:
      throw new TopologyDecodeError(`topology message of unknown type (${bytes.length} bytes)`);
  }
  const problem = checkMessage(m);
  if (problem !== undefined) throw new TopologyDecodeError(`invalid topology ${m.type} from peer: ${problem}`);
  return m;
}

// The wire-to-type conversions reject what cannot be represented (a name beyond 48 bits, a uid of
// the wrong length, a counter beyond 2^53); checkMessage then applies the rules to typed values.

function fromWireConnection(c: weft.ConnectionSummary.$Properties): ConnectionSummary {
  return {
    name: name('connection', uint64Field(c, 'name')),
    address: c.address ?? '',
    outbound: c.outbound === true,
    established: c.established === true,
  };
}

function fromWireRecord(r: weft.PeerSummary.$Properties): PeerRecord {
  const owner = name('peer', uint64Field(r, 'name'));
  const connections = (r.connections ?? []).map(fromWireConnection);
  return {
    name: owner,
    nickname: r.nickname ?? '',
    uid: uid('peer', r.uid),
    version: counter('peer', 'version', uint64Field(r, 'version')),
    shortId: r.shortId ?? 0,
    // Order carries no meaning on the wire; ours is by name. Duplicates are refused by the check.
    connections: sortedIfUnique(owner, connections),
  };
}

function fromWireDelta(d: weft.PeerDelta.$Properties): PeerDelta {
  const owner = name('delta', uint64Field(d, 'name'));
  return {
    name: owner,
    uid: uid('delta', d.uid),
    fromVersion: counter('delta', 'fromVersion', uint64Field(d, 'fromVersion')),
    version: counter('delta', 'version', uint64Field(d, 'version')),
    nickname: d.nickname ?? '',
    shortId: d.shortId ?? 0,
    upserts: sortedIfUnique(owner, (d.upserts ?? []).map(fromWireConnection)),
    removes: (d.removes ?? []).map((n) => name('delta', n)),
  };
}

function sortedIfUnique(owner: PeerName, conns: ConnectionSummary[]): ConnectionSummary[] {
  const sorted = canonicalConnections(owner, conns);
  // canonicalConnections drops duplicates and self-connections; keep the original so the check
  // can name what was wrong.
  return sorted.length === conns.length ? sorted : conns;
}

/**
 * A uint64 field as decoded: the generated decoder sets it only when it is not zero and otherwise
 * leaves the prototype's default (a Long object if protobufjs found `long` when the generated
 * module loaded). Own properties only, then.
 */
function uint64Field<K extends string>(message: { [key in K]?: number | null }, field: K): unknown {
  return Object.hasOwn(message, field) ? message[field] : 0;
}

function name(what: string, n: unknown): PeerName {
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0 || n > MAX_NAME) {
    throw new TopologyDecodeError(`invalid topology ${what} from peer: ${String(n)} is not a 48-bit peer name`);
  }
  return peerNameFromNumber(n);
}

function uid(what: string, value: Uint8Array | null | undefined): Uid {
  if (!value || value.length !== 8) {
    throw new TopologyDecodeError(`invalid topology ${what} from peer: uid must be 8 bytes, got ${value ? value.length : 0}`);
  }
  return uidFromBytes(value);
}

function counter(what: string, field: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new TopologyDecodeError(`invalid topology ${what} from peer: ${field} ${String(n)} is out of range`);
  }
  return n;
}

// ---- the rules, for both directions -----------------------------------------------------------

function checkMessage(m: TopologyMessage): string | undefined {
  switch (m.type) {
    case 'update':
      return (
        firstProblem(m.peers, checkRecord) ??
        firstProblem(m.deltas, checkDelta) ??
        (Number.isSafeInteger(m.senderVersion) && m.senderVersion >= 0 ? undefined : `senderVersion ${m.senderVersion} is out of range`)
      );
    case 'digest':
      return (
        (m.hash.length === TOPOLOGY_HASH_BYTES ? undefined : `hash must be ${TOPOLOGY_HASH_BYTES} bytes, got ${m.hash.length}`) ??
        firstProblem(m.versions, (v) => checkName('version name', v.name) ?? checkUid(v.uid) ?? checkVersion('version', v.version)) ??
        checkUnique('versions', m.versions.map((v) => v.name))
      );
    case 'request':
      return firstProblem(m.names, (n) => checkName('request name', n)) ?? checkUnique('names', m.names);
  }
}

function checkRecord(r: PeerRecord): string | undefined {
  return (
    checkName('peer name', r.name) ??
    checkUid(r.uid) ??
    checkVersion('version', r.version) ??
    checkShortId(r.shortId) ??
    checkText('nickname', r.nickname) ??
    checkConnections(r.name, r.connections)
  );
}

function checkDelta(d: PeerDelta): string | undefined {
  const upserted = new Set(d.upserts.map((c) => c.name));
  return (
    checkName('delta name', d.name) ??
    checkUid(d.uid) ??
    checkVersion('fromVersion', d.fromVersion) ??
    (d.version > d.fromVersion ? undefined : `delta of ${d.name} goes from version ${d.fromVersion} to ${d.version}`) ??
    checkShortId(d.shortId) ??
    checkText('nickname', d.nickname) ??
    checkConnections(d.name, d.upserts) ??
    firstProblem(d.removes, (n) => checkName('removed name', n) ?? (n === d.name ? `${n} removes itself` : undefined)) ??
    checkUnique('removes', d.removes) ??
    (d.removes.some((n) => upserted.has(n)) ? `delta of ${d.name} both changes and removes a connection` : undefined)
  );
}

function checkConnections(owner: PeerName, conns: readonly ConnectionSummary[]): string | undefined {
  return (
    firstProblem(conns, (c) =>
      checkName('connection name', c.name) ??
      (c.name === owner ? `${owner} lists a connection to itself` : undefined) ??
      (c.address.length <= MAX_TEXT && !CONTROL.test(c.address) ? undefined : `address ${quoteForLog(c.address)} is not acceptable`),
    ) ?? checkUnique(`connections of ${owner}`, conns.map((c) => c.name))
  );
}

function firstProblem<T>(items: readonly T[], check: (item: T) => string | undefined): string | undefined {
  for (const item of items) {
    const problem = check(item);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function checkUnique(what: string, names: readonly PeerName[]): string | undefined {
  const seen = new Set<PeerName>();
  for (const n of names) {
    if (seen.has(n)) return `${what} list ${n} twice`;
    seen.add(n);
  }
  return undefined;
}

function checkName(field: string, n: PeerName): string | undefined {
  return /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(n) && peerNameToNumber(n) > 0
    ? undefined
    : `${field} ${quoteForLog(n)} is not a non-zero peer name`;
}

function checkUid(u: Uid): string | undefined {
  return u > 0n && u < 2n ** 64n ? undefined : 'uid must be a non-zero 64-bit value';
}

function checkVersion(field: string, v: number): string | undefined {
  return Number.isSafeInteger(v) && v >= 1 ? undefined : `${field} ${v} is not a positive version`;
}

function checkShortId(s: number): string | undefined {
  return Number.isInteger(s) && s >= 0 && s <= MAX_SHORT_ID ? undefined : `shortId ${s} is not a 12-bit value`;
}

function checkText(field: string, text: string): string | undefined {
  return text.length <= MAX_TEXT && !CONTROL.test(text) ? undefined : `${field} ${quoteForLog(text)} is not acceptable`;
}
