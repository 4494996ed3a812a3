// The fast path's heartbeat: an Ethernet frame of the overlay MTU's full size, sent by injecting it
// into our TAP, so that it takes the very path pod frames take (bridge `weave`, forwarding entry,
// vxlan-6784, UDP 6784 across the underlay, the peer's vxlan-6784 and bridge), and read back from
// the peer's TAP, which answers the same way. An answered heartbeat proves that path in both
// directions and, being full-size with DF set on the outer packet, that the overlay MTU fits it.
// Small heartbeats travel beside the full-size ones only to tell "blocked" from "MTU too small".
//
// Layout (pure; no I/O here):
//   dst MAC   heartbeat MAC of the receiver   (the receiver's bridge sends it to its TAP)
//   src MAC   heartbeat MAC of the sender     (so that the answer knows where to go)
//   ethertype 0x88b5 (IEEE 802 local experimental: nothing else on the bridge uses it)
//   magic "WFHB" (4), kind (1: 1 request, 2 answer, 3 announce), size (1: 0 full, 1 small),
//   2 zero bytes, connection UID (8, big-endian), sequence (4), zero padding to the frame's length.
//
// An announcement is the same frame sent over the sleeve, with a pod's MAC as its source: "this
// MAC is here". A peer whose frames for a MAC keep arriving over the sleeve although the fast path
// between us is healthy does not know where that MAC is (the MAC's own frames reach it through
// VXLAN, past its forwarder, so it cannot learn them); the announcement tells it.
import { createHash } from 'node:crypto';
import type { PeerName } from '../../net/peer-name.js';
import { macFromBytes, type Mac } from '../forwarder/mac.js';

export const HEARTBEAT_ETHERTYPE = 0x88b5;
const MAGIC = 0x57464842; // "WFHB"
const ETH_HEADER = 14;
const BODY = 20;
/** The frame's length for a small heartbeat (Ethernet's minimum payload is 46 bytes). */
export const SMALL_HEARTBEAT_PAYLOAD = 46;

export type HeartbeatKind = 'request' | 'answer' | 'announce';

export interface Heartbeat {
  readonly dst: Mac;
  readonly src: Mac;
  readonly kind: HeartbeatKind;
  /** Full-size (the MTU check) or small (only to tell a blocked path from a too-small MTU). */
  readonly full: boolean;
  readonly connectionUid: bigint;
  readonly seq: number;
}

const macs = new Map<PeerName, Mac>();

/**
 * The MAC a peer's heartbeats are addressed to: a hash of its name, unicast and locally
 * administered. Not the name itself: a name given with --name could be a real MAC on the bridge.
 */
export function heartbeatMac(peer: PeerName): Mac {
  let mac = macs.get(peer);
  if (mac === undefined) {
    const h = createHash('sha256').update(`weft fastdp heartbeat ${peer}`).digest();
    h[0] = (h[0]! | 0x02) & 0xfe;
    mac = macFromBytes(h, 0);
    macs.set(peer, mac);
  }
  return mac;
}

function writeMac(buf: Buffer, offset: number, mac: Mac): void {
  buf.writeUIntBE(mac, offset, 6);
}

/** The frame (no virtio header); `payload` bytes after the Ethernet header (the MTU for a full one). */
export function encodeHeartbeat(h: Heartbeat, payload: number): Buffer {
  if (!Number.isInteger(payload) || payload < BODY) throw new RangeError(`heartbeat payload of ${payload} bytes: want at least ${BODY}`);
  const buf = Buffer.alloc(ETH_HEADER + payload);
  writeMac(buf, 0, h.dst);
  writeMac(buf, 6, h.src);
  buf.writeUInt16BE(HEARTBEAT_ETHERTYPE, 12);
  buf.writeUInt32BE(MAGIC, 14);
  buf[18] = h.kind === 'request' ? 1 : h.kind === 'answer' ? 2 : 3;
  buf[19] = h.full ? 0 : 1;
  buf.writeBigUInt64BE(h.connectionUid, 22);
  buf.writeUInt32BE(h.seq >>> 0, 30);
  return buf;
}

/** A heartbeat at `offset` of `frame` (past a virtio header), or undefined if it is not one. */
export function decodeHeartbeat(frame: Uint8Array, offset = 0): Heartbeat | undefined {
  if (frame.length < offset + ETH_HEADER + BODY) return undefined;
  const b = Buffer.from(frame.buffer, frame.byteOffset + offset, frame.length - offset);
  if (b.readUInt16BE(12) !== HEARTBEAT_ETHERTYPE || b.readUInt32BE(14) !== MAGIC) return undefined;
  const kind = b[18] === 1 ? 'request' : b[18] === 2 ? 'answer' : b[18] === 3 ? 'announce' : undefined;
  if (kind === undefined || (b[19] !== 0 && b[19] !== 1)) return undefined;
  return {
    dst: macFromBytes(b, 0),
    src: macFromBytes(b, 6),
    kind,
    full: b[19] === 0,
    connectionUid: b.readBigUInt64BE(22),
    seq: b.readUInt32BE(30),
  };
}
