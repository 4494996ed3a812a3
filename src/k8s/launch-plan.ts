// The entrypoint's reading of the DaemonSet environment (DESIGN §2, Weave's names and defaults)
// and the weaver command line it makes of it. Pure: env and the API's answers in, argv out.
import { parseCidr, type Cidr } from '../net/ipv4.js';
import { parseHostPort, type HostPort } from '../net/address.js';
import { DEFAULT_CNI_SOCKET } from '../api/cni-protocol.js';

export class LaunchError extends Error {}

export interface LaunchSettings {
  /** HOSTNAME, which the manifest sets to spec.nodeName. */
  readonly nodeName: string;
  readonly range: Cidr;
  readonly rangeText: string;
  /** IPALLOC_INIT when given; otherwise consensus over the node count, decided once the nodes are listed. */
  readonly ipallocInit?: string;
  /** KUBE_PEERS when given: the API's node list is then not used for targets. */
  readonly kubePeers?: readonly string[];
  readonly mtu?: string;
  readonly connLimit: string;
  readonly httpAddr: HostPort;
  readonly httpAddrText: string;
  readonly metricsAddrText: string;
  /** Path and file-name prefix of the daemon's state (DB_PREFIX). */
  readonly dbPrefix: string;
  /** IPTABLES_BACKEND when given; otherwise detected from the host. */
  readonly iptablesBackend?: 'nft' | 'legacy';
  readonly extraArgs: readonly string[];
  /** --no-bridge in EXTRA_ARGS: no data path, so no iptables to choose. */
  readonly noBridge: boolean;
  /** Where the conflist goes (CNI_CONF_DIR). */
  readonly cniConfDir: string;
  /** The daemon's CNI socket (--socket in EXTRA_ARGS, or WEAVE_SOCKET), which the conflist names. */
  readonly cniSocket: string;
  /** Notes for the log about variables that have no effect here. */
  readonly notes: readonly string[];
}

export const DEFAULT_DB_PREFIX = '/weavedb/weave-net';
export const DEFAULT_CNI_CONF_DIR = '/host/etc/cni/net.d';

export function readLaunchEnv(env: NodeJS.ProcessEnv): LaunchSettings {
  const get = (name: string): string | undefined => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);
  const nodeName = get('HOSTNAME');
  if (nodeName === undefined) throw new LaunchError('HOSTNAME is not set: the DaemonSet sets it to spec.nodeName');
  const rangeText = get('IPALLOC_RANGE') ?? '10.32.0.0/12';
  let range: Cidr;
  try {
    range = parseCidr(rangeText);
  } catch (err) {
    throw new LaunchError(`IPALLOC_RANGE: ${(err as Error).message}`);
  }
  const httpAddrText = get('WEAVE_HTTP_ADDR') ?? '127.0.0.1:6784';
  let httpAddr: HostPort;
  try {
    httpAddr = parseHostPort(httpAddrText, 6784);
  } catch (err) {
    throw new LaunchError(`WEAVE_HTTP_ADDR: ${(err as Error).message}`);
  }
  const backend = get('IPTABLES_BACKEND');
  if (backend !== undefined && backend !== 'nft' && backend !== 'legacy') throw new LaunchError(`IPTABLES_BACKEND "${backend}": want nft or legacy`);
  const extraArgs = (get('EXTRA_ARGS') ?? '').split(/\s+/).filter((a) => a !== '');
  const notes: string[] = [];
  if (get('NO_MASQ_LOCAL') !== undefined && get('NO_MASQ_LOCAL') !== '0') notes.push('NO_MASQ_LOCAL: client addresses of local traffic are not rewritten in this version either way');
  const kubePeersText = get('KUBE_PEERS');
  return {
    nodeName,
    range,
    rangeText,
    ...(get('IPALLOC_INIT') !== undefined ? { ipallocInit: get('IPALLOC_INIT')! } : {}),
    ...(kubePeersText !== undefined ? { kubePeers: kubePeersText.split(/[\s,]+/).filter((p) => p !== '') } : {}),
    ...(get('WEAVE_MTU') !== undefined ? { mtu: get('WEAVE_MTU')! } : {}),
    connLimit: get('CONN_LIMIT') ?? '200',
    httpAddr,
    httpAddrText,
    metricsAddrText: env.WEAVE_METRICS_ADDR ?? '0.0.0.0:6782',
    dbPrefix: flagValue(extraArgs, '--db-prefix') ?? get('DB_PREFIX') ?? DEFAULT_DB_PREFIX,
    ...(backend !== undefined ? { iptablesBackend: backend } : {}),
    extraArgs,
    noBridge: extraArgs.includes('--no-bridge'),
    cniConfDir: get('CNI_CONF_DIR') ?? DEFAULT_CNI_CONF_DIR,
    cniSocket: flagValue(extraArgs, '--socket') ?? get('WEAVE_SOCKET') ?? DEFAULT_CNI_SOCKET,
    notes,
  };
}

/** Weave's default: consensus among all the nodes the API lists (ourselves included), at least 1. */
export function defaultIpallocInit(nodeCount: number): string {
  return `consensus=${Math.max(1, nodeCount)}`;
}

/** weaver's arguments: Weave's launch.sh line, with EXTRA_ARGS before the peers (later flags win). */
export function weaverArgs(s: LaunchSettings, ipallocInit: string, peers: readonly string[], iptablesBackend: 'nft' | 'legacy' | undefined): string[] {
  return [
    '--nickname', s.nodeName,
    '--ipalloc-range', s.rangeText,
    '--ipalloc-init', ipallocInit,
    '--conn-limit', s.connLimit,
    '--http-addr', s.httpAddrText,
    '--metrics-addr', s.metricsAddrText,
    '--db-prefix', s.dbPrefix,
    ...(s.mtu !== undefined ? ['--mtu', s.mtu] : []),
    ...(iptablesBackend !== undefined ? ['--iptables-backend', iptablesBackend] : []),
    ...s.extraArgs,
    ...peers,
  ];
}

/** The value of `--flag V` or `--flag=V` in an argument list (the last one, as the parser takes it). */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === flag && i + 1 < args.length) value = args[++i];
    else if (a.startsWith(`${flag}=`)) value = a.slice(flag.length + 1);
  }
  return value;
}
