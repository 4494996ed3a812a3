// The entrypoint with the real data path: nodes as network namespaces, each daemon started through
// weave-kube with the DaemonSet's environment against a fake API server in node 1's namespace.
// The iptables backend is chosen by the entrypoint and used by the daemon; pods talk across nodes.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { OverlayCluster, podIp } from '../../src/cluster/overlay-cluster.js';

t.test('three nodes through the entrypoint: peers from the API, iptables backend chosen, pods reach each other', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wk1', nodes: 3, net: 72, kube: true }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2, n3] = oc.nodes as [typeof oc.nodes[0], typeof oc.nodes[0], typeof oc.nodes[0]];
  await oc.established();
  for (const node of oc.nodes) {
    const out = oc.daemons.get(node)!.stdout;
    t.match(out, /"msg":"peers from the API's 3 nodes: 172\.31\.72\.\d 172\.31\.72\.\d"/, `${node.name}: peers from the API`);
    t.match(out, /"msg":"iptables backend (nft|legacy) \(/, `${node.name}: the entrypoint chose the iptables backend`);
    const backend = /"msg":"iptables backend (nft|legacy)/.exec(out)![1]!;
    const saved = await node.run([`iptables-${backend}-save`, '-t', 'nat']);
    t.match(saved, /-A POSTROUTING -j WEAVE/, `${node.name}: the daemon's rules are in ${backend}`);
  }
  const p1 = await oc.addPod(n1, 'a');
  const p2 = await oc.addPod(n2, 'a');
  const p3 = await oc.addPod(n3, 'a');
  for (const [from, to] of [[p1, p2], [p2, p3], [p3, p1]] as const) {
    const stats = await from.ping(podIp(to), { count: 3, intervalS: 0.2, waitS: 2 });
    t.ok(stats.received >= 2, `${from.ns} -> ${to.ns}: ${stats.received}/3 replies`);
  }
  t.ok(existsSync(join(oc.kubeconfigPath, '..', 'n1-net.d', '10-weave.conflist')), 'the conflist is written');
});
