// The bridge as it should be, against the bridge as it is: pure. `parseBridgeProbe` reads what
// one probe of the host printed; `planBridge` lists what differs from the configuration, each
// difference with the commands that fix it. The shell (bridge.ts) probes, plans and applies.
import { parseIpv4WithPrefix, formatIpv4 } from '../../net/ipv4.js';
import type { Fix as RepairFix, RepairPlan } from './repair-plan.js';
import { jsonObjects, jsonRecord } from './iproute-json.js';

export interface BridgeConfig {
  /** The bridge; `weave` unless given. */
  readonly name?: string;
  /** The overlay MTU, for the bridge and its port; 1376 unless given. */
  readonly mtu?: number;
  /** The bridge's own address with the range's prefix ("10.32.0.1/12"): the pods' gateway. None yet if absent. */
  readonly address?: string;
  /** The port to keep on the bridge (the TAP `vethwe-tap`); no port is checked if absent. */
  readonly port?: string;
  /**
   * The bridge's MAC. If absent, whatever MAC it has is pinned: a bridge left to itself takes
   * the lowest MAC of its ports and changes it as ports come and go, and every pod's ARP entry
   * for its gateway goes stale each time.
   */
  readonly mac?: string;
}

export const DEFAULT_BRIDGE = 'weave';
export const DEFAULT_PORT = 'vethwe-tap';
export const DEFAULT_OVERLAY_MTU = 1376;

/** A root qdisc for the port: its kind as `tc -j` reports it, and the `tc qdisc replace ... root` arguments. */
export interface QdiscChoice {
  readonly kind: string;
  readonly args: readonly string[];
}

/** fq_codel keeps latency low under load (a TAP's frames can be 64 KB super-frames; DESIGN §6). */
export const PORT_QDISC: QdiscChoice = { kind: 'fq_codel', args: ['fq_codel'] };

/**
 * For kernels built without fq_codel (some minimal VM kernels): a short FIFO instead of the
 * default 1000-frame one, the other cure the reference names for latency under load.
 */
export const FALLBACK_PORT_QDISC: QdiscChoice = { kind: 'pfifo', args: ['pfifo', 'limit', '100'] };

/** The configuration with defaults filled in and values checked. */
export interface ResolvedBridgeConfig {
  readonly name: string;
  readonly mtu: number;
  readonly address: { readonly local: string; readonly prefixlen: number } | undefined;
  readonly port: string | undefined;
  readonly mac: string | undefined;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function resolveBridgeConfig(c: BridgeConfig): ResolvedBridgeConfig {
  const name = c.name ?? DEFAULT_BRIDGE;
  const mtu = c.mtu ?? DEFAULT_OVERLAY_MTU;
  if (!IFNAME.test(name)) throw new RangeError(`invalid bridge name "${name}"`);
  if (c.port !== undefined && (!IFNAME.test(c.port) || c.port === name)) throw new RangeError(`invalid port name "${c.port}"`);
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new RangeError(`invalid MTU ${mtu}: want 576-65535`);
  if (c.mac !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(c.mac)) throw new RangeError(`invalid MAC "${c.mac}": want lower-case aa:bb:cc:dd:ee:ff`);
  let address: ResolvedBridgeConfig['address'];
  if (c.address !== undefined) {
    const a = parseIpv4WithPrefix(c.address);
    address = { local: formatIpv4(a.address), prefixlen: a.prefixLength };
  }
  return { name, mtu, address, port: c.port, mac: c.mac };
}

// ---- what the host has ----

export interface BridgeLinkState {
  /** `bridge`, or whatever else holds the name. */
  readonly kind: string;
  readonly up: boolean;
  readonly mtu: number;
  readonly mac: string;
  /** The MAC was set explicitly (addr_assign_type 3), so the bridge keeps it. */
  readonly macPinned: boolean;
  /** IPv4 addresses. */
  readonly addresses: readonly { readonly local: string; readonly prefixlen: number }[];
  /** net.ipv6.conf.<bridge>.accept_ra; undefined when IPv6 is off. */
  readonly acceptRa: string | undefined;
}

export interface PortState {
  readonly master: string | undefined;
  readonly up: boolean;
  readonly mtu: number;
  /** Kind of the root qdisc. */
  readonly qdisc: string | undefined;
}

export interface HostState {
  readonly bridge: BridgeLinkState | undefined;
  readonly port: PortState | undefined;
  readonly ipForward: boolean;
}

/** Separates the sections of the probe's output. */
export const PROBE_MARK = '@@weft-probe@@';

/**
 * One shell run that prints, between marks: the bridge's links and addresses, the port's link,
 * the port's qdiscs, ip_forward, the bridge's accept_ra and its addr_assign_type. One process per
 * check instead of six, since the daemon checks every few seconds.
 */
export function bridgeProbeCommand(c: ResolvedBridgeConfig): string[] {
  const script = [
    'ip -d -j addr show dev "$1" 2>/dev/null',
    `echo ${PROBE_MARK}`,
    '[ -n "$2" ] && ip -d -j link show dev "$2" 2>/dev/null',
    `echo ${PROBE_MARK}`,
    '[ -n "$2" ] && tc -j qdisc show dev "$2" 2>/dev/null',
    `echo ${PROBE_MARK}`,
    'cat /proc/sys/net/ipv4/ip_forward',
    `echo ${PROBE_MARK}`,
    'cat "/proc/sys/net/ipv6/conf/$1/accept_ra" 2>/dev/null',
    `echo ${PROBE_MARK}`,
    'cat "/sys/class/net/$1/addr_assign_type" 2>/dev/null',
    'exit 0',
  ].join('\n');
  return ['sh', '-c', script, 'sh', c.name, c.port ?? ''];
}

/** The first object of an iproute2 JSON array, or undefined if the text holds none. */
function firstJson(text: string, what: string): Record<string, unknown> | undefined {
  return jsonObjects(text, what)[0];
}

function flagsUp(link: Record<string, unknown>): boolean {
  return Array.isArray(link['flags']) && link['flags'].includes('UP');
}

export function parseBridgeProbe(output: string): HostState {
  const parts = output.split(`${PROBE_MARK}\n`);
  if (parts.length !== 6) throw new Error(`bridge probe printed ${parts.length} sections, want 6`);
  const [addrText, portText, qdiscText, forwardText, raText, assignText] = parts as [string, string, string, string, string, string];

  let bridge: BridgeLinkState | undefined;
  const b = firstJson(addrText, 'the bridge');
  if (b !== undefined) {
    const info = jsonRecord(b['linkinfo']);
    const addrs = Array.isArray(b['addr_info']) ? b['addr_info'].map(jsonRecord) : [];
    bridge = {
      kind: typeof info?.['info_kind'] === 'string' ? info['info_kind'] : 'device',
      up: flagsUp(b),
      mtu: typeof b['mtu'] === 'number' ? b['mtu'] : 0,
      mac: typeof b['address'] === 'string' ? b['address'] : '',
      macPinned: assignText.trim() === '3',
      addresses: addrs.flatMap((a) =>
        a?.['family'] === 'inet' && typeof a['local'] === 'string' && typeof a['prefixlen'] === 'number'
          ? [{ local: a['local'], prefixlen: a['prefixlen'] }]
          : [],
      ),
      acceptRa: raText.trim() === '' ? undefined : raText.trim(),
    };
  }

  let port: PortState | undefined;
  const p = firstJson(portText, 'the port');
  if (p !== undefined) {
    const qdiscs = qdiscText.trim() === '' ? [] : (JSON.parse(qdiscText) as unknown);
    const root = Array.isArray(qdiscs) ? qdiscs.map(jsonRecord).find((q) => q?.['root'] === true) : undefined;
    port = {
      master: typeof p['master'] === 'string' ? p['master'] : undefined,
      up: flagsUp(p),
      mtu: typeof p['mtu'] === 'number' ? p['mtu'] : 0,
      qdisc: typeof root?.['kind'] === 'string' ? root['kind'] : undefined,
    };
  }
  return { bridge, port, ipForward: forwardText.trim() === '1' };
}

// ---- what to do about it ----

export type HostAction =
  /** An iproute2 command line without the leading `ip`. */
  | { readonly kind: 'ip'; readonly line: string }
  | { readonly kind: 'tc'; readonly args: readonly string[] }
  /** Write a value into a /proc/sys file (skipped if the file does not exist and `ifExists`). */
  | { readonly kind: 'sysctl'; readonly path: string; readonly value: string; readonly ifExists?: boolean };

/** A fix of the bridge or its rules; the problem goes to the log ("bridge repaired: ..."). */
export type Fix = RepairFix<HostAction>;

/** Unfixable: another kind of device named like our bridge, a missing port. */
export type BridgePlan = RepairPlan<HostAction>;

const ip = (line: string): HostAction => ({ kind: 'ip', line });

/**
 * What to change so that the host matches `c`. A missing bridge gives only the fixes that do not
 * need it: planning again after applying them gives the rest (the shell does so).
 */
export function planBridge(state: HostState, c: ResolvedBridgeConfig, qdisc: QdiscChoice = PORT_QDISC): BridgePlan {
  const fixes: Fix[] = [];
  const unfixable: string[] = [];
  if (!state.ipForward) {
    fixes.push({ problem: 'ip_forward was off', actions: [{ kind: 'sysctl', path: '/proc/sys/net/ipv4/ip_forward', value: '1' }] });
  }
  const br = state.bridge;
  if (br === undefined) {
    fixes.push({ problem: `bridge ${c.name} was missing`, actions: [ip(`link add ${c.name} type bridge`)] });
    return { fixes, unfixable };
  }
  if (br.kind !== 'bridge') {
    unfixable.push(`${c.name} is a ${br.kind} device, not a bridge (left by another network add-on? remove it to let weft create its bridge)`);
    return { fixes, unfixable };
  }
  if (br.mtu !== c.mtu) fixes.push({ problem: `MTU of ${c.name} was ${br.mtu}, want ${c.mtu}`, actions: [ip(`link set ${c.name} mtu ${c.mtu}`)] });
  if (c.mac !== undefined && br.mac !== c.mac) {
    fixes.push({ problem: `MAC of ${c.name} was ${br.mac}, want ${c.mac}`, actions: [ip(`link set ${c.name} address ${c.mac}`)] });
  } else if (c.mac === undefined && !br.macPinned && br.mac !== '') {
    fixes.push({ problem: `MAC of ${c.name} was not pinned`, actions: [ip(`link set ${c.name} address ${br.mac}`)] });
  }
  if (c.address !== undefined) {
    const want = c.address;
    for (const a of br.addresses) {
      if (a.local !== want.local || a.prefixlen !== want.prefixlen) {
        fixes.push({ problem: `${c.name} had stale address ${a.local}/${a.prefixlen}`, actions: [ip(`addr del ${a.local}/${a.prefixlen} dev ${c.name}`)] });
      }
    }
    if (!br.addresses.some((a) => a.local === want.local && a.prefixlen === want.prefixlen)) {
      fixes.push({ problem: `${c.name} lacked address ${want.local}/${want.prefixlen}`, actions: [ip(`addr add ${want.local}/${want.prefixlen} dev ${c.name}`)] });
    }
  }
  if (br.acceptRa !== undefined && br.acceptRa !== '0') {
    fixes.push({
      problem: `${c.name} accepted IPv6 router advertisements`,
      actions: [{ kind: 'sysctl', path: `/proc/sys/net/ipv6/conf/${c.name}/accept_ra`, value: '0', ifExists: true }],
    });
  }
  if (!br.up) fixes.push({ problem: `${c.name} was down`, actions: [ip(`link set ${c.name} up`)] });
  if (c.port !== undefined) planPort(state.port, c, c.port, qdisc, fixes, unfixable);
  return { fixes, unfixable };
}

function planPort(port: PortState | undefined, c: ResolvedBridgeConfig, name: string, qdisc: QdiscChoice, fixes: Fix[], unfixable: string[]): void {
  if (port === undefined) {
    unfixable.push(`port ${name} is missing`);
    return;
  }
  if (port.mtu !== c.mtu) fixes.push({ problem: `MTU of ${name} was ${port.mtu}, want ${c.mtu}`, actions: [ip(`link set ${name} mtu ${c.mtu}`)] });
  if (port.master !== c.name) {
    const was = port.master === undefined ? 'on no bridge' : `on ${port.master}`;
    fixes.push({ problem: `${name} was ${was}`, actions: [ip(`link set ${name} master ${c.name}`)] });
  }
  if (!port.up) fixes.push({ problem: `${name} was down`, actions: [ip(`link set ${name} up`)] });
  if (port.qdisc !== qdisc.kind) {
    fixes.push({
      problem: `qdisc of ${name} was ${port.qdisc ?? 'none'}, want ${qdisc.kind}`,
      actions: [{ kind: 'tc', args: ['qdisc', 'replace', 'dev', name, 'root', ...qdisc.args] }],
    });
  }
}
