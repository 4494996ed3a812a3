// The local cluster on the real kernel (root): underlay reachability, pods on a node's bridge,
// TCP, process handling, and nothing reaching beyond the cluster's namespaces.
import t from 'tap';
import { LocalCluster } from '../../src/cluster/cluster.js';
import { listNetns, sweep } from '../../src/cluster/netns.js';
import { PingError } from '../../src/cluster/netns-handle.js';
import { ownedByPrefix } from '../../src/cluster/names.js';

const PREFIX = 'wtc1';
const PREFIXES = [PREFIX];

t.before(async () => {
  await sweep(PREFIX); // what a crashed earlier run of this file may have left
});

t.test('three nodes on the underlay: addresses, MTU, and everyone pings everyone', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 3, underlaySubnet: '172.31.3.0/24', underlayMtu: 9000 });
  t.teardown(() => cluster.destroy());
  t.comment(`3 nodes created in ${cluster.createMs.toFixed(1)} ms`);

  t.same(cluster.namespaces, ['wtc1-n1', 'wtc1-n2', 'wtc1-n3', 'wtc1-u']);
  t.same(cluster.nodes.map((n) => [n.ns, n.underlayIp]), [['wtc1-n1', '172.31.3.1'], ['wtc1-n2', '172.31.3.2'], ['wtc1-n3', '172.31.3.3']]);

  const n2 = await cluster.node(2).addresses();
  const nic = n2.find((l) => l.ifname === 'wtc1-eth0');
  t.same(nic?.addresses.filter((a) => a.family === 'inet'), [{ family: 'inet', local: '172.31.3.2', prefixlen: 24 }]);
  t.equal(nic?.mtu, 9000);
  t.equal(n2.find((l) => l.ifname === 'lo')?.operstate, 'UNKNOWN', 'loopback is up');

  const ports = await cluster.underlay.links();
  t.same(ports.filter((l) => l.master === 'wtc1-br').map((l) => l.ifname).sort(), ['wtc1-n1', 'wtc1-n2', 'wtc1-n3']);

  for (const from of cluster.nodes) {
    for (const to of cluster.nodes) {
      if (from === to) continue;
      const stats = await from.ping(to.underlayIp, { count: 2, intervalS: 0.05 });
      t.equal(stats.received, 2, `${from.name} -> ${to.name}`);
      t.ok(stats.replies.every((r) => r.from === to.underlayIp));
    }
  }
  // A jumbo frame without fragmentation: the underlay MTU is really 9000 end to end.
  const jumbo = await cluster.node(1).ping('172.31.3.3', { count: 1, size: 9000 - 28, dontFragment: true });
  t.equal(jumbo.received, 1);
});

t.test('pods on one node share a bridge: ping and TCP between them, MTU and route as asked', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1 });
  t.teardown(() => cluster.destroy());
  const node = cluster.node(1);
  await node.addBridge('weave', { ip: '10.32.0.1/12', mtu: 1376 });
  const p1 = await cluster.addPod(node, { name: 'p1', ip: '10.32.0.5/12', gateway: '10.32.0.1', bridge: 'weave', mtu: 1376, mac: '02:00:0a:20:00:05' });
  const p2 = await cluster.addPod(node, { name: 'p2', ip: '10.32.0.6/12', gateway: '10.32.0.1', bridge: 'weave', mtu: 1376 });
  t.equal(p1.ns, 'wtc1-n1-p1');
  t.equal(p1.ip, '10.32.0.5');
  t.equal(p1.hostIf, 'wtc1-vp1');

  const eth0 = (await p1.addresses()).find((l) => l.ifname === 'eth0');
  t.equal(eth0?.mtu, 1376);
  t.equal(eth0?.address, '02:00:0a:20:00:05');
  t.same(eth0?.addresses.filter((a) => a.family === 'inet'), [{ family: 'inet', local: '10.32.0.5', prefixlen: 12 }]);
  t.match(await p1.iproute(['route', 'show', 'default']), /^default via 10\.32\.0\.1 dev eth0/);
  const hostEnds = (await node.links()).filter((l) => l.master === 'weave').map((l) => l.ifname).sort();
  t.same(hostEnds, ['wtc1-vp1', 'wtc1-vp2']);
  t.equal((await node.link('weave'))?.mtu, 1376, 'the bridge keeps the MTU it was given');

  t.equal((await p1.ping('10.32.0.6', { count: 2, intervalS: 0.05 })).received, 2, 'pod to pod');
  t.equal((await p2.ping('10.32.0.1', { count: 2, intervalS: 0.05 })).received, 2, 'pod to its gateway (the node)');
  t.equal((await node.ping('10.32.0.5', { count: 2, intervalS: 0.05 })).received, 2, 'node to pod');
  // A full-size frame at the pod MTU crosses; one byte more cannot leave the pod unfragmented.
  t.equal((await p1.ping('10.32.0.6', { count: 1, size: 1376 - 28, dontFragment: true })).received, 1);
  const tooBig = await p1.ping('10.32.0.6', { count: 1, size: 1376 - 27, dontFragment: true });
  t.same([tooBig.received, tooBig.errors], [0, 1], 'one byte more: "message too long" locally');

  const transfer = await p1.tcpTransferTo(p2, '10.32.0.6', 4 << 20);
  t.ok(transfer.intact, 'every byte arrived');
  t.equal(transfer.received.bytes, 4 << 20);
  t.comment(`TCP pod to pod over a bridge: ${transfer.mbitPerSecond.toFixed(0)} Mbit/s`);

  // A pod without a bridge is just a veth pair: its host end is in the node, on no bridge.
  const lone = await cluster.addPod(node, { name: 'p3', ip: '10.40.0.2/24' });
  t.equal((await node.link('wtc1-vp3'))?.master, undefined);
  t.equal((await lone.ping('10.32.0.5', { count: 1, waitS: 0.2 }).catch((e: unknown) => e)) instanceof PingError, true, 'no route from a pod without one');

  await cluster.removePod(p2);
  t.notOk((await listNetns()).includes('wtc1-n1-p2'));
  t.equal(await node.link('wtc1-vp2'), undefined, 'its host end went with it');
  t.same(cluster.pods.map((p) => p.name), ['p1', 'p3']);
});

t.test('nothing reaches beyond the cluster: no default route on nodes, ping to elsewhere cannot send', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1 });
  t.teardown(() => cluster.destroy());
  t.equal((await cluster.node(1).iproute(['route', 'show', 'default'])).trim(), '');
  // 192.0.2.1 is TEST-NET-1: documentation only, and no route exists to it anyway.
  await t.rejects(cluster.node(1).ping('192.0.2.1', { count: 1 }), /Network is unreachable/);
  await t.rejects(cluster.node(1).ping('example.com'), RangeError, 'names are refused: no DNS lookups');
});

t.test('exec and spawn run inside the namespace; destroy stops what was spawned', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 2, stopGraceMs: 300 });
  t.teardown(() => cluster.destroy()); // a no-op once the test has destroyed it itself
  const node = cluster.node(2);

  const r = await node.exec(['sh', '-c', 'ip -o -4 addr show dev wtc1-eth0; echo oops >&2; exit 3']);
  t.equal(r.code, 3);
  t.match(r.stdout, /inet 172\.31\.0\.2\/24/, 'sees the node, not the host');
  t.equal(r.stderr, 'oops\n');
  await t.rejects(node.run(['false']), /false \(in netns wtc1-n2\) exited 1/);
  // A new namespace may inherit the host's value; set both to tell them apart.
  await cluster.node(1).sysctl('net.ipv4.ip_forward', '0');
  await node.sysctl('net.ipv4.ip_forward', '1');
  t.equal((await node.run(['cat', '/proc/sys/net/ipv4/ip_forward'])).trim(), '1', 'sysctl set in the node');
  t.equal((await cluster.node(1).run(['cat', '/proc/sys/net/ipv4/ip_forward'])).trim(), '0', 'and only there');
  const slow = await node.exec(['sleep', '5'], { timeoutMs: 200 });
  t.ok(slow.timedOut && slow.signal === 'SIGKILL', 'a timeout kills the command');

  const lines: string[] = [];
  const server = node.spawn([process.execPath, '-e', "process.on('SIGTERM', () => { console.log('bye'); process.exit(0); }); console.log('up'); setInterval(() => {}, 1000);"], {
    onStdoutLine: (l) => lines.push(l),
  });
  await server.waitForOutput(/^up$/m);
  // This one ignores SIGTERM: destroy() must escalate to SIGKILL.
  const stubborn = node.spawn(['sh', '-c', "trap '' TERM; echo ready; while :; do sleep 1; done"]);
  await stubborn.waitForOutput(/ready/);
  t.equal(cluster.runningProcesses.length, 2);

  const started = Date.now();
  await cluster.destroy();
  t.same(server.exitStatus, { code: 0, signal: null }, 'SIGTERM first, and it had the chance to exit cleanly');
  t.same(lines, ['up', 'bye']);
  t.equal(stubborn.exitStatus?.signal, 'SIGKILL');
  const took = Date.now() - started;
  t.ok(took >= 300 && took < 2000, `SIGKILL came after the 300 ms grace (${took} ms)`);
  t.throws(() => node.spawn(['true']), /destroyed/, 'nothing starts in a destroyed cluster');
  await t.rejects(cluster.addPod(node, { name: 'p1' }), /destroyed/);
});

t.test('nothing of this file is left in `ip netns list`', async (t) => {
  const left = (await listNetns()).filter((ns) => PREFIXES.some((p) => ownedByPrefix(p, ns)));
  t.same(left, []);
});
