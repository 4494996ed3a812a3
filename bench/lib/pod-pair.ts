// Two pods on two nodes of a local cluster with a path between them: what the data-path
// benchmark measures, whichever way the path is built (kernel routing, kernel VXLAN, weft).
import type { ClusterNode, Pod } from '../../src/cluster/cluster.js';
import type { NetnsHandle } from '../../src/cluster/netns-handle.js';
import type { NsProcess } from '../../src/cluster/ns-process.js';

export interface PodPair {
  /** Runs iperf3 -c and ping; on the first node. */
  readonly client: Pod;
  /** Runs iperf3 -s; on the second node. */
  readonly server: Pod;
  readonly serverIp: string;
  /** The client's node, then the server's. */
  readonly nodes: readonly [ClusterNode, ClusterNode];
  /** The namespace of the underlay bridge between them (its ports count drops too). */
  readonly underlay: NetnsHandle;
  /** Daemons whose CPU time counts (weft's, client side then server side); none for the kernel's paths. */
  readonly daemons: readonly NsProcess[];
}

/**
 * Sets gso_max_size on both ends of each pod's veth. The pod's TCP socket takes the size when it
 * connects, so it applies to connections made afterwards (every iperf3 run is a new one).
 */
export async function setGsoMaxSize(pods: readonly Pod[], size: number): Promise<void> {
  await Promise.all(
    pods.map(async (pod) => {
      if (pod.hostIf === undefined) throw new Error(`pod ${pod.ns} has no veth`);
      await pod.iproute(['link', 'set', 'dev', 'eth0', 'gso_max_size', String(size)]);
      await pod.node.iproute(['link', 'set', 'dev', pod.hostIf, 'gso_max_size', String(size)]);
    }),
  );
}

/** Pings across the pair until it answers (the first pings may go to ARP and MAC learning); throws if it never does. */
export async function checkPath(pair: PodPair, what: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const stats = await pair.client.ping(pair.serverIp, { count: 5, intervalS: 0.05, waitS: 1 });
    if (stats.received === stats.transmitted) return;
  }
  throw new Error(`${what}: ${pair.client.ns} cannot ping ${pair.serverIp} reliably`);
}
