// Pod links on a real kernel, inside a node namespace of our own with a plain bridge `weave`:
// add() makes the pair, a second add() changes nothing, whatever is undone behind its back is
// reported by check() and put back by add(), a pod end left with its temporary name is renamed,
// and a failed add() leaves no veth.
import t from 'tap';
import { LocalCluster, type ClusterNode } from '../../../src/cluster/index.js';
import { sweep } from '../../../src/cluster/netns.js';
import { PodLinks, NetnsMissingError } from '../../../src/dataplane/host/pod-link.js';
import type { PodLinkSpec } from '../../../src/dataplane/host/pod-link-plan.js';
import type { Runner } from '../../../src/dataplane/host/runner.js';

const PREFIX = 'wn4';

t.before(() => sweep(PREFIX));

const runnerIn = (node: ClusterNode): Runner => (argv, options) => node.exec(argv, options);

t.test('add, check and repair a pod link', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1, underlaySubnet: '172.31.53.0/24' });
  t.teardown(() => cluster.destroy());
  const node = cluster.nodes[0]!;
  await node.ipBatch(['link add weave mtu 1376 type bridge', 'addr add 10.32.0.1/12 dev weave', 'link set weave up']);
  const pod = await cluster.addPodNamespace(node, 'a');
  const links = new PodLinks(runnerIn(node));
  const spec: PodLinkSpec = { containerId: 'feedbeef00112233', ifName: 'eth0', netns: pod.path, address: '10.32.0.7/12', gateway: '10.32.0.1', mtu: 1376, hairpin: true, bridge: 'weave' };
  const host = 'vethweplfeedbee';

  const made = await links.add(spec);
  t.equal(made.created, true);
  t.equal((await node.link(host))?.address, made.hostMac);
  t.equal((await pod.link('eth0'))?.address, made.podMac);
  t.same(await links.check(spec), [], 'healthy after add');
  t.equal((await pod.ping('10.32.0.1', { count: 1 })).received, 1, 'the pod reaches the bridge');
  const again = await links.add(spec);
  t.same(again, { ...made, created: false }, 'a second add changes nothing and reports the same MACs');

  // Undo things behind its back, on both sides.
  await node.ipBatch([`link set ${host} nomaster`, `link set ${host} gso_max_size 65536`]);
  await pod.ipBatch(['addr flush dev eth0', 'addr add 10.32.0.99/12 dev eth0', 'link set eth0 gso_max_size 65536']);
  const problems = await links.check(spec);
  t.same(problems, [
    `gso_max_size of ${host} was 65536`,
    `${host} was on no bridge`,
    `hairpin of ${host} was off, want on`,
    'gso_max_size of eth0 was 65536',
    'eth0 had stale address 10.32.0.99/12',
    'eth0 lacked address 10.32.0.7/12',
    'default route was missing, want via 10.32.0.1 dev eth0',
  ]);
  const repaired = await links.add(spec);
  t.same(repaired.repaired, problems, 'add fixes each');
  t.same(await links.check(spec), [], 'healthy again');
  const hostNow = (await node.links()).find((l) => l.ifname === host)!;
  t.equal(hostNow.master, 'weave');
  t.equal(hostNow.gsoMaxSize, 62000);
  t.match(await node.run(['ip', '-d', '-j', 'link', 'show', 'dev', host]), /"hairpin":true/);
  t.equal((await pod.link('eth0'))?.gsoMaxSize, 62000);

  // A pod end still named vethwepg... (an ADD that died between creation and rename).
  await pod.ipBatch(['link set eth0 down', 'link set eth0 name vethwepgfeedbee']);
  t.match(await links.check(spec), ['the pod end was still named vethwepgfeedbee']);
  await links.add(spec);
  t.same(await links.check(spec), []);

  t.same([...(await links.hostVeths())], [host]);
  t.equal(await links.removeHost(spec.containerId), true);
  t.equal(await links.removeHost(spec.containerId), false, 'removing twice is fine');
  t.equal(await pod.link('eth0'), undefined, 'the pod end went with it');
});

t.test('a failed add leaves no veth', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1, underlaySubnet: '172.31.54.0/24' });
  t.teardown(() => cluster.destroy());
  const node = cluster.nodes[0]!;
  // No bridge: the pair is made, then joining the bridge fails.
  const pod = await cluster.addPodNamespace(node, 'b');
  const links = new PodLinks(runnerIn(node));
  const spec: PodLinkSpec = { containerId: 'abad1dea', ifName: 'eth0', netns: pod.path, address: '10.32.0.8/12', gateway: '10.32.0.1', mtu: 1376, hairpin: true, bridge: 'weave' };
  await t.rejects(links.add(spec), { message: /"weave" is wrong: Device does not exist/ });
  t.same([...(await links.hostVeths())], [], 'no host end');
  t.same((await pod.links()).map((l) => l.ifname), ['lo'], 'no pod end');
  await t.rejects(links.add({ ...spec, netns: '/run/netns/wn4-missing' }), new NetnsMissingError('network namespace /run/netns/wn4-missing does not exist: nsenter: cannot open /run/netns/wn4-missing: No such file or directory'));
  t.same([...(await links.hostVeths())], []);
});

t.test('create: a first ADD without a probe, and whatever is in its way sends it back to add()', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1, underlaySubnet: '172.31.55.0/24' });
  t.teardown(() => cluster.destroy());
  const node = cluster.nodes[0]!;
  const pod = await cluster.addPodNamespace(node, 'c');
  const commands: string[] = [];
  const links = new PodLinks((argv, options) => {
    if (argv.includes('-batch')) commands.push(argv.join(' '));
    return node.exec(argv, options);
  });
  const link = { containerId: 'c0ffee0011', ifName: 'eth0', netns: pod.path, gateway: '10.32.0.1', mtu: 1376, hairpin: true, bridge: 'weave' };
  const spec: PodLinkSpec = { ...link, address: '10.32.0.9/12' };

  // No bridge yet: the host half fails after the pair was made; create removes it and says "not me".
  t.equal(await links.create(link, Promise.resolve(spec.address)), undefined);
  t.same([...(await links.hostVeths())], [], 'no host end left');
  t.same((await pod.links()).map((l) => l.ifname), ['lo'], 'no pod end left');

  await node.ipBatch(['link add weave mtu 1376 type bridge', 'addr add 10.32.0.1/12 dev weave', 'link set weave up']);
  // The address arrives only after the host end is made: create waits for it in between.
  let give!: (cidr: string) => void;
  const address = new Promise<string>((resolve) => { give = resolve; });
  commands.length = 0;
  const pending = links.create(link, address);
  for (let i = 0; i < 200 && !(await links.hostVeths()).has('vethweplc0ffee0'); i++) await new Promise((r) => setTimeout(r, 10));
  t.ok((await links.hostVeths()).has('vethweplc0ffee0'), 'the host end is made before the address is known');
  give(spec.address);
  const made = await pending;
  t.equal(made?.created, true);
  t.same(commands.sort(), ['ip -batch -', `nsenter --net=${pod.path} ip -batch -`].sort(), 'two processes (the host\'s half, the pod\'s half), no probe');
  t.equal((await pod.link('eth0'))?.address, made?.podMac);
  t.same(await links.check(spec), [], 'the same link add() would make: CHECK finds nothing to fix');
  t.equal((await pod.ping('10.32.0.1', { count: 1 })).received, 1, 'the pod reaches the bridge');

  // The pair exists now: a second create finds it in the way (and leaves it alone).
  t.equal(await links.create(link, Promise.resolve(spec.address)), undefined);
  t.same(await links.check(spec), [], 'the existing pair is untouched');
  t.equal(await links.removeHost(link.containerId), true);

  // Somebody else's eth0 in the pod: the rename fails, the new pair goes, eth0 stays.
  await pod.ipBatch(['link add eth0 type veth peer name other0']);
  t.equal(await links.create(link, Promise.resolve(spec.address)), undefined);
  t.same([...(await links.hostVeths())], []);
  t.same((await pod.links()).map((l) => l.ifname).sort(), ['eth0', 'lo', 'other0']);
  await pod.ipBatch(['link del eth0']);

  // No address after all (IPAM said "try later"): its error, and nothing left.
  await t.rejects(links.create(link, Promise.reject(new Error('no address yet'))), /no address yet/);
  t.same([...(await links.hostVeths())], []);
  t.same((await pod.links()).map((l) => l.ifname), ['lo']);
});
