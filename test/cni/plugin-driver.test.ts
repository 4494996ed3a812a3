// weave-net driven through the real CNI library (cni-driver, libcni 1.1.2) on a two-node local
// cluster with real daemons: ADD (chained with the reference portmap plugin, runtimeConfig with
// Kubernetes' capitalised keys, K8S_POD_* CNI_ARGS), CHECK, GC and STATUS (which podman never
// sends), DEL twice and DEL of a namespace that is gone. Each step is checked where it lands:
// the links in the node and the pod, and the daemon's IPAM.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OverlayCluster } from '../../src/cluster/overlay-cluster.js';
import type { ClusterNode, Pod } from '../../src/cluster/cluster.js';
import { PLUGIN_EXE, buildDriver, driver, writeConflist, type DriverAnswer } from './driver/driver.js';

const K8S_ARGS = (id: string, name: string) => `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=${randomBytes(4).toString('hex')}-uid`;
/** What a Kubernetes runtime (containerd's go-cni) marshals: Go structs without JSON tags. */
const K8S_CAPS = JSON.stringify({
  dns: { Servers: ['10.96.0.10'], Searches: ['default.svc.cluster.local', 'svc.cluster.local'], Options: ['ndots:5'] },
  portMappings: [{ HostPort: 18080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }],
});
const newId = () => randomBytes(32).toString('hex');

t.test('a runtime on libcni: ADD, CHECK, GC, STATUS, DEL on two nodes', async (t) => {
  const exe = buildDriver(t);
  const oc = await OverlayCluster.start({ prefix: 'wn7', nodes: 2, net: 57 }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2] = oc.nodes as [ClusterNode, ClusterNode];
  const dir = mkdtempSync(join(tmpdir(), 'weft-wn7-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cniPath = `${dirname(PLUGIN_EXE)}:/usr/lib/cni`;
  const conflist = (node: ClusterNode, version = '1.0.0') => writeConflist(dir, `${node.name}-${version}`, {
    cniVersion: version, name: 'weave',
    plugins: [
      { name: 'weave', type: 'weave-net', hairpinMode: true, socket: oc.socketPath(node), capabilities: { dns: true } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  });
  const lists = new Map([[n1, conflist(n1)], [n2, conflist(n2)]]);
  // CHECK through weave-net alone (same network name, so libcni finds ADD's cached result):
  // Debian's portmap (plugins 1.1.1) fails its own CHECK in a namespace without ip6tables chains.
  const checkList = writeConflist(dir, 'check', { cniVersion: '1.0.0', name: 'weave', plugins: [{ name: 'weave', type: 'weave-net', socket: oc.socketPath(n1), capabilities: { dns: true } }] });
  const run = (node: ClusterNode, command: string, args: readonly string[] = []): Promise<DriverAnswer> =>
    driver(node.ns, exe, command, ['-conflist', lists.get(node)!, '-path', cniPath, '-cache', join(dir, `cache-${node.name}`), ...args]);
  const attach = (node: ClusterNode, pod: Pod, id: string, extra: readonly string[] = []) =>
    run(node, 'add', ['-id', id, '-netns', pod.path, '-args', K8S_ARGS(id, pod.name), '-caps', K8S_CAPS, ...extra]);
  const held = async (node: ClusterNode, id: string) => (await oc.call(node, 'GET', `/ip/${id}`)).status === 200;
  const veth = (id: string) => `vethwepl${id.slice(0, 7)}`;

  const a = await oc.cluster.addPodNamespace(n1, 'a');
  const b = await oc.cluster.addPodNamespace(n2, 'b');
  const idA = newId();
  const idB = newId();

  // ADD: the result, and what it describes, really there.
  const addA = await attach(n1, a, idA);
  t.ok(addA.ok, `ADD a: ${addA.error ?? ''}`);
  const r = addA.result!;
  t.equal(r.cniVersion, '1.0.0');
  t.equal(r.interfaces[0]?.name, veth(idA), 'host side vethwepl<first 7 of the id>');
  t.same(r.interfaces[1] && { name: r.interfaces[1].name, sandbox: r.interfaces[1].sandbox }, { name: 'eth0', sandbox: a.path });
  t.match(r.ips[0], { interface: 1, gateway: oc.gateways.get(n1) });
  t.match(r.ips[0]?.address, /^10\.(3[2-9]|4[0-7])\.\d+\.\d+\/12$/, 'an address of the range, with its prefix');
  t.same(r.routes, [{ dst: '0.0.0.0/0', gw: oc.gateways.get(n1) }]);
  t.same(r.dns, { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] }, 'runtimeConfig.dns with capitalised keys reached the result');
  const hostLink = await n1.link(veth(idA));
  t.equal(hostLink?.master, 'weave', 'the host veth is a port of weave');
  t.equal(hostLink?.address, r.interfaces[0]?.mac, 'with the MAC the result gives');
  const podEth = (await a.addresses()).find((l) => l.ifname === 'eth0');
  t.equal(podEth?.address, r.interfaces[1]?.mac, 'the pod\'s eth0 has the MAC the result gives');
  t.same(podEth?.addresses.filter((x) => x.family === 'inet').map((x) => `${x.local}/${x.prefixlen}`), [r.ips[0]?.address], 'and the address');
  t.ok(await held(n1, idA), 'IPAM holds the address for the container id');
  t.match(await n1.run(['iptables-save', '-t', 'nat']), /--dport 18080 .*DNAT|dport 18080/, 'the chained portmap got the result and the capitalised portMappings');

  const addB = await attach(n2, b, idB);
  t.ok(addB.ok, `ADD b: ${addB.error ?? ''}`);
  const ipB = addB.result!.ips[0]!.address.split('/')[0]!;
  const ipA = r.ips[0]!.address.split('/')[0]!;
  await oc.established();
  t.ok((await a.ping(ipB, { count: 5, intervalS: 0.2, waitS: 2 })).received >= 4, 'pods on two nodes reach each other');
  t.ok((await b.ping(ipA, { count: 3, intervalS: 0.2, waitS: 2 })).received >= 2, 'and back');

  // CHECK: fine as made; an error once the pod's address is gone.
  const check = () => driver(n1.ns, exe, 'check', ['-conflist', checkList, '-path', cniPath, '-cache', join(dir, `cache-${n1.name}`),
    '-id', idA, '-netns', a.path, '-args', K8S_ARGS(idA, 'a'), '-caps', K8S_CAPS]);
  t.same(await check(), { ok: true }, 'CHECK of an intact pod');
  await a.iproute(['addr', 'flush', 'dev', 'eth0']);
  const broken = await check();
  t.notOk(broken.ok, `CHECK of a pod without its address fails: ${broken.msg}`);
  t.match(broken.msg, /not as ADD left it|address/);

  // CNI_ARGS with a key weave-net does not know, without IgnoreUnknown: refused before anything is made.
  const c = await oc.cluster.addPodNamespace(n1, 'c');
  const idC = newId();
  const refused = await run(n1, 'add', ['-id', idC, '-netns', c.path, '-args', 'K8S_POD_NAME=c;FOO=bar']);
  t.equal(refused.code, 7, `unknown CNI_ARGS key: ${refused.msg}`);
  t.equal(await n1.link(veth(idC)), undefined, 'no veth left');
  t.notOk(await held(n1, idC), 'no address held');

  // STATUS, GC (spec 1.1, through pkg/invoke).
  // (portmap, of spec 1.0, is skipped by the driver.)
  t.same(await run(n1, 'status'), { ok: true, skipped: ['portmap'] }, 'STATUS: ready');
  t.same(await run(n2, 'gc', ['-valid', '']), { ok: true, skipped: ['portmap'] }, 'GC on n2 keeping nothing');
  t.notOk(await held(n2, idB), 'GC released b\'s address');
  t.equal(await n2.link(veth(idB)), undefined, 'and removed its veth');
  t.same(await run(n1, 'gc', ['-valid', `${idA}/eth0`]), { ok: true, skipped: ['portmap'] }, 'GC on n1 keeping a');
  t.ok(await held(n1, idA), 'a kept its address');
  t.same(await run(n2, 'del', ['-id', idB, '-netns', b.path]), { ok: true }, 'DEL after GC: nothing left to undo, fine');

  // DEL, twice: everything goes, the second is a no-op.
  for (let i = 1; i <= 2; i++) t.same(await run(n1, 'del', ['-id', idA, '-netns', a.path, '-args', K8S_ARGS(idA, 'a'), '-caps', K8S_CAPS]), { ok: true }, `DEL a (${i})`);
  t.notOk(await held(n1, idA), 'DEL released a\'s address');
  t.equal(await n1.link(veth(idA)), undefined, 'and removed its veth');
  t.notMatch(await n1.run(['iptables-save', '-t', 'nat']), /dport 18080/, 'portmap\'s rules went with it');

  // DEL of a pod whose namespace is already gone still reaches the daemon.
  const addC = await attach(n1, c, idC);
  t.ok(addC.ok, `ADD c: ${addC.error ?? ''}`);
  await oc.cluster.removePod(c);
  t.same(await run(n1, 'del', ['-id', idC, '-netns', c.path]), { ok: true }, 'DEL with the namespace gone');
  t.notOk(await held(n1, idC), 'the address of the pod whose namespace vanished is released');

  // An older config version: the result in that version's shape.
  const d = await oc.cluster.addPodNamespace(n2, 'd');
  const idD = newId();
  lists.set(n2, conflist(n2, '0.3.1'));
  const addD = await attach(n2, d, idD);
  t.ok(addD.ok, `ADD at 0.3.1: ${addD.error ?? ''}`);
  t.equal(addD.result?.cniVersion, '0.3.1');
  t.equal(addD.result?.ips[0]?.version, '4', '0.3.1 results carry ips[].version');
  t.same(await run(n2, 'del', ['-id', idD, '-netns', d.path]), { ok: true });
  t.notOk(await held(n2, idD));
});
