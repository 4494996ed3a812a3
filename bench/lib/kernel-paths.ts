// The kernel's own pod-to-pod paths between two node namespaces, as the limits weft is compared
// with: the same namespaces, veths and bridges as weft's pods have, and only the part between the
// nodes differs.
//
//   routed: pods on a plain bridge per node (10.50.<i>.0/24, the bridge is the gateway), plain L3
//           routes between the nodes for the other node's pod subnet; no encapsulation.
//   vxlan:  pods on one L2 subnet (10.60.0.0/24) across a kernel `vxlan` device (VNI 42, UDP 4789,
//           no learning, static forwarding entries towards the other node) on a bridge per node,
//           MTU 1450 (1500 less the 50 bytes of VXLAN over IPv4).
import type { ClusterNode, LocalCluster, Pod } from '../../src/cluster/cluster.js';
import type { PodPair } from './pod-pair.js';

const ROUTED_BRIDGE = 'wtk-rbr';
const VXLAN_BRIDGE = 'wtk-xbr';
// Not `wtk-v<x>`: that is how the cluster names the host end of pod x's veth.
const VXLAN_DEV = 'wtk-vxlan';
export const VXLAN_MTU = 1450;

function twoNodes(cluster: LocalCluster): [ClusterNode, ClusterNode] {
  return [cluster.node(1), cluster.node(2)];
}

/** Routed pods "r" on nodes 1 and 2 of `cluster`. */
export async function kernelRouted(cluster: LocalCluster): Promise<PodPair> {
  const nodes = twoNodes(cluster);
  const pods: Pod[] = [];
  for (const [i, node] of nodes.entries()) {
    const other = nodes[1 - i]!;
    const subnet = (n: ClusterNode): string => `10.50.${n.index}`;
    await node.sysctl('net.ipv4.ip_forward', '1');
    await node.addBridge(ROUTED_BRIDGE, { ip: `${subnet(node)}.1/24` });
    await node.iproute(['route', 'add', `${subnet(other)}.0/24`, 'via', other.underlayIp]);
    pods.push(await cluster.addPod(node, { name: 'r', ip: `${subnet(node)}.2/24`, gateway: `${subnet(node)}.1`, bridge: ROUTED_BRIDGE }));
  }
  const [client, server] = pods as [Pod, Pod];
  return { client, server, serverIp: server.ip!, nodes, underlay: cluster.underlay, daemons: [] };
}

/** Pods "x" on one VXLAN segment across nodes 1 and 2 of `cluster`. */
export async function kernelVxlan(cluster: LocalCluster): Promise<PodPair> {
  const nodes = twoNodes(cluster);
  const mac = (n: ClusterNode): string => `02:00:00:60:00:0${n.index}`;
  for (const node of nodes) {
    await node.iproute(['link', 'add', VXLAN_DEV, 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'local', node.underlayIp,
      'dev', node.underlayIf, 'nolearning']);
    await node.addBridge(VXLAN_BRIDGE, { mtu: VXLAN_MTU });
    await node.ipBatch([`link set ${VXLAN_DEV} mtu ${VXLAN_MTU} master ${VXLAN_BRIDGE} up`]);
  }
  const pods: Pod[] = [];
  for (const [i, node] of nodes.entries()) {
    const other = nodes[1 - i]!;
    // Broadcast and unknown unicast (ARP) to the other node; the other pod's MAC there, statically.
    await node.run(['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', VXLAN_DEV, 'dst', other.underlayIp]);
    await node.run(['bridge', 'fdb', 'append', mac(other), 'dev', VXLAN_DEV, 'dst', other.underlayIp]);
    pods.push(await cluster.addPod(node, { name: 'x', ip: `10.60.0.${node.index}/24`, bridge: VXLAN_BRIDGE, mtu: VXLAN_MTU, mac: mac(node) }));
  }
  const [client, server] = pods as [Pod, Pod];
  return { client, server, serverIp: server.ip!, nodes, underlay: cluster.underlay, daemons: [] };
}
