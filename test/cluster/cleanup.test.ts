// The local cluster leaves nothing behind: after destroy(), after a failed create() or addPod(),
// after a crash (sweep), and two clusters side by side neither see nor remove each other.
import t from 'tap';
import { spawn } from 'node:child_process';
import { LocalCluster } from '../../src/cluster/cluster.js';
import { ip } from '../../src/cluster/exec.js';
import { parseLinks } from '../../src/cluster/iproute-json.js';
import { addNetns, deleteNetns, listNetns, netnsPids, sweep } from '../../src/cluster/netns.js';
import { ownedByPrefix } from '../../src/cluster/names.js';

const A = 'wtc2';
const B = 'wtc3';
const PREFIXES = [A, B];

const ours = async (prefix: string): Promise<string[]> => (await listNetns()).filter((ns) => ownedByPrefix(prefix, ns));
/** `promise`, or 'still running' if it has not settled within `ms`: a kill that never came fails, not hangs. */
const within = <T>(promise: Promise<T>, ms: number): Promise<T | 'still running'> =>
  Promise.race([promise, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), ms).unref())]);
const rootLinks = async (): Promise<string[]> => parseLinks(await ip(null, ['-j', 'link', 'show'])).map((l) => l.ifname);

t.before(async () => {
  await sweep(A);
  await sweep(B);
});

t.test('destroy() removes every namespace and leaves the host as it was; twice is fine', async (t) => {
  const linksBefore = await rootLinks();
  const cluster = await LocalCluster.create({ prefix: A, nodes: 3 });
  t.teardown(() => cluster.destroy());
  await cluster.node(1).addBridge('weave', { ip: '10.32.0.1/12' });
  for (const node of cluster.nodes) await cluster.addPod(node, { name: 'p1', ip: `10.32.${node.index}.1/12`, bridge: node.index === 1 ? 'weave' : undefined });
  await cluster.addPodNamespace(cluster.node(2), 'cni');
  t.equal((await ours(A)).length, 8, 'underlay, 3 nodes, 4 pods');
  t.same(await rootLinks(), linksBefore, 'nothing was ever created in the host namespace');

  await cluster.destroy();
  t.same(await ours(A), []);
  t.same(cluster.namespaces, []);
  t.notOk((await rootLinks()).some((l) => l.startsWith(`${A}-`)));
  await cluster.destroy();
  t.same(await ours(A), [], 'a second destroy() is a no-op');
});

t.test('create() that fails halfway removes what it made, and nothing that was not its own', async (t) => {
  // Someone else's namespace with the name node 2 would get: creation must fail, and leave it be.
  await addNetns(`${A}-n2`);
  t.teardown(() => deleteNetns([`${A}-n2`]));
  await t.rejects(LocalCluster.create({ prefix: A, nodes: 3 }), /wtc2-n2 exists already.*sweep\('wtc2'\)/);
  t.same(await ours(A), [`${A}-n2`], 'the underlay and nodes 1 and 3 were made and removed; n2 is untouched');
});

t.test('addPod() that fails halfway removes the pod, and destroy() then cleans up the rest', async (t) => {
  const cluster = await LocalCluster.create({ prefix: A, nodes: 1 });
  t.teardown(() => cluster.destroy());
  // No bridge "weave" on the node: the namespace and veth get made, enslaving fails.
  await t.rejects(cluster.addPod(cluster.node(1), { name: 'p1', ip: '10.32.0.5/12', bridge: 'weave' }), /weave/);
  t.notOk((await ours(A)).includes(`${A}-n1-p1`));
  t.equal(await cluster.node(1).link(`${A}-vp1`), undefined, 'the host end of the veth is gone too');
  t.same(cluster.pods, []);
  await t.rejects(cluster.addPod(cluster.node(1), { name: 'p1', hostIfName: 'bad name' }), RangeError, 'refused before anything is made');
  // The same name works afterwards: nothing of the failed attempt is in the way.
  await cluster.node(1).addBridge('weave');
  await cluster.addPod(cluster.node(1), { name: 'p1', ip: '10.32.0.5/12', bridge: 'weave' });
  // Two of the same name at once: the second is refused and the first keeps its namespace.
  const both = await Promise.allSettled([cluster.addPod(cluster.node(1), { name: 'p2' }), cluster.addPod(cluster.node(1), { name: 'p2' })]);
  t.same(both.map((r) => r.status), ['fulfilled', 'rejected']);
  t.ok((await ours(A)).includes(`${A}-n1-p2`));
  await cluster.destroy();
  t.same(await ours(A), []);
});

t.test('destroy() also kills processes it did not start, and none survives in a deleted namespace', async (t) => {
  const cluster = await LocalCluster.create({ prefix: A, nodes: 1 });
  t.teardown(() => cluster.destroy());
  // Started behind the cluster's back, as a test might with child_process directly.
  const stray = spawn('ip', ['netns', 'exec', cluster.node(1).ns, 'sleep', '60'], { stdio: 'ignore' });
  const strayExit = new Promise<NodeJS.Signals | null>((resolve) => stray.once('exit', (_code, signal) => resolve(signal)));
  for (let i = 0; i < 50 && (await netnsPids(cluster.node(1).ns)).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.same(await netnsPids(cluster.node(1).ns), [stray.pid]);
  await cluster.destroy();
  t.equal(await within(strayExit, 3000), 'SIGKILL');
  t.same(await ours(A), []);
});

t.test('sweep(prefix) removes a crashed run\'s namespaces and processes, and only those', async (t) => {
  const crashed = [`${A}-u`, `${A}-n1`, `${A}-n1-p1`];
  const bystanders = [`${A}0-n1`, `x${A}-n1`];
  for (const ns of [...crashed, ...bystanders]) await addNetns(ns);
  t.teardown(() => deleteNetns([...crashed, ...bystanders]));
  const orphan = spawn('ip', ['netns', 'exec', `${A}-n1-p1`, 'sleep', '60'], { stdio: 'ignore' });
  const orphanExit = new Promise<NodeJS.Signals | null>((resolve) => orphan.once('exit', (_code, signal) => resolve(signal)));
  for (let i = 0; i < 50 && (await netnsPids(`${A}-n1-p1`)).length === 0; i++) await new Promise((r) => setTimeout(r, 20));

  t.same((await sweep(A)).sort(), [...crashed].sort());
  t.equal(await within(orphanExit, 3000), 'SIGKILL');
  const left = await listNetns();
  t.ok(crashed.every((ns) => !left.includes(ns)));
  t.ok(bystanders.every((ns) => left.includes(ns)), 'namespaces of prefix wtc20 and xwtc2 are not ours');
  t.same(await sweep(A), [], 'nothing left to sweep');
});

t.test('two clusters with the same subnet side by side: each works, neither sees the other', async (t) => {
  const a = await LocalCluster.create({ prefix: A, nodes: 3 });
  t.teardown(() => a.destroy());
  const b = await LocalCluster.create({ prefix: B, nodes: 2 });
  t.teardown(() => b.destroy());
  t.equal(a.node(1).underlayIp, b.node(1).underlayIp, 'same addresses, different underlays');

  t.equal((await a.node(1).ping(a.node(3).underlayIp, { count: 1 })).received, 1);
  t.equal((await b.node(1).ping(b.node(2).underlayIp, { count: 1 })).received, 1);
  // 172.31.0.3 exists only in cluster A: B's underlay does not reach it.
  const across = await b.node(1).ping(a.node(3).underlayIp, { count: 2, intervalS: 0.1, waitS: 0.3 });
  t.equal(across.received, 0);

  await a.destroy();
  t.same(await ours(A), []);
  t.same(await ours(B), [`${B}-n1`, `${B}-n2`, `${B}-u`], 'destroying A left B alone');
  t.equal((await b.node(2).ping(b.node(1).underlayIp, { count: 1 })).received, 1, 'and B still works');
});

t.test('creation time of 3 nodes with one pod each', async (t) => {
  const started = performance.now();
  const cluster = await LocalCluster.create({ prefix: B, nodes: 3 });
  t.teardown(() => cluster.destroy());
  await Promise.all(cluster.nodes.map((node) => cluster.addPod(node, { name: 'p1', ip: `10.32.${node.index}.1/12` })));
  const ms = performance.now() - started;
  t.comment(`3 nodes (${cluster.createMs.toFixed(1)} ms) + 3 pods: ${ms.toFixed(1)} ms`);
  t.ok(ms < 5000, 'well under the seconds a test can spare');
  const destroyStarted = performance.now();
  await cluster.destroy();
  t.comment(`destroy: ${(performance.now() - destroyStarted).toFixed(1)} ms`);
  t.same(await ours(B), []);
});

t.test('nothing of this file is left in `ip netns list`', async (t) => {
  const left = (await listNetns()).filter((ns) => PREFIXES.some((p) => ownedByPrefix(p, ns)));
  t.same(left, []);
});
