// The VXLAN device of the fast path as it should be, against as it is: pure. One device for all
// peers (`vxlan-6784`: one VNI, UDP 6784, no learning, DF set so that an oversized packet is
// dropped and the full-size heartbeat notices, never fragmented), a port of bridge `weave` with
// the overlay MTU, its bridge port neither learning (the daemon programs every entry) nor
// flooding (unknown and broadcast frames go to the TAP and the sleeve, never into VXLAN).
//
// The overlay MTU stays the pods' MTU (--mtu): the VXLAN packet adds 50 bytes to it on the
// underlay, so fastdp needs mtu + 50 <= the underlay's MTU (VXLAN_OVERHEAD; see vxlanFits).
import { asBool, asNumber, asString, jsonObjects, jsonRecord } from '../host/iproute-json.js';
import type { Fix } from '../host/repair-plan.js';

export const VXLAN_NAME = 'vxlan-6784';
export const VXLAN_PORT = 6784;
/** One VNI for every peer ("WFT"); peers are told apart by their address, not the VNI. */
export const VXLAN_VNI = 0x574654;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) bytes. */
export const VXLAN_OVERHEAD = 50;

export interface VxlanConfig {
  readonly name: string;
  readonly vni: number;
  readonly port: number;
  readonly mtu: number;
  readonly bridge: string;
  /** Source address of the VXLAN packets ('' = chosen by the routes). */
  readonly local: string;
}

/** Whether an overlay MTU fits an underlay MTU once wrapped in VXLAN. */
export function vxlanFits(mtu: number, underlayMtu: number): boolean {
  return mtu + VXLAN_OVERHEAD <= underlayMtu;
}

export interface VxlanState {
  readonly kind: string;
  readonly vni: number | undefined;
  readonly port: number | undefined;
  readonly local: string | undefined;
  readonly learning: boolean;
  readonly df: string | undefined;
  readonly mtu: number;
  readonly master: string | undefined;
  readonly up: boolean;
  readonly portLearning: boolean | undefined;
  readonly portFlood: boolean | undefined;
  readonly portMcastFlood: boolean | undefined;
  readonly portBcastFlood: boolean | undefined;
}

export type VxlanAction = { readonly tool: 'ip' | 'bridge'; readonly line: string };

export type VxlanFix = Fix<VxlanAction>;

/** Reads `ip -d -j link show dev NAME` output ('' when the device does not exist). */
export function parseVxlanProbe(text: string): VxlanState | undefined {
  const link = jsonObjects(text, 'the VXLAN device')[0];
  if (link === undefined) return undefined;
  const info = jsonRecord(link['linkinfo']);
  const data = jsonRecord(info?.['info_data']);
  const slave = jsonRecord(info?.['info_slave_data']);
  return {
    kind: asString(info?.['info_kind']) ?? 'device',
    vni: asNumber(data?.['id']),
    port: asNumber(data?.['port']),
    local: asString(data?.['local']),
    learning: asBool(data?.['learning']) ?? true,
    df: asString(data?.['df']),
    mtu: asNumber(link['mtu']) ?? 0,
    master: asString(link['master']),
    up: Array.isArray(link['flags']) && link['flags'].includes('UP'),
    portLearning: asBool(slave?.['learning']),
    portFlood: asBool(slave?.['flood']),
    portMcastFlood: asBool(slave?.['mcast_flood']),
    portBcastFlood: asBool(slave?.['bcast_flood']),
  };
}

const PORT_FLAGS = 'learning off flood off mcast_flood off bcast_flood off';

function create(c: VxlanConfig): VxlanAction[] {
  return [
    { tool: 'ip', line: `link add ${c.name} type vxlan id ${c.vni} dstport ${c.port} nolearning df set${c.local ? ` local ${c.local}` : ''}` },
    { tool: 'ip', line: `link set ${c.name} mtu ${c.mtu} master ${c.bridge} up` },
    { tool: 'bridge', line: `link set dev ${c.name} ${PORT_FLAGS}` },
  ];
}

/** What to change so that the device is as configured; empty when it is. */
export function planVxlan(state: VxlanState | undefined, c: VxlanConfig): VxlanFix[] {
  if (state === undefined) return [{ problem: `${c.name} was missing`, actions: create(c) }];
  const wrong: string[] = [];
  if (state.kind !== 'vxlan') wrong.push(`a ${state.kind} device`);
  else {
    if (state.vni !== c.vni) wrong.push(`VNI ${state.vni}`);
    if (state.port !== c.port) wrong.push(`port ${state.port}`);
    if ((state.local ?? '') !== c.local) wrong.push(`local address ${state.local ?? 'none'}`);
    if (state.learning) wrong.push('learning on');
    if (state.df !== 'set') wrong.push(`df ${state.df ?? 'unset'}`);
  }
  if (wrong.length > 0) {
    return [{ problem: `${c.name} was ${wrong.join(', ')}: recreated`, actions: [{ tool: 'ip', line: `link del ${c.name}` }, ...create(c)] }];
  }
  const fixes: VxlanFix[] = [];
  if (state.mtu !== c.mtu) fixes.push({ problem: `MTU of ${c.name} was ${state.mtu}, want ${c.mtu}`, actions: [{ tool: 'ip', line: `link set ${c.name} mtu ${c.mtu}` }] });
  if (state.master !== c.bridge) {
    fixes.push({ problem: `${c.name} was ${state.master ? `on ${state.master}` : 'on no bridge'}`, actions: [{ tool: 'ip', line: `link set ${c.name} master ${c.bridge}` }] });
  }
  if (!state.up) fixes.push({ problem: `${c.name} was down`, actions: [{ tool: 'ip', line: `link set ${c.name} up` }] });
  const flags = [state.portLearning, state.portFlood, state.portMcastFlood, state.portBcastFlood];
  if (state.master === c.bridge && flags.some((f) => f !== false)) {
    fixes.push({ problem: `bridge port ${c.name} learned or flooded`, actions: [{ tool: 'bridge', line: `link set dev ${c.name} ${PORT_FLAGS}` }] });
  } else if (state.master !== c.bridge) {
    fixes.push({ problem: `bridge port flags of ${c.name}`, actions: [{ tool: 'bridge', line: `link set dev ${c.name} ${PORT_FLAGS}` }] });
  }
  return fixes;
}
