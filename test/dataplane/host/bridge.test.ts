// The bridge on a real kernel, inside a node namespace of our own: ensure() builds it, a second
// ensure() changes nothing, and whatever is undone behind its back is reported by check() and
// put back by ensure().
import t from 'tap';
import { LocalCluster, type ClusterNode } from '../../../src/cluster/index.js';
import { sweep } from '../../../src/cluster/netns.js';
import { HostBridge } from '../../../src/dataplane/host/bridge.js';
import type { Runner } from '../../../src/dataplane/host/runner.js';

const PREFIX = 'wthb';

t.before(() => sweep(PREFIX));

const runnerIn = (node: ClusterNode): Runner => (argv, options) => node.exec(argv, options);

/** What the kernel says, read independently of the code under test. */
async function observe(node: ClusterNode) {
  const links = await node.addresses();
  const br = links.find((l) => l.ifname === 'weave');
  const tap = links.find((l) => l.ifname === 'vethwe-tap');
  const qdisc = (await node.run(['tc', 'qdisc', 'show', 'dev', 'vethwe-tap'])).split(' ')[1];
  const [forward, acceptRa, assign] = (await node.run(['sh', '-c', 'cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/weave/accept_ra /sys/class/net/weave/addr_assign_type'])).split('\n');
  return {
    mtu: br?.mtu,
    up: br?.flags.includes('UP'),
    mac: br?.address,
    addresses: br?.addresses.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    tapMaster: tap?.master,
    tapUp: tap?.flags.includes('UP'),
    tapMtu: tap?.mtu,
    qdisc,
    forward,
    acceptRa,
    macPinned: assign === '3',
  };
}

t.test('ensure builds the bridge; twice changes nothing; check sees and ensure repairs what is undone', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1 });
  t.teardown(() => cluster.destroy());
  const node = cluster.node(1);
  await node.iproute(['tuntap', 'add', 'dev', 'vethwe-tap', 'mode', 'tap']);
  const bridge = new HostBridge(runnerIn(node), { address: '10.32.0.1/12', port: 'vethwe-tap' });
  // Some VM kernels are built without fq_codel; then a short pfifo is the documented fallback.
  await node.iproute(['tuntap', 'add', 'dev', 'wthb-q', 'mode', 'tap']);
  const hasFqCodel = (await node.exec(['tc', 'qdisc', 'replace', 'dev', 'wthb-q', 'root', 'fq_codel'])).code === 0;
  const qdisc = hasFqCodel ? 'fq_codel' : 'pfifo';
  t.comment(`this kernel ${hasFqCodel ? 'has' : 'lacks'} fq_codel`);

  t.same(await bridge.check(), ['ip_forward was off', 'bridge weave was missing'], 'check only reports');
  t.equal(await node.link('weave'), undefined, 'and changes nothing');

  const first = await bridge.ensure();
  t.same(first.unfixable, []);
  t.ok(first.fixed.includes('bridge weave was missing'));
  t.ok(first.fixed.includes(`qdisc of vethwe-tap was pfifo_fast, want ${qdisc}`));
  if (!hasFqCodel) t.notOk(first.fixed.includes('qdisc of vethwe-tap was pfifo_fast, want fq_codel'), 'a fix that failed is not reported as done');
  t.same(first.warnings, hasFqCodel ? [] : ['this kernel has no fq_codel qdisc: vethwe-tap gets pfifo limit 100 instead']);
  t.equal(bridge.qdisc.kind, qdisc);
  t.comment(`first ensure: ${first.fixed.join('; ')}`);
  const built = await observe(node);
  t.match(built, {
    mtu: 1376, up: true, addresses: ['10.32.0.1/12'], tapMaster: 'weave', tapUp: true, tapMtu: 1376,
    qdisc, forward: '1', acceptRa: '0', macPinned: true,
  });
  t.same(await bridge.check(), [], 'nothing left to fix');
  t.same(await bridge.ensure(), { fixed: [], unfixable: [], warnings: [] }, 'a second ensure has nothing to do');
  t.same(await observe(node), built, 'and the kernel state is the same');

  // A port with a lower MAC joins: a bridge left to itself would take that MAC; ours keeps its own.
  await node.ipBatch(['link add wthb-x type veth peer name wthb-y', 'link set wthb-x address 02:00:00:00:00:01 master weave up']);
  t.equal((await observe(node)).mac, built.mac, 'the gateway MAC does not follow the ports');

  // Undone behind its back, one thing at a time: reported, then repaired.
  const cases: [string, string[], string[]][] = [
    ['TAP taken off the bridge', ['ip', 'link', 'set', 'vethwe-tap', 'nomaster'], ['vethwe-tap was on no bridge']],
    ['qdisc replaced', ['tc', 'qdisc', 'replace', 'dev', 'vethwe-tap', 'root', 'pfifo_fast'], [`qdisc of vethwe-tap was pfifo_fast, want ${qdisc}`]],
    ['address flushed', ['ip', 'addr', 'flush', 'dev', 'weave'], ['weave lacked address 10.32.0.1/12']],
    ['bridge down', ['ip', 'link', 'set', 'weave', 'down'], ['weave was down']],
    ['MTU changed', ['ip', 'link', 'set', 'weave', 'mtu', '1500'], ['MTU of weave was 1500, want 1376']],
    ['ip_forward off', ['sh', '-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward'], ['ip_forward was off']],
    ['accept_ra on', ['sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/weave/accept_ra'], ['weave accepted IPv6 router advertisements']],
  ];
  for (const [what, argv, problems] of cases) {
    await node.run(argv);
    t.same(await bridge.check(), problems, `${what}: check reports it`);
    t.same((await bridge.ensure()).fixed, problems, `${what}: ensure fixes it`);
    t.same(await observe(node), built, `${what}: back as built`);
  }

  // The whole bridge deleted: rebuilt with everything on it (a new MAC, pinned again).
  await node.iproute(['link', 'del', 'weave']);
  const problems = await bridge.check();
  t.same(problems, ['bridge weave was missing']);
  const rebuilt = await bridge.ensure();
  t.ok(rebuilt.fixed.includes('vethwe-tap was on no bridge'), rebuilt.fixed.join('; '));
  t.same(await bridge.check(), []);
  t.match(await observe(node), { ...built, mac: String });

  // A stale address (IPAM gave the bridge another one) goes; the new one comes.
  const moved = new HostBridge(runnerIn(node), { address: '10.32.0.9/12', port: 'vethwe-tap' });
  t.same((await moved.ensure()).fixed, ['weave had stale address 10.32.0.1/12', 'weave lacked address 10.32.0.9/12']);
  t.same((await observe(node)).addresses, ['10.32.0.9/12']);

  // The TAP gone: not ours to create; reported as unfixable, the rest still kept.
  await node.iproute(['link', 'del', 'vethwe-tap']);
  t.same(await moved.ensure(), { fixed: [], unfixable: ['port vethwe-tap is missing'], warnings: [] });

  t.equal(await moved.remove(), true);
  t.equal(await node.link('weave'), undefined, 'remove() deletes the bridge');
  t.equal(await moved.remove(), false, 'and a second remove() finds nothing');
});

t.test('a device named weave that is not a bridge is reported and left alone', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1 });
  t.teardown(() => cluster.destroy());
  const node = cluster.node(1);
  await node.iproute(['tuntap', 'add', 'dev', 'weave', 'mode', 'tap']);
  const bridge = new HostBridge(runnerIn(node), { address: '10.32.0.1/12' });
  const result = await bridge.ensure();
  t.match(result.unfixable, [/weave is a tun device, not a bridge/]);
  t.equal((await node.link('weave'))?.kind, 'tun', 'still there, untouched');
  t.equal(await bridge.remove(), false, 'remove() does not delete what is not our bridge');
});
