// The daemon's CNI socket on a local cluster, called directly (as the plugin would): ADD makes the
// pod's link on the real kernel, pods on two nodes talk, DEL and GC undo everything, a failed ADD
// leaves nothing, the daemon frees what lost its link and replays releases recorded while it was down.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { OverlayCluster } from '../../src/cluster/overlay-cluster.js';
import type { ClusterNode, Pod } from '../../src/cluster/cluster.js';
import { pendingReleaseDir, type CniAddResponse } from '../../src/api/cni-protocol.js';
import { waitFor } from '../lib/weaver.js';
import { cniCall } from './daemon-socket.js';
import { recordsOnDisk } from '../lib/cni-records-on-disk.js';

const newId = (): string => randomBytes(32).toString('hex');
const hostIf = (id: string): string => `vethwepl${id.slice(0, 7)}`;

t.test('the CNI socket of a node daemon', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wn1', nodes: 2, net: 50, argsFor: () => ['--cni-reconcile-interval', '0.5'] }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2] = oc.nodes as [ClusterNode, ClusterNode];
  await oc.established();
  const sock = (n: ClusterNode): string => oc.socketPath(n);
  const add = async (n: ClusterNode, pod: Pod, id: string, extra: Record<string, unknown> = {}): Promise<CniAddResponse> => {
    const r = await cniCall(sock(n), 'POST', '/cni/add', { containerId: id, ifName: 'eth0', netns: pod.path, ...extra });
    if (r.status !== 200) throw new Error(`ADD failed: ${JSON.stringify(r.body)}`);
    return r.body as unknown as CniAddResponse;
  };
  const held = async (n: ClusterNode, id: string): Promise<string | undefined> => {
    const r = await oc.call(n, 'GET', `/ip/${id}`);
    return r.status === 200 ? r.body : undefined;
  };
  // weave ps opens with the bridge's own line (weave:expose); the pods follow.
  const ps = async (n: ClusterNode): Promise<string> => {
    const [first, ...pods] = (await oc.weave(n, 'ps')).split(/(?<=\n)/);
    if (!first?.startsWith('weave:expose ')) throw new Error(`weave ps does not open with weave:expose: ${first}`);
    return pods.join('');
  };

  t.test('socket: root only', async (t) => {
    t.equal(statSync(sock(n1)).mode & 0o777, 0o600);
    t.same((await cniCall(sock(n1), 'GET', '/cni/status')), { status: 200, body: {} }, 'STATUS: ready');
  });

  const idA = newId();
  const idB = newId();
  let podA: Pod;
  let podB: Pod;
  let resA: CniAddResponse;

  await t.test('ADD gives the pod eth0 with its address, default route, MTU and gso_max_size', async (t) => {
    podA = await oc.cluster.addPodNamespace(n1, 'a');
    // The pod's gratuitous ARP, sent by n1's daemon from its bridge, crosses to the other node.
    const capture = n2.spawn(['tcpdump', '-l', '-n', '-e', '-i', 'weave', 'arp']);
    t.teardown(() => capture.stop());
    await capture.waitForOutput(/listening on weave/, 10_000, 'stderr');
    resA = await add(n1, podA, idA);
    const ip = resA.address.split('/')[0]!.replaceAll('.', '\\.');
    const garp = await capture.waitForOutput(new RegExp(`^(\\S+ )?([0-9a-f:]{17}) > ff:ff:ff:ff:ff:ff, ethertype ARP .*Request who-has ${ip} tell ${ip}`, 'm'), 10_000);
    t.equal(garp[2], resA.interface.mac, 'the gratuitous ARP from the pod\'s MAC reached node 2');
    const gw = oc.gateways.get(n1)!;
    t.match(resA, { hostInterface: { name: hostIf(idA) }, interface: { name: 'eth0', sandbox: podA.path }, gateway: gw, mtu: 1376, routes: [{ dst: '0.0.0.0/0', gw }] });
    t.match(resA.address, /^10\.(3[2-9]|4[0-7])\.\d+\.\d+\/12$/);
    t.equal(await held(n1, idA), resA.address, 'IPAM holds the address for the container id');
    const eth0 = (await podA.addresses()).find((l) => l.ifname === 'eth0')!;
    t.equal(eth0.address, resA.interface.mac, 'the MAC reported is the pod\'s');
    t.same(eth0.addresses.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), [resA.address]);
    t.equal(eth0.mtu, 1376);
    t.equal(eth0.gsoMaxSize, 62000);
    t.ok(eth0.flags.includes('UP'));
    t.match(await podA.run(['ip', '-4', 'route', 'show', 'default']), new RegExp(`^default via ${gw.replaceAll('.', '\\.')} dev eth0`));
    const host = (await n1.links()).find((l) => l.ifname === hostIf(idA))!;
    t.equal(host.master, 'weave');
    t.equal(host.gsoMaxSize, 62000);
    t.equal(host.address, resA.hostInterface.mac);
    t.match(await n1.run(['ip', '-d', '-j', 'link', 'show', 'dev', hostIf(idA)]), /"hairpin":true/);
    t.equal((await podA.ping(gw, { count: 2 })).received, 2, 'the pod reaches its gateway');
    t.equal(await ps(n1), `${idA.slice(0, 12)} ${resA.interface.mac} ${resA.address}\n`, 'weave ps lists the attachment');
    t.match(recordsOnDisk(`${oc.dbPrefix(n1)}cni.json`), [{ containerId: idA, ifName: 'eth0', netns: podA.path, mac: resA.interface.mac, cidr: resA.address }], 'recorded on disk');
  });

  await t.test('ADD again is the same attachment, and repairs what was broken', async (t) => {
    const again = await add(n1, podA, idA);
    t.same(again, resA, 'same address and MACs');
    await podA.ipBatch(['route del default', 'link set eth0 mtu 1300']);
    const broken = await cniCall(sock(n1), 'POST', '/cni/check', { containerId: idA, ifName: 'eth0', netns: podA.path });
    t.equal(broken.status, 500);
    t.match(broken.body.msg, /default route was missing/, 'CHECK names what is wrong');
    t.match(broken.body.msg, /MTU of eth0 was 1300/);
    t.same(await add(n1, podA, idA), resA);
    t.same(await cniCall(sock(n1), 'POST', '/cni/check', { containerId: idA, ifName: 'eth0', netns: podA.path, address: resA.address }), { status: 200, body: {} }, 'CHECK after the repair');
    t.equal((await podA.link('eth0'))!.mtu, 1376);
  });

  await t.test('pods on two nodes ping each other', async (t) => {
    podB = await oc.cluster.addPodNamespace(n2, 'b');
    const resB = await add(n2, podB, idB);
    const ipB = resB.address.split('/')[0]!;
    const ipA = resA.address.split('/')[0]!;
    const ab = await podA.ping(ipB, { count: 5, intervalS: 0.2, waitS: 2 });
    t.ok(ab.received >= 4, `a -> b: ${ab.received}/5`);
    const ba = await podB.ping(ipA, { count: 5, intervalS: 0.2, waitS: 2 });
    t.ok(ba.received >= 4, `b -> a: ${ba.received}/5`);
  });

  await t.test('CHECK of a container never added: unknown container', async (t) => {
    const r = await cniCall(sock(n1), 'POST', '/cni/check', { containerId: newId(), ifName: 'eth0', netns: podA.path });
    t.equal(r.body.code, 3);
  });

  await t.test('DEL removes the veth and frees the address; DEL twice is fine', async (t) => {
    t.same(await cniCall(sock(n2), 'POST', '/cni/del', { containerId: idB, ifName: 'eth0', netns: podB.path }), { status: 200, body: {} });
    t.equal(await n2.link(hostIf(idB)), undefined, 'host end gone');
    t.equal(await podB.link('eth0'), undefined, 'pod end gone');
    t.equal(await held(n2, idB), undefined, 'address released');
    t.equal(await ps(n2), '', 'weave ps is empty');
    t.same(await cniCall(sock(n2), 'POST', '/cni/del', { containerId: idB, ifName: 'eth0', netns: podB.path }), { status: 200, body: {} }, 'second DEL');
    t.same(await cniCall(sock(n2), 'POST', '/cni/del', { containerId: newId(), ifName: 'eth0' }), { status: 200, body: {} }, 'DEL of an unknown container');
  });

  await t.test('DEL after the namespace is gone', async (t) => {
    const id = newId();
    const pod = await oc.cluster.addPodNamespace(n2, 'c');
    const r = await add(n2, pod, id);
    await oc.cluster.removePod(pod);
    t.same(await cniCall(sock(n2), 'POST', '/cni/del', { containerId: id, ifName: 'eth0', netns: pod.path }), { status: 200, body: {} });
    t.equal(await n2.link(hostIf(id)), undefined);
    t.equal(await held(n2, id), undefined, `${r.address} released`);
  });

  await t.test('a failed ADD leaves no veth, no address and no record', async (t) => {
    const id = newId();
    const r = await cniCall(sock(n1), 'POST', '/cni/add', { containerId: id, ifName: 'eth0', netns: '/run/netns/wn1-does-not-exist' });
    t.equal(r.status, 400);
    t.equal(r.body.code, 7);
    t.match(r.body.msg, /network namespace \/run\/netns\/wn1-does-not-exist does not exist/);
    t.equal(await n1.link(hostIf(id)), undefined);
    t.equal(await held(n1, id), undefined);
    t.notOk(recordsOnDisk(`${oc.dbPrefix(n1)}cni.json`).some((r) => r.containerId === id), 'no record of it on disk');
    // The pod already has an eth0 weave did not make: refused, and the pod's eth0 is left alone.
    const pod = await oc.cluster.addPodNamespace(n1, 'd');
    await pod.ipBatch(['link add eth0 type veth peer name other0']);
    const refused = await cniCall(sock(n1), 'POST', '/cni/add', { containerId: id, ifName: 'eth0', netns: pod.path });
    t.equal(refused.body.code, 100);
    t.match(refused.body.msg, /already has an interface eth0 that weave did not make/);
    t.equal(await n1.link(hostIf(id)), undefined);
    t.equal(await held(n1, id), undefined);
    t.equal((await pod.link('eth0'))?.kind, 'veth', 'the pod\'s own eth0 is left');
  });

  await t.test('bad requests get CNI codes', async (t) => {
    t.match(await cniCall(sock(n1), 'POST', '/cni/add', undefined, '{not json'), { status: 400, body: { code: 6 } });
    t.match(await cniCall(sock(n1), 'POST', '/cni/add', { containerId: '../x', ifName: 'eth0', netns: podA.path }), { status: 400, body: { code: 7, msg: /invalid container id/ } });
    t.match(await cniCall(sock(n1), 'POST', '/cni/add', { containerId: newId(), ifName: 'a/b', netns: podA.path }), { status: 400, body: { code: 7, msg: /invalid interface name/ } });
    t.match(await cniCall(sock(n1), 'POST', '/cni/add', { containerId: newId(), ifName: 'eth0', netns: '' }), { body: { code: 7, msg: /CNI_NETNS/ } });
    t.match(await cniCall(sock(n1), 'POST', '/cni/gc', { valid: 'all' }), { body: { code: 6 } });
  });

  await t.test('GC releases what the runtime no longer lists', async (t) => {
    const keepId = newId();
    const dropId = newId();
    const keep = await oc.cluster.addPodNamespace(n2, 'k');
    const drop = await oc.cluster.addPodNamespace(n2, 'g');
    await add(n2, keep, keepId);
    const dropped = await add(n2, drop, dropId);
    const r = await cniCall(sock(n2), 'POST', '/cni/gc', { valid: [{ containerId: keepId, ifName: 'eth0' }] });
    t.same(r, { status: 200, body: { released: [{ containerId: dropId, ifName: 'eth0' }] } });
    t.equal(await n2.link(hostIf(dropId)), undefined, 'its veth is gone');
    t.equal(await held(n2, dropId), undefined, `${dropped.address} released`);
    t.ok(await n2.link(hostIf(keepId)), 'the listed one keeps its veth');
    t.ok(await held(n2, keepId), 'and its address');
    t.match(await ps(n2), keepId.slice(0, 12));
  });

  await t.test('a veth deleted behind the daemon\'s back: its address is released', async (t) => {
    const id = newId();
    const pod = await oc.cluster.addPodNamespace(n1, 'r');
    const r = await add(n1, pod, id);
    await n1.ipBatch([`link del ${hostIf(id)}`]);
    await waitFor('reconcile releases the address', async () => ((await held(n1, id)) === undefined ? true : undefined), 10_000, 100);
    t.pass(`${r.address} released`);
    t.notMatch(await ps(n1), id.slice(0, 12));
  });

  await t.test('releases recorded while the daemon was down are replayed at start; its stale socket is replaced', async (t) => {
    const id = newId();
    const pod = await oc.cluster.addPodNamespace(n2, 'p');
    const r = await add(n2, pod, id);
    const daemon = oc.daemons.get(n2)!;
    daemon.kill('SIGKILL');
    await daemon.exited;
    t.ok(existsSync(sock(n2)), 'a killed daemon leaves its socket file');
    const dir = pendingReleaseDir(sock(n2));
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/${id}:eth0.json`, JSON.stringify({ containerId: id, ifName: 'eth0', netns: pod.path }));
    writeFileSync(`${dir}/garbage.json`, '{');
    oc.startDaemon(n2);
    await waitFor('pending release replayed', async () => (existsSync(`${dir}/${id}:eth0.json`) || existsSync(`${dir}/garbage.json`) ? undefined : true), 20_000, 100);
    await waitFor('daemon API up', async () => ((await oc.call(n2, 'GET', '/status')).status === 200 ? true : undefined), 20_000, 100);
    t.equal(await held(n2, id), undefined, `${r.address} released`);
    t.equal(await n2.link(hostIf(id)), undefined, 'veth removed');
    t.notMatch(await ps(n2), id.slice(0, 12));
    t.same(await cniCall(sock(n2), 'GET', '/cni/status'), { status: 200, body: {} }, 'the new daemon serves on the replaced socket');
  });
});
