// The pod-link planner without a kernel: names, input checks, probe parsing, and the fixes each
// difference calls for (pod-link.test.ts and the CNI network tests show the fixes work).
import t from 'tap';
import {
  checkSpec, localMac, parseLinkJson, parsePodProbe, planPodLink, podVethNames, POD_PROBE_MARK, validateContainerId, validatePodIfName,
  type LinkState, type PlanInput, type PodLinkSpec, type PodNetnsState,
} from '../../../src/dataplane/host/pod-link-plan.js';

const spec: PodLinkSpec = {
  containerId: 'abcdef0123456789', ifName: 'eth0', netns: '/run/netns/p1', address: '10.32.0.5/12',
  gateway: '10.32.0.1', mtu: 1376, hairpin: true, bridge: 'weave',
};
const macs = { host: '02:00:00:00:00:01', pod: '02:00:00:00:00:02' };
const HOST: LinkState = {
  name: 'vethweplabcdef0', ifindex: 7, peerIfindex: 2, kind: 'veth', up: true, mtu: 1376, mac: '02:aa:00:00:00:01',
  gsoMaxSize: 62000, master: 'weave', hairpin: true, addresses: [],
};
const ETH0: LinkState = {
  name: 'eth0', ifindex: 2, peerIfindex: 7, kind: 'veth', up: true, mtu: 1376, mac: '02:bb:00:00:00:02',
  gsoMaxSize: 62000, master: undefined, hairpin: undefined, addresses: ['10.32.0.5/12'],
};
const LO: LinkState = { ...ETH0, name: 'lo', ifindex: 1, peerIfindex: undefined, kind: 'device', addresses: ['127.0.0.1/8'], gsoMaxSize: 65536 };
const POD: PodNetnsState = { links: [LO, ETH0], defaultRoute: { gateway: '10.32.0.1', dev: 'eth0' } };
const input = (over: Partial<PlanInput> = {}): PlanInput => ({ spec, host: HOST, pod: POD, newMacs: macs, ...over });
const problems = (over: Partial<PlanInput>): string[] => planPodLink(input(over)).fixes.map((f) => f.problem);

t.test('names: vethwepl and the first 7 characters of the container id', async (t) => {
  t.same(podVethNames('abcdef0123456789'), { host: 'vethweplabcdef0', peer: 'vethwepgabcdef0' });
  t.same(podVethNames('ab'), { host: 'vethweplab', peer: 'vethwepgab' });
  t.equal(podVethNames('0123456789abcdef').host.length, 15, 'fits IFNAMSIZ');
  t.throws(() => validateContainerId(''), /invalid container id/);
  t.throws(() => validateContainerId('-abc'), /invalid container id/);
  t.throws(() => validateContainerId('a b'), /invalid container id/);
  t.equal(validateContainerId('a_b.c-9'), 'a_b.c-9');
  for (const bad of ['', '.', '..', 'a/b', 'a:b', 'a b', 'sixteen-chars-xx']) t.throws(() => validatePodIfName(bad), /invalid interface name/, bad);
  t.equal(validatePodIfName('net1'), 'net1');
});

t.test('spec checks name the bad value', async (t) => {
  t.doesNotThrow(() => checkSpec(spec));
  t.throws(() => checkSpec({ ...spec, netns: 'relative' }), /invalid netns path "relative"/);
  t.throws(() => checkSpec({ ...spec, netns: '/a b' }), /invalid netns path/);
  t.throws(() => checkSpec({ ...spec, mtu: 100 }), /invalid MTU 100/);
  t.throws(() => checkSpec({ ...spec, address: '10.32.0.5' }), /./);
});

t.test('parses iproute2 JSON of the host end and of the pod probe', async (t) => {
  const link = [{
    ifindex: 7, link_index: 2, ifname: 'vethweplabcdef0', flags: ['BROADCAST', 'UP', 'LOWER_UP'], mtu: 1376, master: 'weave',
    address: '02:aa:00:00:00:01', link_netnsid: 0, gso_max_size: 62000,
    linkinfo: { info_kind: 'veth', info_slave_kind: 'bridge', info_slave_data: { hairpin: true } },
  }];
  t.same(parseLinkJson(JSON.stringify(link)), HOST);
  t.equal(parseLinkJson(''), undefined);
  t.throws(() => parseLinkJson('{nope'), /cannot parse the link/);
  const addrs = [
    { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 1376, address: '02:bb:00:00:00:02', gso_max_size: 65536, addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    {
      ifindex: 2, link_index: 7, ifname: 'eth0', flags: ['UP'], mtu: 1376, address: '02:bb:00:00:00:02', gso_max_size: 62000, linkinfo: { info_kind: 'veth' },
      addr_info: [{ family: 'inet', local: '10.32.0.5', prefixlen: 12 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64 }],
    },
  ];
  const route = [{ dst: 'default', gateway: '10.32.0.1', dev: 'eth0', flags: [] }];
  t.same(parsePodProbe(`${JSON.stringify(addrs)}\n${POD_PROBE_MARK}\n${JSON.stringify(route)}\n`), POD);
  t.same(parsePodProbe(`${JSON.stringify(addrs)}\n${POD_PROBE_MARK}\n\n`).defaultRoute, undefined);
  t.throws(() => parsePodProbe('x'), /sections/);
});

t.test('a healthy link needs nothing', async (t) => {
  t.same(planPodLink(input()), { fixes: [], unfixable: [], creates: false });
});

t.test('no host end: the pair is made, named, addressed and routed in order', async (t) => {
  const plan = planPodLink(input({ host: undefined, pod: { links: [LO], defaultRoute: undefined } }));
  t.equal(plan.creates, true);
  t.same(plan.fixes.map((f) => f.problem), ['vethweplabcdef0 was missing']);
  t.same(plan.fixes[0]!.actions, [
    { where: 'host', line: 'link add vethweplabcdef0 mtu 1376 gso_max_size 62000 address 02:00:00:00:00:01 type veth peer name vethwepgabcdef0 mtu 1376 gso_max_size 62000 address 02:00:00:00:00:02 netns /run/netns/p1' },
    { where: 'host', line: 'link set vethweplabcdef0 master weave' },
    { where: 'host', line: 'link set dev vethweplabcdef0 type bridge_slave hairpin on' },
    { where: 'host', line: 'link set vethweplabcdef0 up' },
    { where: 'pod', line: 'link set vethwepgabcdef0 name eth0' },
    { where: 'pod', line: 'addr add 10.32.0.5/12 dev eth0' },
    { where: 'pod', line: 'link set eth0 up' },
    { where: 'pod', line: 'route replace default via 10.32.0.1 dev eth0' },
  ]);
  const noHairpin = planPodLink(input({ host: undefined, pod: { links: [LO], defaultRoute: undefined }, spec: { ...spec, hairpin: false, mtu: 1400 } }));
  t.match(noHairpin.fixes[0]!.actions[0], { line: /mtu 1400 .* mtu 1400/ });
  t.same(noHairpin.fixes[0]!.actions[2], { where: 'host', line: 'link set dev vethweplabcdef0 type bridge_slave hairpin off' });
});

t.test('a host end whose peer is not in this namespace is deleted and made again', async (t) => {
  const plan = planPodLink(input({ pod: { links: [LO], defaultRoute: undefined } }));
  t.equal(plan.creates, true);
  t.same(plan.fixes.map((f) => f.problem), ['vethweplabcdef0 has no peer in /run/netns/p1', 'vethweplabcdef0 was missing']);
  t.same(plan.fixes[0]!.actions, [{ where: 'host', line: 'link del vethweplabcdef0' }]);
});

t.test('somebody else\'s eth0 is not ours to touch; a host name held by another kind is refused', async (t) => {
  const other = { ...ETH0, peerIfindex: 99 };
  t.same(planPodLink(input({ pod: { ...POD, links: [LO, other] } })).unfixable, ['the pod already has an interface eth0 that weave did not make']);
  t.same(planPodLink(input({ host: undefined, pod: { ...POD, links: [LO, { ...other, kind: 'macvlan' }] } })).unfixable, ['the pod already has an interface eth0 that weave did not make']);
  t.same(planPodLink(input({ host: { ...HOST, kind: 'bridge' } })).unfixable, ['vethweplabcdef0 is a bridge device, not a veth']);
});

t.test('each difference gets its fix', async (t) => {
  t.same(problems({ host: { ...HOST, mtu: 1500 } }), ['MTU of vethweplabcdef0 was 1500, want 1376']);
  t.same(problems({ host: { ...HOST, gsoMaxSize: 65536 } }), ['gso_max_size of vethweplabcdef0 was 65536']);
  t.same(problems({ host: { ...HOST, master: undefined, hairpin: undefined } }), ['vethweplabcdef0 was on no bridge', 'hairpin of vethweplabcdef0 was off, want on']);
  t.same(problems({ host: { ...HOST, hairpin: false } }), ['hairpin of vethweplabcdef0 was off, want on']);
  t.same(problems({ host: { ...HOST, up: false } }), ['vethweplabcdef0 was down']);
  t.same(problems({ pod: { ...POD, links: [LO, { ...ETH0, mtu: 1500 }] } }), ['MTU of eth0 was 1500, want 1376']);
  t.same(problems({ pod: { ...POD, links: [LO, { ...ETH0, gsoMaxSize: 65536 }] } }), ['gso_max_size of eth0 was 65536']);
  t.same(problems({ pod: { ...POD, defaultRoute: undefined } }), ['default route was missing, want via 10.32.0.1 dev eth0']);
  t.same(problems({ pod: { ...POD, defaultRoute: { gateway: '10.32.0.9', dev: 'eth0' } } }), ['default route was via 10.32.0.9 dev eth0, want via 10.32.0.1 dev eth0']);
  const stale = planPodLink(input({ pod: { ...POD, links: [LO, { ...ETH0, addresses: ['10.32.0.6/12'] }] } }));
  t.same(stale.fixes.flatMap((f) => f.actions), [
    { where: 'pod', line: 'addr del 10.32.0.6/12 dev eth0' },
    { where: 'pod', line: 'addr add 10.32.0.5/12 dev eth0' },
    { where: 'pod', line: 'route replace default via 10.32.0.1 dev eth0' },
  ], 'a changed address takes the route with it');
  const down = planPodLink(input({ pod: { links: [LO, { ...ETH0, up: false }], defaultRoute: undefined } }));
  t.same(down.fixes.flatMap((f) => f.actions).map((a) => (a as { line: string }).line), ['link set eth0 up', 'route replace default via 10.32.0.1 dev eth0']);
});

t.test('a pod end left with the pair\'s own name (a rename that did not happen) is renamed', async (t) => {
  const plan = planPodLink(input({ pod: { links: [LO, { ...ETH0, name: 'vethwepgabcdef0' }], defaultRoute: undefined } }));
  t.equal(plan.creates, false);
  t.same(plan.fixes.flatMap((f) => f.actions).slice(0, 1), [{ where: 'pod', line: 'link set vethwepgabcdef0 name eth0' }]);
});

t.test('local MACs are locally administered unicast', async (t) => {
  t.equal(localMac(new Uint8Array([1, 2, 3, 0xab, 0xff])), '02:01:02:03:ab:ff');
  t.throws(() => localMac(new Uint8Array(2)), /5 random bytes/);
});
