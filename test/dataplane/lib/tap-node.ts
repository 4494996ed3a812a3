// TAP devices in the local cluster's node namespaces, for the data-path tests. The test process
// stays in the host namespace and opens each TAP inside a node with TapDevice's `netns` option
// (setns(2) on the main thread around the open of /dev/net/tun), so one process can hold TAPs of
// several nodes and forward frames between them, as the daemon's data path will between peers.
import { LocalCluster, type ClusterNode } from '../../../src/cluster/cluster.js';
import { listNetns, sweep } from '../../../src/cluster/netns.js';
import { TapDevice, type TapDeviceOptions } from '../../../src/dataplane/tap/tap-device.js';

export interface NodeTapOptions extends Omit<TapDeviceOptions, 'netns'> {
  /** The bridge in the node to enslave the TAP to. */
  readonly bridge: string;
  readonly mtu?: number;
}

/** Opens a TAP in `node`, puts it on `bridge` and brings it up; closes it again if a step fails. */
export async function openNodeTap(node: ClusterNode, options: NodeTapOptions): Promise<TapDevice> {
  const { bridge, mtu, ...tapOptions } = options;
  const tap = await TapDevice.open({ ...tapOptions, netns: node.path });
  try {
    await node.ipBatch([
      ...(mtu === undefined ? [] : [`link set ${tap.name} mtu ${mtu}`]),
      `link set ${tap.name} master ${bridge}`,
      `link set ${tap.name} up`,
    ]);
  } catch (err) {
    await tap.close();
    throw err;
  }
  return tap;
}

/**
 * The kernel's drop counters of a link: for a TAP, tx dropped counts frames the tun driver threw
 * away because its queue towards the reader (txqueuelen entries) was full.
 */
export async function linkDrops(node: ClusterNode, ifname: string): Promise<{ tx: number; rx: number }> {
  const parsed: unknown = JSON.parse(await node.iproute(['-s', '-j', 'link', 'show', 'dev', ifname]));
  const stats = (parsed as { stats64?: { tx?: { dropped?: unknown }; rx?: { dropped?: unknown } } }[])[0]?.stats64;
  const tx = stats?.tx?.dropped;
  const rx = stats?.rx?.dropped;
  if (typeof tx !== 'number' || typeof rx !== 'number') throw new Error(`no drop counters for ${ifname} in ${node.ns}`);
  return { tx, rx };
}

export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new RangeError('spread of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { min: sorted[0] as number, median, max: sorted[sorted.length - 1] as number };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 10 ms until it holds or `timeoutMs` passes; resolves with its last answer. */
export async function eventually(check: () => boolean, timeoutMs = 2_000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/**
 * A bridge in `node` that sends nothing of its own: no multicast snooping (which has the bridge
 * join 224.0.0.106 and send IGMP reports on its ports), so that the TAPs on it see only the test's
 * frames. IPv6 is the node's business (disable it there for the same reason).
 */
export async function addQuietBridge(node: ClusterNode, name: string, mtu?: number): Promise<void> {
  await node.ipBatch([
    `link add ${name} type bridge mcast_snooping 0`,
    ...(mtu === undefined ? [] : [`link set ${name} mtu ${mtu}`]),
    `link set ${name} up`,
  ]);
}

/**
 * A one-node cluster for a test file's TAPs: IPv6 off in the node (its router solicitations and
 * MLD reports would be frames on the TAPs that counting tests would have to tell from their own)
 * and a quiet bridge. Leftovers of a killed run with the same prefix are swept first.
 */
export async function quietTapNode(prefix: string, bridge: string, mtu: number): Promise<{ cluster: LocalCluster; node: ClusterNode }> {
  await sweep(prefix);
  const cluster = await LocalCluster.create({ prefix, nodes: 1 });
  const node = cluster.node(1);
  await node.sysctl('net.ipv6.conf.all.disable_ipv6', '1');
  await node.sysctl('net.ipv6.conf.default.disable_ipv6', '1');
  await addQuietBridge(node, bridge, mtu);
  return { cluster, node };
}

/** Destroys the cluster and fails if any namespace of the prefix is left. */
export async function destroyChecked(cluster: LocalCluster, prefix: string): Promise<void> {
  await cluster.destroy();
  const left = (await listNetns()).filter((ns) => ns.startsWith(prefix));
  if (left.length > 0) throw new Error(`namespaces left: ${left.join(', ')}`);
}
