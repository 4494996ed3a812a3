// The node's plumbing end to end on a real kernel: a node with the bridge and the rules (FORWARD
// policy DROP, as on a Docker host, so only our accepts let anything through), a pod on the bridge,
// another node outside the range, and a namespace inside the range that the node routes to. A UDP
// echo tells each side's source address as the other side saw it.
//
//   n2 (172.31.77.2) ── underlay ── n1 (172.31.77.1) ── weave 10.32.0.1/12 ── pod p1 10.32.0.5/16
//                                     └── wthm-vin 10.40.0.1/24 ── pod "in" 10.40.0.2/24 (inside the range)
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { LocalCluster, type NetnsHandle, type ClusterNode } from '../../../src/cluster/index.js';
import { sweep } from '../../../src/cluster/netns.js';
import { HostBridge } from '../../../src/dataplane/host/bridge.js';
import { HostIptables } from '../../../src/dataplane/host/iptables.js';
import type { Runner } from '../../../src/dataplane/host/runner.js';

const PREFIX = 'wthm';
const ECHO = fileURLToPath(new URL('./udp-echo.js', import.meta.url));

t.before(() => sweep(PREFIX));

const runnerIn = (node: ClusterNode): Runner => (argv, options) => node.exec(argv, options);

/** Starts an echo in `where` on `host`; returns its port. */
async function echoServer(where: NetnsHandle, host: string): Promise<number> {
  const proc = where.spawn([process.execPath, ECHO, 'serve', host]);
  const m = await proc.waitForOutput(/"listening":(\d+)/);
  return Number(m[1]);
}

/** The source address the echo at host:port saw, or undefined if no answer came. */
async function seenFrom(from: NetnsHandle, host: string, port: number, timeoutMs = 1500): Promise<string | undefined> {
  const r = await from.exec([process.execPath, ECHO, 'ask', host, String(port), String(timeoutMs)], { timeoutMs: timeoutMs + 5000 });
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { from: string }).from;
}

t.test('pod traffic leaving the range is masqueraded, within the range it is not, and remove() undoes it', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 2, underlaySubnet: '172.31.77.0/24' });
  t.teardown(() => cluster.destroy());
  const [n1, n2] = [cluster.node(1), cluster.node(2)];
  await n1.run(['iptables', '-P', 'FORWARD', 'DROP']);

  // The node's plumbing, as the daemon will do it (a TAP stands in for the data path's).
  await n1.iproute(['tuntap', 'add', 'dev', 'vethwe-tap', 'mode', 'tap']);
  const bridge = new HostBridge(runnerIn(n1), { address: '10.32.0.1/12', port: 'vethwe-tap' });
  t.same((await bridge.ensure()).unfixable, []);
  const iptables = await HostIptables.create(runnerIn(n1), { range: '10.32.0.0/12' });
  await iptables.ensure();
  t.same(await iptables.check(), []);

  const p1 = await cluster.addPod(n1, { name: 'p1', ip: '10.32.0.5/16', gateway: '10.32.0.1', bridge: 'weave', mtu: 1376 });
  const inside = await cluster.addPod(n1, { name: 'in', ip: '10.40.0.2/24', gateway: '10.40.0.1' });
  await n1.iproute(['addr', 'add', '10.40.0.1/24', 'dev', inside.hostIf!]);
  // n2 reaches the range through n1, as a host routing to an exposed overlay would.
  await n2.iproute(['route', 'add', '10.32.0.0/12', 'via', n1.underlayIp]);

  const outsidePort = await echoServer(n2, n2.underlayIp);
  const insidePort = await echoServer(inside, '10.40.0.2');
  const podPort = await echoServer(p1, '10.32.0.5');

  t.equal(await seenFrom(p1, n2.underlayIp, outsidePort), n1.underlayIp, 'pod -> outside: the outside sees the node');
  t.equal(await seenFrom(p1, '10.40.0.2', insidePort), '10.32.0.5', 'pod -> inside the range: the pod itself, not masqueraded');
  t.equal(await seenFrom(n2, '10.32.0.5', podPort), '10.32.0.1', 'outside -> pod: the pod sees the bridge (its gateway), so replies return through the node');
  t.equal(await seenFrom(n1, '10.32.0.5', podPort), '10.32.0.1', 'the node itself reaches the pod from its bridge address');

  // Without the rules, the pod's traffic out is dropped (FORWARD policy) and nothing is rewritten.
  t.same(await iptables.remove(), ['filter', 'nat']);
  t.equal(await seenFrom(p1, n2.underlayIp, outsidePort, 600), undefined, 'no rules: pod -> outside gets nowhere');
  await n1.run(['iptables', '-P', 'FORWARD', 'ACCEPT']);
  t.equal(await seenFrom(n2, '10.32.0.5', podPort), n2.underlayIp, 'no rules, FORWARD open: outside -> pod is not masqueraded');

  // Flushed behind its back, then repaired: masquerading is back (new flows, new conntrack entries).
  await iptables.ensure();
  await n1.run(['iptables', '-t', 'nat', '-F']);
  t.not((await iptables.check()).length, 0, 'the flush is noticed');
  await iptables.ensure();
  await n1.run(['conntrack', '-F']).catch(() => undefined); // old un-NATed flows would otherwise stay as they were
  t.equal(await seenFrom(p1, n2.underlayIp, outsidePort), n1.underlayIp, 'repaired: masqueraded again');

  t.same(await iptables.remove(), ['filter', 'nat']);
  t.equal(await bridge.remove(), true);
  const left = (await n1.run(['iptables-save'])).split('\n').filter((l) => l.includes('WEAVE'));
  t.same(left, [], 'nothing of ours left in iptables');
  t.equal(await n1.link('weave'), undefined, 'nor the bridge');
});
