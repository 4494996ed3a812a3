// The weave-net executable against a live daemon on a one-node cluster: every bad input fails
// before anything is made (no veth, no held address, checked in the node and through the
// daemon's /ip), and a daemon that is down fails ADD with code 11 and, for DEL, records the
// release that the daemon carries out when it is back: no address leaks. Releases left in the
// form the Node.js plugin of earlier versions wrote are carried out too (an upgraded node).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { OverlayCluster } from '../../src/cluster/overlay-cluster.js';
import type { ClusterNode } from '../../src/cluster/cluster.js';
import { pendingReleaseDir } from '../../src/api/cni-protocol.js';
import { waitFor } from '../../src/cluster/wait-for.js';
import { runPlugin } from './driver/driver.js';

t.test('bad input and a daemon that is down leave nothing behind', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wn6', nodes: 1, net: 56 }, (c) => t.teardown(() => c.destroy()));
  const n1 = oc.nodes[0] as ClusterNode;
  const socket = oc.socketPath(n1);
  const pod = await oc.cluster.addPodNamespace(n1, 'p');
  const conf = (o: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'weave', type: 'weave-net', socket, ...o });
  const id = randomBytes(32).toString('hex');
  const add = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
  const podVeths = async () => (await n1.links()).filter((l) => l.ifname.startsWith('vethwepl')).map((l) => l.ifname);
  const held = async (cid: string) => (await oc.call(n1, 'GET', `/ip/${cid}`)).status === 200;
  const nothingLeft = async (what: string) => {
    t.same(await podVeths(), [], `${what}: no veth in the node`);
    t.notOk(await held(id), `${what}: no address held for the container`);
    t.same((await pod.links()).map((l) => l.ifname), ['lo'], `${what}: nothing in the pod's namespace`);
  };

  const cases: [string, Record<string, string>, string, number][] = [
    ['malformed JSON', add, '{"cniVersion": "1.0.0"', 6],
    ['no CNI_NETNS', { ...add, CNI_NETNS: '' }, conf(), 7],
    ['no CNI_CONTAINERID', { ...add, CNI_CONTAINERID: '' }, conf(), 7],
    ['no CNI_IFNAME', { ...add, CNI_IFNAME: '' }, conf(), 7],
    ['unknown cniVersion', add, conf({ cniVersion: '0.5.0' }), 1],
    ['a netns path that does not exist', { ...add, CNI_NETNS: '/run/netns/wn6-n1-none' }, conf(), 7],
    ['the node\'s own namespace', { ...add, CNI_NETNS: '/proc/self/ns/net' }, conf(), 7],
  ];
  for (const [what, env, stdin, code] of cases) {
    const r = await runPlugin(n1.ns, env, stdin);
    t.equal(r.json?.code, code, `${what}: code ${code} (${String(r.json?.msg)})`);
    t.not(r.code, 0);
    await nothingLeft(what);
  }

  // A good ADD, to have something for DEL while the daemon is down.
  const ok = await runPlugin(n1.ns, add, conf());
  t.equal(ok.code, 0, `ADD: ${ok.stdout}`);
  t.same(await podVeths(), [`vethwepl${id.slice(0, 7)}`]);
  t.ok(await held(id));

  const old = await oc.cluster.addPodNamespace(n1, 'o');
  const idOld = randomBytes(32).toString('hex');
  t.equal((await runPlugin(n1.ns, { ...add, CNI_CONTAINERID: idOld, CNI_NETNS: old.path }, conf())).code, 0, 'ADD of a second pod');

  // Daemon down: ADD of another pod fails with 11 and makes nothing; DEL is recorded.
  const daemon = oc.daemons.get(n1)!;
  daemon.kill('SIGKILL');
  await daemon.exited;
  const other = await oc.cluster.addPodNamespace(n1, 'q');
  const idQ = randomBytes(32).toString('hex');
  const down = await runPlugin(n1.ns, { ...add, CNI_CONTAINERID: idQ, CNI_NETNS: other.path }, conf());
  t.equal(down.json?.code, 11, 'ADD with the daemon down: try again later');
  t.match(String(down.json?.msg), `the weave daemon is not running at ${socket}`);
  t.same((await other.links()).map((l) => l.ifname), ['lo'], 'nothing made in the pod');
  const del = await runPlugin(n1.ns, { ...add, CNI_COMMAND: 'DEL' }, conf());
  t.equal(del.code, 0, 'DEL with the daemon down succeeds');
  t.same(readdirSync(pendingReleaseDir(socket)), [`${id}:eth0.json`], 'and leaves its release for the daemon');
  t.same(JSON.parse(readFileSync(`${pendingReleaseDir(socket)}/${id}:eth0.json`, 'utf8')), { env: { ...add, CNI_COMMAND: 'DEL' }, stdin: conf() }, 'as the request it would have relayed');
  // The second pod's release as the earlier Node.js plugin recorded it.
  writeFileSync(`${pendingReleaseDir(socket)}/${idOld}:eth0.json`, `${JSON.stringify({ containerId: idOld, ifName: 'eth0', netns: old.path })}\n`);

  // The daemon comes back and carries out the release.
  oc.startDaemon(n1);
  await waitFor('daemon back', async () => ((await oc.call(n1, 'GET', '/ip/weave:expose')).status === 200 ? true : undefined), 30_000, 200);
  await waitFor('pending releases replayed', async () => (!(await held(id)) && !(await held(idOld)) ? true : undefined), 20_000, 200);
  t.pass('the addresses of the pods deleted while the daemon was down are released (new and old record)');
  t.same(await podVeths(), [], 'its veth is gone');
  t.same(readdirSync(pendingReleaseDir(socket)), [], 'the records are consumed');
  t.notOk(await held(idQ), 'the failed ADD holds no address');
});
