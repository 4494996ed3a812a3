// A pod's link as it should be, against the link as it is: pure. A pod attached by the CNI plugin
// has a veth pair: `vethwepl<first 7 of the container id>` on the bridge, and its peer in the pod's
// namespace named as the runtime asked (`eth0`), with the pod's address (the whole range's prefix:
// DESIGN §6, layer 2), the default route via the bridge's address, the overlay MTU and
// gso_max_size 62000 on both ends (a super-frame fits one sealed UDP message). The shell
// (pod-link.ts) probes both namespaces, plans with planPodLink and runs the actions; the same plan
// with no actions is what CHECK calls healthy.
import { parseIpv4WithPrefix, formatIpv4, parseIpv4 } from '../../net/ipv4.js';
import type { Fix, RepairPlan } from './repair-plan.js';
import { jsonObjects, jsonRecord } from './iproute-json.js';

/** Host-side name prefix, as Weave's: IFNAMSIZ 16 − 1 − len("vethwepl") leaves 7 characters of the id. */
export const HOST_VETH_PREFIX = 'vethwepl';
/** Name of the pod end until it is renamed inside the pod (as Weave's `vethwepg`). */
export const POD_VETH_PREFIX = 'vethwepg';
/** DESIGN §6: a 64 KB super-frame would not fit a sealed UDP message; 62000 does. */
export const POD_GSO_MAX_SIZE = 62000;

export interface PodLinkSpec {
  readonly containerId: string;
  /** The interface name the runtime asked for in the pod (CNI_IFNAME). */
  readonly ifName: string;
  /** Path of the pod's network namespace (CNI_NETNS). */
  readonly netns: string;
  /** The pod's address with the range's prefix, e.g. `10.32.0.5/12`. */
  readonly address: string;
  /** The bridge's own address, the pod's default gateway. */
  readonly gateway: string;
  readonly mtu: number;
  readonly hairpin: boolean;
  /** The bridge the host end joins (`weave`). */
  readonly bridge: string;
}

/** A pod link before its address is known (a first ADD starts on the host end meanwhile). */
export type LinkSpec = Omit<PodLinkSpec, 'address'>;

/** Container ids as the CNI spec allows them: alphanumerics first, then alphanumerics, `_`, `.`, `-`. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Linux interface names: 1-15 bytes, no `/`, `:` or whitespace, not `.` or `..`. */
const IFNAME = /^[^/:\s]{1,15}$/;

export function validateContainerId(id: string): string {
  if (id.length > 1024 || !CONTAINER_ID.test(id)) {
    throw new RangeError(`invalid container id "${id.slice(0, 80)}": want letters and digits, then also _ . -`);
  }
  return id;
}

export function validatePodIfName(name: string): string {
  if (!IFNAME.test(name) || name === '.' || name === '..' || Buffer.byteLength(name) > 15) {
    throw new RangeError(`invalid interface name "${name.slice(0, 80)}": want 1 to 15 bytes without / : or spaces`);
  }
  return name;
}

/** Host and temporary pod-side names of a container's veth pair. */
export function podVethNames(containerId: string): { readonly host: string; readonly peer: string } {
  const id = validateContainerId(containerId).slice(0, 7);
  return { host: `${HOST_VETH_PREFIX}${id}`, peer: `${POD_VETH_PREFIX}${id}` };
}

export function isPodHostVeth(name: string): boolean {
  return name.startsWith(HOST_VETH_PREFIX) && name.length > HOST_VETH_PREFIX.length;
}

// ---- what the namespaces have ----

/** A link as `ip -d -j link show` / `addr show` describes it. */
export interface LinkState {
  readonly name: string;
  readonly ifindex: number;
  /** The peer's ifindex (in its own namespace) for a veth. */
  readonly peerIfindex: number | undefined;
  readonly kind: string;
  readonly up: boolean;
  readonly mtu: number;
  readonly mac: string;
  readonly gsoMaxSize: number | undefined;
  readonly master: string | undefined;
  readonly hairpin: boolean | undefined;
  /** IPv4 addresses, `a.b.c.d/len`. */
  readonly addresses: readonly string[];
}

export interface PodNetnsState {
  readonly links: readonly LinkState[];
  /** Gateway and device of the IPv4 default route, if any. */
  readonly defaultRoute: { readonly gateway: string | undefined; readonly dev: string | undefined } | undefined;
}

function parseLink(o: Record<string, unknown>): LinkState {
  const info = jsonRecord(o['linkinfo']);
  const slave = jsonRecord(info?.['info_slave_data']);
  const addrs = Array.isArray(o['addr_info']) ? o['addr_info'].map(jsonRecord) : [];
  return {
    name: typeof o['ifname'] === 'string' ? o['ifname'] : '',
    ifindex: typeof o['ifindex'] === 'number' ? o['ifindex'] : 0,
    peerIfindex: typeof o['link_index'] === 'number' ? o['link_index'] : undefined,
    kind: typeof info?.['info_kind'] === 'string' ? info['info_kind'] : 'device',
    up: Array.isArray(o['flags']) && o['flags'].includes('UP'),
    mtu: typeof o['mtu'] === 'number' ? o['mtu'] : 0,
    mac: typeof o['address'] === 'string' ? o['address'] : '',
    gsoMaxSize: typeof o['gso_max_size'] === 'number' ? o['gso_max_size'] : undefined,
    master: typeof o['master'] === 'string' ? o['master'] : undefined,
    hairpin: typeof slave?.['hairpin'] === 'boolean' ? slave['hairpin'] : undefined,
    addresses: addrs.flatMap((a) =>
      a?.['family'] === 'inet' && typeof a['local'] === 'string' && typeof a['prefixlen'] === 'number' ? [`${a['local']}/${a['prefixlen']}`] : [],
    ),
  };
}

/** The output of `ip -d -j link show dev NAME` (or addr show): the first link, if any. */
export function parseLinkJson(text: string): LinkState | undefined {
  const first = jsonObjects(text, 'the link')[0];
  return first === undefined ? undefined : parseLink(first);
}

/** Separates the sections of the pod probe's output. */
export const POD_PROBE_MARK = '@@weft-pod-probe@@';

/** The commands run inside the pod's namespace to see its links, addresses and default route. */
export const POD_PROBE_SCRIPT = `ip -d -j addr show && echo ${POD_PROBE_MARK} && ip -4 -j route show default`;

export function parsePodProbe(output: string): PodNetnsState {
  const parts = output.split(`${POD_PROBE_MARK}\n`);
  if (parts.length !== 2) throw new Error(`pod probe printed ${parts.length} sections, want 2`);
  const links = jsonObjects(parts[0]!, "the pod's links").map(parseLink);
  const route = jsonObjects(parts[1]!, "the pod's default route")[0];
  return {
    links,
    defaultRoute: route === undefined ? undefined : {
      gateway: typeof route['gateway'] === 'string' ? route['gateway'] : undefined,
      dev: typeof route['dev'] === 'string' ? route['dev'] : undefined,
    },
  };
}

// ---- what to do about it ----

export type PodLinkAction =
  /** An iproute2 command line without the leading `ip`, run in the host's (the node's) namespace. */
  | { readonly where: 'host'; readonly line: string }
  /** An iproute2 command line run in the pod's namespace. */
  | { readonly where: 'pod'; readonly line: string };

/** A fix of a pod's links; the problem is CHECK's answer and ADD's log line. */
export type PodLinkFix = Fix<PodLinkAction>;

/** Unfixable here: ADD fails with it (and rolls back), CHECK reports it. */
export interface PodLinkPlan extends RepairPlan<PodLinkAction> {
  /** The plan makes the veth pair anew (a failed ADD must then delete it). */
  readonly creates: boolean;
}

export interface PlanInput {
  readonly spec: PodLinkSpec;
  /** The host end as it is, or undefined when it does not exist. */
  readonly host: LinkState | undefined;
  /** The pod's namespace as it is. */
  readonly pod: PodNetnsState;
  /** MACs for a new pair (locally administered): set at creation so no probe is needed after. */
  readonly newMacs: { readonly host: string; readonly pod: string };
}

const host = (line: string): PodLinkAction => ({ where: 'host', line });
const pod = (line: string): PodLinkAction => ({ where: 'pod', line });

/** The spec's values checked (the address when there is one); throws a RangeError naming the bad one. */
export function checkSpec(spec: LinkSpec & { readonly address?: string }): void {
  validateContainerId(spec.containerId);
  validatePodIfName(spec.ifName);
  validatePodIfName(spec.bridge);
  if (spec.address !== undefined) parseIpv4WithPrefix(spec.address);
  parseIpv4(spec.gateway);
  if (!Number.isInteger(spec.mtu) || spec.mtu < 576 || spec.mtu > 65535) throw new RangeError(`invalid MTU ${spec.mtu}: want 576-65535`);
  if (!spec.netns.startsWith('/') || /[\s\0]/.test(spec.netns)) throw new RangeError(`invalid netns path "${spec.netns.slice(0, 200)}": want an absolute path`);
}

/**
 * What to change so that the pod's link matches the spec. A pair whose pod end is not in this
 * namespace any more (the runtime gave a new one) is deleted and made again.
 */
export function planPodLink(input: PlanInput): PodLinkPlan {
  const { spec, pod: ns } = input;
  const names = podVethNames(spec.containerId);
  const unfixable: string[] = [];
  const fixes: PodLinkFix[] = [];
  let hostLink = input.host;
  if (hostLink !== undefined && hostLink.kind !== 'veth') {
    return { fixes, unfixable: [`${names.host} is a ${hostLink.kind} device, not a veth`], creates: false };
  }
  // The pod end: the interface asked for, or the pair's own name when a rename did not happen.
  const isPeer = (l: LinkState): boolean => hostLink !== undefined && l.kind === 'veth' && l.peerIfindex === hostLink.ifindex;
  const named = ns.links.find((l) => l.name === spec.ifName);
  let podEnd = named !== undefined && isPeer(named) ? named : ns.links.find((l) => l.name === names.peer && isPeer(l));
  if (named !== undefined && podEnd !== named) {
    // The name is taken by something that is not our pair: not ours to remove.
    return { fixes, unfixable: [`the pod already has an interface ${spec.ifName} that weave did not make`], creates: false };
  }
  let creates = false;
  if (hostLink !== undefined && podEnd === undefined) {
    fixes.push({ problem: `${names.host} has no peer in ${spec.netns}`, actions: [host(`link del ${names.host}`)] });
    hostLink = undefined;
  }
  if (hostLink === undefined) {
    creates = true;
    fixes.push({ problem: `${names.host} was missing`, actions: creationActions(spec, input.newMacs) });
    return { fixes, unfixable, creates };
  }
  podEnd = podEnd!;
  fixHost(hostLink, spec, names.host, fixes);
  if (podEnd.name !== spec.ifName) {
    fixes.push({ problem: `the pod end was still named ${podEnd.name}`, actions: [pod(`link set ${podEnd.name} name ${spec.ifName}`)] });
  }
  fixPod(podEnd, ns, spec, fixes);
  return { fixes, unfixable, creates };
}

/**
 * The actions that make a container's pair anew, host end first (made, on the bridge, up), then
 * the pod end (renamed, addressed, up, routed). MACs are set at creation, so no probe is needed
 * to report them. The same lines serve a plan after a probe and a first ADD without one, which
 * runs the host's half while the address is still being allocated.
 */
export function creationActions(spec: PodLinkSpec, newMacs: PlanInput['newMacs']): PodLinkAction[] {
  return [...hostCreationLines(spec, newMacs).map(host), ...podCreationLines(spec).map(pod)];
}

export function hostCreationLines(spec: LinkSpec, newMacs: PlanInput['newMacs']): string[] {
  const names = podVethNames(spec.containerId);
  const gso = `gso_max_size ${POD_GSO_MAX_SIZE}`;
  return [
    `link add ${names.host} mtu ${spec.mtu} ${gso} address ${newMacs.host} type veth ` +
      `peer name ${names.peer} mtu ${spec.mtu} ${gso} address ${newMacs.pod} netns ${spec.netns}`,
    `link set ${names.host} master ${spec.bridge}`,
    `link set dev ${names.host} type bridge_slave hairpin ${spec.hairpin ? 'on' : 'off'}`,
    `link set ${names.host} up`,
  ];
}

export function podCreationLines(spec: PodLinkSpec): string[] {
  const names = podVethNames(spec.containerId);
  return [
    `link set ${names.peer} name ${spec.ifName}`,
    `addr add ${spec.address} dev ${spec.ifName}`,
    `link set ${spec.ifName} up`,
    `route replace default via ${spec.gateway} dev ${spec.ifName}`,
  ];
}

function fixHost(l: LinkState, spec: PodLinkSpec, name: string, fixes: PodLinkFix[]): void {
  if (l.mtu !== spec.mtu) fixes.push({ problem: `MTU of ${name} was ${l.mtu}, want ${spec.mtu}`, actions: [host(`link set ${name} mtu ${spec.mtu}`)] });
  if (l.gsoMaxSize !== undefined && l.gsoMaxSize !== POD_GSO_MAX_SIZE) {
    fixes.push({ problem: `gso_max_size of ${name} was ${l.gsoMaxSize}`, actions: [host(`link set ${name} gso_max_size ${POD_GSO_MAX_SIZE}`)] });
  }
  if (l.master !== spec.bridge) {
    fixes.push({ problem: `${name} was ${l.master === undefined ? 'on no bridge' : `on ${l.master}`}`, actions: [host(`link set ${name} master ${spec.bridge}`)] });
  }
  // After a move to the bridge the hairpin flag is the bridge port's default (off): set it again.
  if (l.master !== spec.bridge || l.hairpin !== spec.hairpin) {
    fixes.push({
      problem: `hairpin of ${name} was ${l.hairpin === true ? 'on' : 'off'}, want ${spec.hairpin ? 'on' : 'off'}`,
      actions: [host(`link set dev ${name} type bridge_slave hairpin ${spec.hairpin ? 'on' : 'off'}`)],
    });
  }
  if (!l.up) fixes.push({ problem: `${name} was down`, actions: [host(`link set ${name} up`)] });
}

function fixPod(l: LinkState, ns: PodNetnsState, spec: PodLinkSpec, fixes: PodLinkFix[]): void {
  const dev = spec.ifName;
  if (l.mtu !== spec.mtu) fixes.push({ problem: `MTU of ${dev} was ${l.mtu}, want ${spec.mtu}`, actions: [pod(`link set ${dev} mtu ${spec.mtu}`)] });
  if (l.gsoMaxSize !== undefined && l.gsoMaxSize !== POD_GSO_MAX_SIZE) {
    fixes.push({ problem: `gso_max_size of ${dev} was ${l.gsoMaxSize}`, actions: [pod(`link set ${dev} gso_max_size ${POD_GSO_MAX_SIZE}`)] });
  }
  const want = normaliseCidr(spec.address);
  for (const a of l.addresses) {
    if (a !== want) fixes.push({ problem: `${dev} had stale address ${a}`, actions: [pod(`addr del ${a} dev ${dev}`)] });
  }
  if (!l.addresses.includes(want)) fixes.push({ problem: `${dev} lacked address ${want}`, actions: [pod(`addr add ${want} dev ${dev}`)] });
  if (!l.up) fixes.push({ problem: `${dev} was down`, actions: [pod(`link set ${dev} up`)] });
  const r = ns.defaultRoute;
  // A stale address or a link brought up again takes the route with it: replace it after those.
  const routeGone = fixes.some((f) => f.actions.some((a) => a.where === 'pod' && (a.line.startsWith('addr ') || a.line.includes(' up'))));
  if (r === undefined || r.gateway !== spec.gateway || r.dev !== dev || routeGone) {
    const was = r === undefined ? 'missing' : `via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`;
    fixes.push({ problem: `default route was ${was}, want via ${spec.gateway} dev ${dev}`, actions: [pod(`route replace default via ${spec.gateway} dev ${dev}`)] });
  }
}

function normaliseCidr(cidr: string): string {
  const a = parseIpv4WithPrefix(cidr);
  return `${formatIpv4(a.address)}/${a.prefixLength}`;
}

/** A random locally administered unicast MAC from 5 random bytes. */
export function localMac(random: Uint8Array): string {
  if (random.length < 5) throw new RangeError('want 5 random bytes');
  return ['02', ...[...random.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
