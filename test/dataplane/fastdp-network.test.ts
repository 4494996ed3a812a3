// The kernel fast path end to end: real daemons in node namespaces, pods on their bridges, real
// traffic; the frames' path is read from the kernel (vxlan-6784's counters, its forwarding entries).
import t from 'tap';
import { OverlayCluster, podIp } from '../../src/cluster/overlay-cluster.js';
import type { ClusterNode, Pod } from '../../src/cluster/cluster.js';
import { waitFor } from '../lib/weaver.js';
import { startIperfServer } from './lib/iperf.js';

type Node = ClusterNode;

/** tx/rx bytes of vxlan-6784 in a node namespace. */
async function vxlanBytes(node: Node): Promise<{ tx: number; rx: number }> {
  const [link] = JSON.parse(await node.run(['ip', '-s', '-j', 'link', 'show', 'dev', 'vxlan-6784'])) as [{ stats64: { tx: { bytes: number }; rx: { bytes: number } } }];
  return { tx: link.stats64.tx.bytes, rx: link.stats64.rx.bytes };
}

/** The VXLAN driver's entries of a node: MAC -> destination address. */
async function vxlanEntries(node: Node): Promise<Map<string, string>> {
  const all = JSON.parse(await node.run(['bridge', '-j', 'fdb', 'show', 'dev', 'vxlan-6784'])) as { mac: string; dst?: string; flags?: string[] }[];
  return new Map(all.filter((e) => e.dst !== undefined && (e.flags ?? []).includes('self')).map((e) => [e.mac, e.dst!]));
}

async function podMac(p: Pod): Promise<string> {
  const link = await p.link('eth0');
  if (link?.address === undefined) throw new Error(`${p.ns} has no eth0 MAC`);
  return link.address;
}

/** The path `weave status connections` shows on `from` for the connection to `to`. */
async function pathTo(oc: OverlayCluster, from: Node, to: Node): Promise<string | undefined> {
  const text = await oc.weave(from, 'status', 'connections');
  const line = text.split('\n').find((l) => l.includes(`(${to.name})`));
  return line ? /established (fastdp|sleeve|encrypted +sleeve)/.exec(line)?.[1] : undefined;
}

async function waitPath(oc: OverlayCluster, a: Node, b: Node, want: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(`${a.name} <-> ${b.name} on ${want}`, async () =>
    ((await pathTo(oc, a, b)) === want && (await pathTo(oc, b, a)) === want ? true : undefined), timeoutMs, 200);
}

t.test('three nodes on fastdp: ping and TCP go through vxlan-6784; status shows fastdp and mtu', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wf1', nodes: 3, net: 60 }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2, n3] = oc.nodes as [Node, Node, Node];
  await oc.established();
  for (const [a, b] of [[n1, n2], [n2, n3], [n1, n3]] as const) await waitPath(oc, a, b, 'fastdp');
  t.match(await oc.weave(n1, 'status', 'connections'), /^(->|<-) 172\.31\.60\.\d+:\d+ +established fastdp +[0-9a-f:]{17}\(\S+\) mtu=1376$/m, 'status shows fastdp, mtu=1376');
  const metrics = (await oc.call(n1, 'GET', '/metrics')).body;
  t.match(metrics, /weave_connections\{state="established",type="fastdp",encryption=""\} 2/, 'weave_connections counts them as fastdp');

  const pods = [await oc.addPod(n1, 'a'), await oc.addPod(n2, 'a'), await oc.addPod(n3, 'a')] as const;
  const [p1, p2, p3] = pods;
  for (const [from, to] of [[p1, p2], [p2, p3], [p3, p1]] as const) {
    const stats = await from.ping(podIp(to), { count: 5, intervalS: 0.2, waitS: 2 });
    t.ok(stats.received >= 4, `${from.ns} -> ${to.ns}: ${stats.received}/5 replies`);
  }
  // The pods' MACs get entries toward their nodes, on every other node.
  for (const [node, others] of [[n1, [[p2, n2], [p3, n3]]], [n2, [[p1, n1], [p3, n3]]], [n3, [[p1, n1], [p2, n2]]]] as const) {
    for (const [pod, at] of others) {
      const mac = await podMac(pod);
      const dst = await waitFor(`${node.name} entry for ${pod.ns}`, async () => (await vxlanEntries(node)).get(mac), 10_000);
      t.equal(dst, at.underlayIp, `${node.name}: ${pod.ns}'s MAC is behind ${at.name}`);
    }
  }
  const bytes = 32 * 1024 * 1024;
  for (const [from, to, fromNode, toNode] of [[p1, p3, n1, n3], [p2, p1, n2, n1]] as const) {
    const before = [await vxlanBytes(fromNode), await vxlanBytes(toNode)] as const;
    const transfer = await from.tcpTransferTo(to, podIp(to), bytes);
    const after = [await vxlanBytes(fromNode), await vxlanBytes(toNode)] as const;
    t.ok(transfer.intact, `${from.ns} -> ${to.ns}: TCP intact (${transfer.mbitPerSecond.toFixed(0)} Mbit/s)`);
    t.ok(after[0].tx - before[0].tx >= bytes, `${fromNode.name} sent it into vxlan-6784 (${after[0].tx - before[0].tx} bytes)`);
    t.ok(after[1].rx - before[1].rx >= bytes, `${toNode.name} received it from vxlan-6784 (${after[1].rx - before[1].rx} bytes)`);
  }
  const counters = JSON.parse((await oc.call(n1, 'GET', '/metrics')).body.match(/^weave_sleeve_packets_total\{what="sent"\} (\d+)/m)?.[1] ?? '0') as number;
  t.ok(counters < 2000, `the sleeve carried only heartbeats and broadcasts from n1 (${counters} datagrams)`);
});

t.test('UDP 6784 blocked between two nodes: sleeve within the timeout, no TCP connection lost; unblocked: fastdp again', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wf2', nodes: 2, net: 61 }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2] = oc.nodes as [Node, Node];
  await oc.established();
  await waitPath(oc, n1, n2, 'fastdp');
  const p1 = await oc.addPod(n1, 'a');
  const p2 = await oc.addPod(n2, 'a');
  t.ok((await p1.ping(podIp(p2), { count: 3, intervalS: 0.2, waitS: 2 })).received >= 2, 'ping on fastdp');

  // A long TCP stream (iperf3, rate-limited so that it does not starve the daemons) across it all.
  await startIperfServer(p2, podIp(p2));
  const seconds = 25;
  const client = p1.exec(['iperf3', '-c', podIp(p2), '-t', String(seconds), '-b', '200M', '-J', '--connect-timeout', '3000'], { timeoutMs: (seconds + 20) * 1000 });
  await new Promise((r) => setTimeout(r, 2000));
  const block = ['-p', 'udp', '--dport', '6784', '-j', 'DROP'];
  const blockedAt = Date.now();
  await n2.run(['iptables', '-A', 'INPUT', ...block]);
  t.teardown(() => n2.run(['iptables', '-D', 'INPUT', ...block]).catch(() => undefined));
  await waitPath(oc, n1, n2, 'sleeve', 15_000);
  const tookS = (Date.now() - blockedAt) / 1000;
  t.pass(`both ends moved to sleeve ${tookS.toFixed(1)} s after the block (timeout 4 s)`);
  const logs = oc.daemons.get(n1)!.stdout;
  t.match(logs, /fastdp to 02:00:00:00:3d:02 unhealthy: no heartbeat answered through VXLAN for 4 s \(is UDP 6784 blocked/, 'the change is logged with its reason');
  t.ok((await p1.ping(podIp(p2), { count: 3, intervalS: 0.2, waitS: 2 })).received >= 2, 'ping on sleeve while VXLAN is blocked');
  await new Promise((r) => setTimeout(r, 4000));
  await n2.run(['iptables', '-D', 'INPUT', ...block]);
  await waitPath(oc, n1, n2, 'fastdp', 15_000);
  t.pass('back on fastdp after the unblock');
  t.match(oc.daemons.get(n1)!.stdout, /fastdp to 02:00:00:00:3d:02 healthy: 3 heartbeats in a row answered through VXLAN again/, 'the recovery is logged');
  const r = await client;
  const report = JSON.parse(r.stdout) as { end?: { sum_received?: { bytes?: number } }; error?: string };
  t.equal(report.error, undefined, 'iperf3 reports no error: the TCP connection survived both switches');
  t.ok((report.end?.sum_received?.bytes ?? 0) > 0, `the stream arrived (${report.end?.sum_received?.bytes} bytes)`);
  const before = await vxlanBytes(n1);
  t.ok((await p1.tcpTransferTo(p2, podIp(p2), 8 * 1024 * 1024)).intact, 'TCP intact afterwards');
  t.ok((await vxlanBytes(n1)).tx - before.tx >= 8 * 1024 * 1024, 'and it went through vxlan-6784 again');
});

t.test('a pod that moves to another node with the same MAC: the forwarding entries follow it', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wf3', nodes: 3, net: 62 }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2, n3] = oc.nodes as [Node, Node, Node];
  await oc.established();
  for (const [a, b] of [[n1, n2], [n2, n3], [n1, n3]] as const) await waitPath(oc, a, b, 'fastdp');
  const mac = '02:aa:bb:cc:dd:01';
  const p1 = await oc.addPod(n1, 'a');
  const mover = await oc.addPod(n2, 'm', { mac });
  const ip = `${mover.ip!}/12`;
  t.ok((await p1.ping(podIp(mover), { count: 3, intervalS: 0.2, waitS: 2 })).received >= 2, 'ping the pod on n2');
  t.equal(await waitFor('entry toward n2', async () => (await vxlanEntries(n1)).get(mac), 10_000), n2.underlayIp, 'n1: the MAC is behind n2');
  await oc.cluster.removePod(mover);
  const moved = await oc.cluster.addPod(n3, { name: 'm', ip, gateway: oc.gateways.get(n3)!, bridge: 'weave', mtu: 1376, mac });
  // The moved pod announces itself (as a migrated VM or a restarted pod with its address would).
  await moved.run(['ping', '-c', '2', '-i', '0.2', '-W', '1', oc.gateways.get(n3)!]).catch(() => '');
  const dst = await waitFor('entry toward n3', async () => ((await vxlanEntries(n1)).get(mac) === n3.underlayIp ? n3.underlayIp : undefined), 15_000);
  t.equal(dst, n3.underlayIp, 'n1: the MAC is now behind n3');
  t.equal((await vxlanEntries(n3)).get(mac), undefined, 'n3 has no entry for its own pod');
  await waitFor('ping the moved pod', async () => ((await p1.ping(podIp(moved), { count: 2, intervalS: 0.2, waitS: 1 })).received > 0 ? true : undefined), 15_000);
  t.pass('the moved pod answers from n3');
});

t.test('a node that lost its MAC table learns the MACs whose frames reach it only through VXLAN', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wf3', nodes: 2, net: 65 }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2] = oc.nodes as [Node, Node];
  await oc.established();
  await waitPath(oc, n1, n2, 'fastdp');
  const p1 = await oc.addPod(n1, 'a');
  const p2 = await oc.addPod(n2, 'a');
  // Nothing of p2's that is broadcast may tell n1 where p2 is: no IPv6 chatter (router
  // solicitations and MLD reports are multicast), and permanent neighbour entries (no ARP).
  const mac1 = await podMac(p1);
  const mac2 = await podMac(p2);
  for (const [p, other, mac] of [[p1, p2, mac2], [p2, p1, mac1]] as const) {
    for (const dev of ['all', 'eth0']) await p.sysctl(`net.ipv6.conf.${dev}.disable_ipv6`, '1');
    await p.iproute(['neigh', 'replace', podIp(other), 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
  }
  t.ok((await p1.ping(podIp(p2), { count: 3, intervalS: 0.2, waitS: 2 })).received >= 2, 'ping on fastdp');
  // n1's daemon restarts and knows no MAC. A broadcast of p1 (p2 ignores broadcast pings, so it
  // stays silent) teaches n2 where p1 is, and from then on p2's frames to p1 go through VXLAN, past
  // n1's forwarder: p1 and p2 know each other's MACs already, so no ARP broadcast will tell n1
  // where p2 is. Only n2's announcement does, when p1's frames to p2 keep coming over the sleeve.
  oc.daemons.get(n1)!.kill('SIGKILL');
  await waitFor('daemon gone', async () => ((await oc.call(n1, 'GET', '/status')).status === 0 ? true : undefined));
  oc.startDaemon(n1);
  await oc.established(undefined, 40_000);
  await waitPath(oc, n1, n2, 'fastdp');
  await p1.ping('10.47.255.255', { count: 1, waitS: 1, broadcast: true });
  await waitFor('n2 learns p1 again', async () => ((await vxlanEntries(n2)).get(mac1) === n1.underlayIp ? true : undefined), 10_000);
  const learnedEarly = oc.daemons.get(n1)!.stdout.split('\n').filter((l) => l.includes(mac2));
  t.equal((await vxlanEntries(n1)).get(mac2), undefined, 'n1 has no entry for p2 yet', { learnedEarly });
  await p1.ping(podIp(p2), { count: 5, intervalS: 0.2, waitS: 2 });
  const dst = await waitFor('n1 learns p2', async () => (await vxlanEntries(n1)).get(mac2), 10_000);
  t.equal(dst, n2.underlayIp, 'n1 has an entry for p2 toward n2');
  const before = await vxlanBytes(n1);
  t.ok((await p1.tcpTransferTo(p2, podIp(p2), 8 * 1024 * 1024)).intact, 'TCP p1 -> p2 intact');
  t.ok((await vxlanBytes(n1)).tx - before.tx >= 8 * 1024 * 1024, 'through vxlan-6784');
});

t.test('an encrypted mesh stays on the encrypted sleeve, without a VXLAN device; --no-fastdp at one end means sleeve at both', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wf4', nodes: 2, net: 63, password: 'correct horse battery staple' }, (c) => t.teardown(() => c.destroy()));
  const [n1] = oc.nodes as [Node];
  await oc.established();
  await new Promise((r) => setTimeout(r, 2000)); // time enough for a fast path to have come up
  t.match(await oc.weave(n1, 'status', 'connections'), /established encrypted +sleeve .* mtu=1396$/m, 'encrypted sleeve');
  t.equal((await n1.exec(['ip', 'link', 'show', 'dev', 'vxlan-6784'])).code !== 0, true, 'no VXLAN device with a password');

  const plain = await OverlayCluster.start({ prefix: 'wf5', nodes: 2, net: 64, argsFor: (i) => (i === 1 ? ['--no-fastdp'] : []) }, (c) => t.teardown(() => c.destroy()));
  const [m1, m2] = plain.nodes as [Node, Node];
  await plain.established();
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(await pathTo(plain, m2, m1), 'sleeve', 'a peer with --no-fastdp: sleeve at the other end too');
  t.equal(await pathTo(plain, m1, m2), 'sleeve', 'and at its own end');
  const p1 = await plain.addPod(m1, 'a');
  const p2 = await plain.addPod(m2, 'a');
  t.ok((await p1.ping(podIp(p2), { count: 3, intervalS: 0.2, waitS: 2 })).received >= 2, 'traffic on sleeve');
});
