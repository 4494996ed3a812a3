// `npm run demo`: a 3-node weft cluster on this machine. Each node is a network namespace on one
// underlay bridge, running the real daemon the way the DaemonSet starts it: the weave-kube
// entrypoint with the DaemonSet's environment, peers and consensus count from a (fake, local)
// Kubernetes API server in node 1's namespace; then bridge `weave`, TAP, sleeve, IPAM. A pod per
// node is attached through the real weave-net CNI executable; traffic crosses the overlay; then what an operator sees. Everything it makes is removed at the end, on error and on Ctrl-C.
import { existsSync } from 'node:fs';
import { OverlayCluster, type CniPod } from '../src/cluster/overlay-cluster.js';
import type { ClusterNode } from '../src/cluster/cluster.js';

const say = (text: string): void => void process.stdout.write(`\n### ${text}\n`);

function requirements(): string | undefined {
  if (process.platform !== 'linux') return 'the demo needs Linux (network namespaces, a TAP device)';
  if (process.getuid?.() !== 0) return 'the demo needs root: it creates network namespaces, bridges and a TAP device (try: sudo npm run demo)';
  if (!existsSync('/dev/net/tun')) return 'the demo needs /dev/net/tun (modprobe tun)';
  return undefined;
}

async function main(): Promise<void> {
  const missing = requirements();
  if (missing !== undefined) {
    process.stderr.write(`demo: ${missing}\n`);
    process.exit(1);
  }
  let oc: OverlayCluster | undefined;
  const cleanUp = async (): Promise<void> => {
    await oc?.destroy();
    oc = undefined;
  };
  process.on('SIGINT', () => {
    process.stderr.write('\ninterrupted: removing the demo cluster\n');
    void cleanUp().then(() => process.exit(130));
  });
  try {
    say('creating 3 nodes (network namespaces demo-n1..3 on an underlay bridge), a Kubernetes API server listing them, and the weave-kube entrypoint in each');
    oc = await OverlayCluster.start({ prefix: 'demo', nodes: 3, net: 77, kube: true }, (c) => (oc = c));
    await oc.established();
    const nodes = oc.nodes as [ClusterNode, ClusterNode, ClusterNode];
    say('kubectl get nodes: every node has NetworkUnavailable=False, set by weft once its network was up');
    const kubectl = ['kubectl', '--kubeconfig', oc.kubeconfigPath, '--cache-dir', `${oc.kubeconfigPath}-cache`];
    process.stdout.write((await nodes[0].exec([...kubectl, 'get', 'nodes', '-o',
      'custom-columns=NAME:.metadata.name,INTERNAL-IP:.status.addresses[?(@.type=="InternalIP")].address,NETWORK-UNAVAILABLE:.status.conditions[?(@.type=="NetworkUnavailable")].status,REASON:.status.conditions[?(@.type=="NetworkUnavailable")].reason'])).stdout);
    say('one pod per node, attached as a runtime attaches it: the weave-net CNI executable (CNI ADD) asks the node\'s daemon, which makes the veth on the weave bridge and gives an address from IPAM');
    const pods: CniPod[] = [];
    for (const node of nodes) {
      const p = await oc.addCniPod(node, 'web');
      pods.push(p);
      process.stdout.write(`  ${p.pod.ns}: ${p.cidr} on ${node.name} (container ${p.containerId.slice(0, 12)}, gateway ${oc.gateways.get(node)})\n`);
    }
    const [p1, p2, p3] = pods as [CniPod, CniPod, CniPod];
    say(`ping from the pod on ${nodes[0].name} to the pods on ${nodes[1].name} and ${nodes[2].name}`);
    for (const to of [p2, p3]) {
      const s = await p1.pod.ping(to.address, { count: 3, intervalS: 0.2 });
      process.stdout.write(`  ${p1.address} -> ${to.address}: ${s.received}/${s.transmitted} replies, rtt avg ${s.rtt?.avgMs.toFixed(3) ?? '-'} ms\n`);
    }
    say(`a 32 MB TCP transfer from ${nodes[0].name}'s pod to ${nodes[2].name}'s pod`);
    const t = await p1.pod.tcpTransferTo(p3.pod, p3.address, 32 * 1024 * 1024);
    process.stdout.write(`  ${t.received.bytes} bytes, ${t.intact ? 'intact' : 'CORRUPTED'}, ${t.mbitPerSecond.toFixed(0)} Mbit/s\n`);
    say(`weave ps on ${nodes[0].name}: the bridge, then the pod`);
    process.stdout.write(await oc.weave(nodes[0], 'ps'));
    say(`weave status on ${nodes[0].name}`);
    process.stdout.write(await oc.weave(nodes[0], 'status'));
    say(`weave status ipam on ${nodes[0].name}: the range split evenly`);
    process.stdout.write(await oc.weave(nodes[0], 'status', 'ipam'));
    say(`weave status connections on ${nodes[0].name}`);
    process.stdout.write(await oc.weave(nodes[0], 'status', 'connections'));
    say('done; removing the demo cluster');
  } finally {
    await cleanUp();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
