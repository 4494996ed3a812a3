// The entrypoint against the fake API server, nodes as processes on loopback (control plane only):
// peers come from the node list, a node added to the API joins, a node deleted from the API has
// its space reclaimed by exactly one survivor, a peer reclaimed while it was away starts afresh,
// and a node that re-joins with a new machine takes its own past's space back.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../lib/weaver.js';
import { validateObject } from '../lib/k8s-openapi.js';
import { KubeTestCluster, machineName, nodeIp, reclaimLines } from './launcher.js';

const NET = 70;
const RANGE = '10.70.0.0/16';

t.test('peers from the API, a node added, a node deleted, removed while away, re-joined with a new machine', async (t) => {
  const c = await KubeTestCluster.create(t, NET, RANGE);
  const { api, kube, launchers, dir } = c;
  const start = c.start.bind(c);
  const ringIs = c.ringIs.bind(c);

  for (let i = 1; i <= 3; i++) api.addNode(`node-${i}`, { internalIP: nodeIp(NET, i) });
  for (let i = 1; i <= 3; i++) start(i);

  await t.test('3 nodes start from the node list and agree on an even split', async (t) => {
    const ring = await ringIs([1, 2, 3].map((i) => machineName(NET, i)), 'one ring of three');
    for (const [peer, size] of ring) t.ok(Math.abs(size - 65536 / 3) < 1, `${peer} owns ${size} of 65536: a third`);
    for (let i = 1; i <= 3; i++) {
      const l = launchers.get(`node-${i}`)!;
      const others = [1, 2, 3].filter((j) => j !== i).map((j) => nodeIp(NET, j));
      t.match(l.kubeLogs(/^peers from the API's 3 nodes/)[0]?.msg ?? '', others.join(' '), `node-${i}'s peers are the other two`);
      await waitFor(`node-${i} conflist`, () => (existsSync(join(l.confDir, '10-weave.conflist')) ? true : undefined), 20_000);
      const msgs = l.logs.map((r) => r.msg);
      const condition = msgs.findIndex((m) => m.includes('condition NetworkUnavailable=False'));
      const conflist = msgs.findIndex((m) => m.startsWith('CNI configuration: wrote'));
      t.ok(condition >= 0 && condition < conflist, `node-${i}: the condition is set before the conflist is written`);
      const node = api.node(`node-${i}`)!;
      t.same(validateObject(node), []);
      t.match((node.status as { conditions: unknown[] }).conditions, [{ type: 'Ready' }, { type: 'NetworkUnavailable', status: 'False', reason: 'WeaveIsUp' }]);
      t.match(l.logs.find((r) => /IP allocation range/.test(r.msg))?.msg, /initialised by consensus=3/, 'IPALLOC_INIT defaults to the node count');
    }
    const reg = (await kube.read()).registry;
    t.same(reg.map((e) => `${e.nodeName}=${e.peerName}`).sort(), [1, 2, 3].map((i) => `node-${i}=${machineName(NET, i)}`), 'every peer registered in the Lease');
    t.same(validateObject(api.lease('kube-system', 'weave-net')), []);
  });

  await t.test('a 4th node added to the API joins: targets follow, it gets space', async (t) => {
    api.addNode('node-4', { internalIP: nodeIp(NET, 4) });
    const l4 = start(4);
    for (let i = 1; i <= 3; i++) {
      await waitFor(`node-${i} targets node-4`, async () => ((await launchers.get(`node-${i}`)!.targets()).some((x) => x.startsWith(nodeIp(NET, 4))) ? true : undefined), 20_000);
    }
    t.pass('the three others have node-4 as a target');
    await waitFor('node-4 ready', async () => ((await l4.call('GET', '/status')).status === 200 ? true : undefined), 20_000);
    const r = await c.allocate(l4, 'pod-on-4');
    t.match(r, /^10\.70\.\d+\.\d+\/16$/);
    await ringIs([1, 2, 3, 4].map((i) => machineName(NET, i)), 'node-4 owns part of the ring');
  });

  await t.test('node-4 deleted from the API: exactly one survivor reclaims its space', async (t) => {
    const victim = machineName(NET, 4);
    api.deleteNode('node-4');
    await launchers.get('node-4')!.kill();
    await ringIs([1, 2, 3].map((i) => machineName(NET, i)), 'node-4\'s space back with the survivors');
    await waitFor('registry without node-4', async () => ((await kube.read()).registry.some((e) => e.peerName === victim) ? undefined : true), 20_000);
    const lines = reclaimLines(launchers.values(), victim);
    t.equal(lines.length, 1, `one reclaimer: ${JSON.stringify(lines)}`);
    for (let i = 1; i <= 3; i++) {
      await waitFor(`node-${i} targets without node-4`, async () => ((await launchers.get(`node-${i}`)!.targets()).some((x) => x.startsWith(nodeIp(NET, 4))) ? undefined : true), 20_000);
    }
    t.pass('targets dropped node-4');
  });

  await t.test('a peer reclaimed while it was away sets its state aside and starts fresh', async (t) => {
    const l3 = launchers.get('node-3')!;
    await waitFor('node-3 state on disk', () => (existsSync(`${l3.dbPrefix}data.json`) ? true : undefined), 10_000);
    api.deleteNode('node-3');
    await l3.kill();
    await ringIs([1, 2].map((i) => machineName(NET, i)), 'node-3\'s space reclaimed');
    t.equal(reclaimLines(launchers.values(), machineName(NET, 3)).length, 1, 'by one survivor');
    // The same machine comes back under the same name, with its old state on disk.
    api.addNode('node-3', { internalIP: nodeIp(NET, 3) });
    const back = start(3);
    await waitFor('the warning', () => (back.kubeLogs(/was reclaimed by another peer while away/).length === 1 ? true : undefined), 20_000);
    t.ok(readdirSync(join(dir, 'node-3')).some((f) => f.startsWith('weave-netdata.json.reclaimed-')), 'the old state is set aside, not deleted');
    const a = await c.allocate(back, 'pod-on-3');
    t.match(a, /^10\.70\./);
    await ringIs([1, 2, 3].map((i) => machineName(NET, i)), 'one consistent ring with the returned node-3');
  });

  await t.test('a node re-joining under the same name with a new machine takes its past\'s space back first', async (t) => {
    const old = launchers.get('node-2')!;
    await old.kill(); // the machine is replaced; the Node object stays
    const newName = machineName(NET, 0x22);
    const fresh = start(2, 'node-2', newName, join(dir, 'node-2-new'));
    await waitFor('the new machine reclaimed the old one', () => (reclaimLines([fresh], machineName(NET, 2)).length === 1 ? true : undefined), 40_000);
    t.equal(reclaimLines(launchers.values(), machineName(NET, 2)).length, 1, 'by itself, and nobody else');
    await waitFor('registry', async () => {
      const reg = (await kube.read()).registry;
      return reg.filter((e) => e.nodeName === 'node-2').map((e) => e.peerName).join() === newName ? true : undefined;
    }, 20_000);
    t.pass('node-2 is registered once, with its new peer');
    await ringIs([machineName(NET, 1), newName, machineName(NET, 3)], 'the old peer owns nothing');
    await waitFor('the new node\'s conflist', () => (existsSync(join(fresh.confDir, '10-weave.conflist')) ? true : undefined), 20_000);
    const msgs = fresh.kubeLogs(/./).map((r) => r.msg);
    t.ok(msgs.findIndex((m) => m.startsWith('reclaimed the IP ranges')) < msgs.findIndex((m) => m.startsWith('CNI configuration: wrote')),
      'the conflist comes after its past was reclaimed');
    t.same(JSON.parse(readFileSync(join(fresh.confDir, '10-weave.conflist'), 'utf8')).plugins.map((p: { type: string }) => p.type), ['weave-net', 'portmap']);
  });

  await t.test('SIGTERM to the entrypoint stops weaver and the entrypoint exits with it', async (t) => {
    const l1 = launchers.get('node-1')!;
    l1.terminate();
    t.equal(await l1.exitCode(), 0);
    await waitFor('weaver gone', async () => (await l1.call('GET', '/status').then(() => undefined, () => true)), 10_000);
    t.pass('the HTTP API is gone');
  });
});
