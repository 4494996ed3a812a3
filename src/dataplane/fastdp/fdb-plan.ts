// The forwarding entries of the fast path, as they should be against as they are: pure.
//
// For every MAC the forwarder has learned at a peer whose direct connection is on fastdp, two
// entries on vxlan-6784: the VXLAN driver's own ("self": this MAC is behind that node's address)
// and the bridge's ("master", static and sticky: frames for this MAC leave through vxlan-6784, and
// the bridge's own learning on other ports cannot move it). Each peer's heartbeat MAC gets the
// same pair whenever its connection offers fastdp, healthy or not: the heartbeat must always be
// able to try the path. Our own heartbeat MAC gets a static entry on the TAP, so that the
// peers' heartbeats arriving from vxlan-6784 go to the daemon and to no pod.
//
// Nothing else is programmed: unknown and broadcast destinations have no entry (no all-zeros
// entry either), and the bridge port has flooding off, so the bridge never floods into the
// VXLAN device; those frames reach the TAP and the forwarder floods them over the sleeve as before.
import type { PeerName } from '../../net/peer-name.js';
import { formatMac, isGroupMac, parseMac, type Mac } from '../forwarder/mac.js';
import { jsonObjects } from '../host/iproute-json.js';

export interface FdbPeer {
  /** The peer's underlay address: where its VXLAN packets go. */
  readonly ip: string;
  /** Both ends offer fastdp on this connection: program its heartbeat MAC. */
  readonly offered: boolean;
  /** Its heartbeats are answered: program the MACs learned at it. */
  readonly healthy: boolean;
  readonly heartbeatMac: Mac;
}

export interface FdbWanted {
  readonly vxlan: string;
  readonly tap: string;
  readonly selfHeartbeatMac: Mac;
  readonly peers: ReadonlyMap<PeerName, FdbPeer>;
  /** The forwarder's MAC table: where each MAC was last seen. */
  readonly macs: Iterable<{ readonly mac: Mac; readonly peer: PeerName }>;
}

/** One entry of `bridge -j fdb show` that is ours to manage. */
export interface FdbEntry {
  readonly mac: Mac;
  readonly dev: string;
  /** 'self': the VXLAN driver's table (with dst); 'master': the bridge's. */
  readonly table: 'self' | 'master';
  readonly dst?: string;
}

export interface FdbPlan {
  /** `bridge -batch` lines, removals of bridge entries first, then VXLAN entries before the bridge's. */
  readonly lines: readonly string[];
  readonly added: number;
  readonly moved: number;
  readonly removed: number;
}

/**
 * The entries of `bridge -j fdb show` output that the plan manages: on the VXLAN device, every
 * VXLAN entry with a destination and every static bridge entry (not the device's own permanent
 * one); on the TAP, static bridge entries only (dynamic ones are the bridge's learning).
 */
export function parseFdb(json: string, vxlan: string, tap: string): FdbEntry[] {
  const out: FdbEntry[] = [];
  for (const e of jsonObjects(json, 'bridge fdb output')) {
    const dev = e['ifname'];
    if ((dev !== vxlan && dev !== tap) || typeof e['mac'] !== 'string') continue;
    const flags = Array.isArray(e['flags']) ? e['flags'] : [];
    const mac = parseMac(e['mac']);
    if (flags.includes('self')) {
      if (dev === vxlan && typeof e['dst'] === 'string') out.push({ mac, dev, table: 'self', dst: e['dst'] });
    } else if (typeof e['master'] === 'string' && e['state'] === 'static') {
      out.push({ mac, dev, table: 'master' });
    }
  }
  return out;
}

/** What to change so that the entries are `want`; empty lines when all is in place. */
export function planFdb(want: FdbWanted, have: readonly FdbEntry[]): FdbPlan {
  // Desired: MAC -> destination on the VXLAN device; MACs with a static entry on the TAP.
  const vx = new Map<Mac, string>();
  for (const [, p] of want.peers) if (p.offered) vx.set(p.heartbeatMac, p.ip);
  for (const { mac, peer } of want.macs) {
    const p = want.peers.get(peer);
    if (p === undefined || !p.healthy || isGroupMac(mac) || vx.has(mac)) continue;
    vx.set(mac, p.ip);
  }
  const tapWanted = new Set<Mac>([want.selfHeartbeatMac]);

  const haveSelf = new Map<Mac, string>();
  const haveMaster = new Set<Mac>();
  const haveTap = new Set<Mac>();
  for (const e of have) {
    if (e.dev === want.vxlan && e.table === 'self' && e.dst !== undefined) haveSelf.set(e.mac, e.dst);
    else if (e.dev === want.vxlan && e.table === 'master') haveMaster.add(e.mac);
    else if (e.dev === want.tap && e.table === 'master') haveTap.add(e.mac);
  }

  const removeMaster: string[] = [];
  const removeSelf: string[] = [];
  const setSelf: string[] = [];
  const setMaster: string[] = [];
  let added = 0;
  let moved = 0;
  let removed = 0;
  const m = (mac: Mac): string => formatMac(mac);
  for (const mac of haveMaster) if (!vx.has(mac)) removeMaster.push(`fdb del ${m(mac)} dev ${want.vxlan} master`);
  for (const mac of haveTap) if (!tapWanted.has(mac)) removeMaster.push(`fdb del ${m(mac)} dev ${want.tap} master`);
  for (const [mac] of haveSelf) {
    if (!vx.has(mac)) {
      removeSelf.push(`fdb del ${m(mac)} dev ${want.vxlan} self`);
      removed++;
    }
  }
  for (const [mac, ip] of vx) {
    const at = haveSelf.get(mac);
    if (at !== ip) {
      setSelf.push(`fdb replace ${m(mac)} dev ${want.vxlan} dst ${ip} self permanent`);
      if (at === undefined) added++;
      else moved++;
    }
    if (!haveMaster.has(mac)) setMaster.push(`fdb replace ${m(mac)} dev ${want.vxlan} master static sticky`);
  }
  for (const mac of tapWanted) if (!haveTap.has(mac)) setMaster.push(`fdb replace ${m(mac)} dev ${want.tap} master static sticky`);
  return { lines: [...removeMaster, ...removeSelf, ...setSelf, ...setMaster], added, moved, removed };
}
