// The daemon's configuration: command-line flags (Weave's names where they apply) and the
// environment variables of Weave's DaemonSet. Pure: takes argv and env, returns a Config or a
// ConfigError whose message is the one line the daemon prints before exiting.
import { parseArgs } from 'node:util';
import { parsePeerName, type PeerName } from '../net/peer-name.js';
import { parseHostPort, formatHostPort, DEFAULT_MESH_PORT, type HostPort } from '../net/address.js';
import { LOG_LEVELS, type LogFormat } from '../log/logger.js';
import type { LevelWithSilent } from 'pino';
import { parseCidr, type Cidr } from '../net/ipv4.js';
import { DEFAULT_CNI_SOCKET } from '../api/cni-protocol.js';

/** How the first division of the range is agreed (`--ipalloc-init`, `IPALLOC_INIT`). */
export type IpallocInit =
  | { readonly kind: 'consensus'; readonly peers: number }
  | { readonly kind: 'seed'; readonly members: readonly PeerName[] }
  | { readonly kind: 'observer' };

export class ConfigError extends Error {}

export interface Config {
  readonly name?: PeerName;          // undefined: derive from the machine
  readonly nickname?: string;        // undefined: the host name
  readonly port: number;
  readonly host: string;             // address to listen on ('' = all)
  readonly password?: string;
  readonly connLimit: number;
  readonly httpAddr: HostPort;
  /** Read-only status and Prometheus metrics; undefined: not served. */
  readonly metricsAddr?: HostPort;
  readonly discovery: boolean;
  readonly logLevel: LevelWithSilent;
  readonly logFormat: LogFormat;
  readonly noBridge: boolean;
  /** MTU of the bridge and the pods (WEAVE_MTU). */
  readonly mtu: number;
  /** MTU of the network between the nodes: it decides the sleeve's datagram size. */
  readonly underlayMtu: number;
  /** TAP offloads (virtio_net_hdr, checksum, TSO); --no-offloads for kernels without them. */
  readonly offloads: boolean;
  /** iptables backend (--iptables-backend, IPTABLES_BACKEND); undefined: detected from the host's rules. */
  readonly iptablesBackend?: 'nft' | 'legacy';
  /** The kernel VXLAN fast path; off with --no-fastdp or WEAVE_NO_FASTDP (any value). */
  readonly fastdp: boolean;
  readonly peers: readonly string[]; // host:port, normalised
  /** Seconds between TCP heartbeats; a connection silent for twice this long is closed. */
  readonly heartbeatInterval: number;
  /** Seconds between anti-entropy rounds of the gossip channels. */
  readonly gossipInterval: number;
  readonly ipallocRange: Cidr;
  readonly ipallocInit: IpallocInit;
  /** Path and file-name prefix of the persisted state (`<prefix>data.json`). */
  readonly dbPrefix: string;
  /** Seconds an allocation may wait for consensus or space before it fails with the status. */
  readonly ipamRequestTimeout: number;
  /** Unix socket of the CNI plugin's API (served only with a data path). */
  readonly socket: string;
  /** Seconds between checks that every recorded CNI attachment still has its link. */
  readonly cniReconcileInterval: number;
  readonly printPeerName: boolean;
  readonly showVersion: boolean;
  readonly showHelp: boolean;
}

export const USAGE = `Usage: weaver [flags] [peer ...]

Peers are host[:port] (port ${DEFAULT_MESH_PORT} when omitted).

Flags:
  --name NAME            peer name, a MAC-style 48-bit value (default: derived from /etc/machine-id)
  --nickname NAME        human name shown in status (default: the host name)
  --port N               TCP port of the mesh (default ${DEFAULT_MESH_PORT})
  --host ADDR            address to listen on (default: all)
  --password PW          encrypt and authenticate the mesh (or WEAVE_PASSWORD)
  --conn-limit N         most connections to other peers (default 200, or CONN_LIMIT)
  --http-addr ADDR:PORT  HTTP API (default 127.0.0.1:6784, or WEAVE_HTTP_ADDR)
  --metrics-addr ADDR:PORT  read-only status and /metrics (default 0.0.0.0:6782, or
                         WEAVE_METRICS_ADDR; empty: off)
  --no-discovery         connect only to the peers given, not to peers learned from gossip
  --no-bridge            control plane only: no bridge, no data path
  --mtu N                MTU of the bridge and pods (default 1376, or WEAVE_MTU)
  --underlay-mtu N       MTU of the network between nodes (default 1500)
  --no-offloads          TAP without checksum/TSO offloads (super-frames from peers are then
                         segmented in userspace)
  --iptables-backend B   nft or legacy (or IPTABLES_BACKEND; default: the one holding the host's rules)
  --no-fastdp            sleeve only, no kernel VXLAN fast path (or WEAVE_NO_FASTDP=1)
  --log-level LEVEL      ${LOG_LEVELS.join(', ')} (default info)
  --log-format FORMAT    json, text or auto (default auto: text on a terminal, json otherwise)
  --ipalloc-range CIDR   the range pods get addresses from (default 10.32.0.0/12, or IPALLOC_RANGE)
  --ipalloc-init MODE    consensus[=N] | seed=NAME,... | observer (or IPALLOC_INIT; default
                         consensus with N = the number of peers given + 1)
  --db-prefix PATH       where state is kept (default /var/lib/weave/weave-net: file weave-netdata.json)
  --socket PATH          unix socket for the weave-net CNI plugin (default ${DEFAULT_CNI_SOCKET},
                         or WEAVE_SOCKET; not served with --no-bridge)
  --cni-reconcile-interval SECONDS  how often addresses of pods whose link is gone are
                         released (default 60)
  --print-peer-name      print this machine's peer name and exit
  --version              print the version and exit
  --help                 print this text and exit
`;

const options = {
  name: { type: 'string' },
  nickname: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  password: { type: 'string' },
  'conn-limit': { type: 'string' },
  'http-addr': { type: 'string' },
  'metrics-addr': { type: 'string' },
  'no-discovery': { type: 'boolean' },
  'no-bridge': { type: 'boolean' },
  mtu: { type: 'string' },
  'underlay-mtu': { type: 'string' },
  'no-offloads': { type: 'boolean' },
  'iptables-backend': { type: 'string' },
  'no-fastdp': { type: 'boolean' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'heartbeat-interval': { type: 'string' },
  'gossip-interval': { type: 'string' },
  'ipalloc-range': { type: 'string' },
  'ipalloc-init': { type: 'string' },
  'db-prefix': { type: 'string' },
  'ipam-request-timeout': { type: 'string' },
  socket: { type: 'string' },
  'cni-reconcile-interval': { type: 'string' },
  'print-peer-name': { type: 'boolean' },
  version: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    // node's messages are already one line, e.g. "Unknown option '--foo'".
    throw new ConfigError(`${(err as Error).message.split('\n')[0]} (see weaver --help)`);
  }
  const v = parsed.values;
  const flagOrEnv = (flag: string | undefined, envName: string): string | undefined =>
    flag ?? (env[envName] !== undefined && env[envName] !== '' ? env[envName] : undefined);

  const port = intIn('--port', v.port, DEFAULT_MESH_PORT, 1, 65535);
  const connLimit = intIn('--conn-limit', flagOrEnv(v['conn-limit'], 'CONN_LIMIT'), 200, 0, 100_000);
  const httpText = flagOrEnv(v['http-addr'], 'WEAVE_HTTP_ADDR') ?? '127.0.0.1:6784';
  const httpAddr = wrap('--http-addr', () => parseHostPort(httpText, 6784));
  const metricsText = v['metrics-addr'] ?? env.WEAVE_METRICS_ADDR ?? '0.0.0.0:6782';
  const metricsAddr = metricsText === '' ? undefined : wrap('--metrics-addr', () => parseHostPort(metricsText, 6782));

  const logLevel = v['log-level'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`invalid --log-level "${logLevel}": want one of ${LOG_LEVELS.join(', ')}`);
  }
  const logFormat = v['log-format'] ?? 'auto';
  if (!['json', 'text', 'auto'].includes(logFormat)) {
    throw new ConfigError(`invalid --log-format "${logFormat}": want json, text or auto`);
  }
  const nickname = v.nickname;
  if (nickname !== undefined && !/^[^\s:]{1,255}$/.test(nickname)) {
    throw new ConfigError(`invalid --nickname "${nickname}": 1 to 255 characters, no spaces or ':'`);
  }
  const password = flagOrEnv(v.password, 'WEAVE_PASSWORD');
  const host = v.host ?? '';
  if (host !== '') wrap('--host', () => parseHostPort(host));

  const iptablesBackend = flagOrEnv(v['iptables-backend'], 'IPTABLES_BACKEND');
  if (iptablesBackend !== undefined && iptablesBackend !== 'nft' && iptablesBackend !== 'legacy') {
    throw new ConfigError(`invalid --iptables-backend "${iptablesBackend}": want nft or legacy`);
  }
  const peers = parsed.positionals.map((p) => formatHostPort(wrap('peer', () => parseHostPort(p, DEFAULT_MESH_PORT))));
  const rangeText = flagOrEnv(v['ipalloc-range'], 'IPALLOC_RANGE') ?? '10.32.0.0/12';
  const ipallocRange = wrap('--ipalloc-range', () => parseCidr(rangeText));
  const ipallocInit = parseIpallocInit(flagOrEnv(v['ipalloc-init'], 'IPALLOC_INIT'), peers.length + 1);
  const dbPrefix = v['db-prefix'] ?? '/var/lib/weave/weave-net';
  if (dbPrefix === '' || dbPrefix.endsWith('/')) {
    throw new ConfigError(`invalid --db-prefix "${dbPrefix}": want a path and file-name prefix, e.g. /var/lib/weave/weave-net`);
  }
  const socket = flagOrEnv(v.socket, 'WEAVE_SOCKET') ?? DEFAULT_CNI_SOCKET;
  if (!socket.startsWith('/') || socket.endsWith('/') || Buffer.byteLength(socket) > 107) {
    throw new ConfigError(`invalid --socket "${socket}": want an absolute file path of at most 107 bytes`);
  }

  return {
    ...(v.name !== undefined ? { name: wrap('--name', () => parsePeerName(v.name!)) } : {}),
    ...(nickname !== undefined ? { nickname } : {}),
    ...(password !== undefined ? { password } : {}),
    port,
    host,
    connLimit,
    httpAddr,
    ...(metricsAddr ? { metricsAddr } : {}),
    discovery: v['no-discovery'] !== true,
    noBridge: v['no-bridge'] === true,
    mtu: intIn('--mtu', flagOrEnv(v.mtu, 'WEAVE_MTU'), 1376, 576, 65535),
    underlayMtu: intIn('--underlay-mtu', v['underlay-mtu'], 1500, 576, 65535),
    offloads: v['no-offloads'] !== true,
    ...(iptablesBackend !== undefined ? { iptablesBackend } : {}),
    fastdp: v['no-fastdp'] !== true && (env.WEAVE_NO_FASTDP ?? '') === '',
    logLevel: logLevel as LevelWithSilent,
    logFormat: logFormat as LogFormat,
    peers,
    heartbeatInterval: numberIn('--heartbeat-interval', v['heartbeat-interval'], 30, 0.05, 3600),
    gossipInterval: numberIn('--gossip-interval', v['gossip-interval'], 30, 0.05, 3600),
    ipallocRange,
    ipallocInit,
    dbPrefix,
    ipamRequestTimeout: numberIn('--ipam-request-timeout', v['ipam-request-timeout'], 30, 0.1, 3600),
    socket,
    cniReconcileInterval: numberIn('--cni-reconcile-interval', v['cni-reconcile-interval'], 60, 0.1, 86400),
    printPeerName: v['print-peer-name'] === true,
    showVersion: v.version === true,
    showHelp: v.help === true,
  };
}

function wrap<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new ConfigError(`invalid ${what}: ${(err as Error).message}`);
  }
}

function intIn(flag: string, text: string | undefined, dflt: number, min: number, max: number): number {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) {
    throw new ConfigError(`invalid ${flag} "${text}": want a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

function numberIn(flag: string, text: string | undefined, dflt: number, min: number, max: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(`invalid ${flag} "${text}": want seconds from ${min} to ${max}`);
  }
  return n;
}

/** Parses `consensus[=N]`, `seed=name,name,...` or `observer`. */
export function parseIpallocInit(text: string | undefined, defaultPeers: number): IpallocInit {
  if (text === undefined || text === 'consensus') return { kind: 'consensus', peers: defaultPeers };
  if (text === 'observer') return { kind: 'observer' };
  const consensus = /^consensus=(\d+)$/.exec(text);
  if (consensus) {
    const peers = Number(consensus[1]);
    if (peers < 1 || peers > 10_000) throw new ConfigError(`invalid --ipalloc-init "${text}": the peer count must be from 1 to 10000`);
    return { kind: 'consensus', peers };
  }
  if (text.startsWith('seed=')) {
    const names = text.slice(5).split(',').filter((n) => n !== '');
    if (names.length === 0) throw new ConfigError(`invalid --ipalloc-init "${text}": seed= needs at least one peer name`);
    const members = names.map((n) => wrap('--ipalloc-init seed', () => parsePeerName(n)));
    return { kind: 'seed', members: [...new Set(members)].sort() };
  }
  throw new ConfigError(`invalid --ipalloc-init "${text}": want consensus[=N], seed=NAME,... or observer`);
}

export function describeIpallocInit(init: IpallocInit): string {
  switch (init.kind) {
    case 'consensus': return `consensus=${init.peers}`;
    case 'seed': return `seed=${init.members.join(',')}`;
    case 'observer': return 'observer';
  }
}
