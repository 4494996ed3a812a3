// The fake API server against the real kubectl and the official client, with every object it
// serves validated against the Kubernetes 1.36 OpenAPI document: it must not drift into a dialect
// that only our own client accepts.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { FakeKubeApi } from '../../src/cluster/fake-kube-api.js';
import { KubeApi } from '../../src/k8s/kube-api.js';
import { silentLogger } from '../../src/log/logger.js';
import { parsePeerName } from '../../src/net/peer-name.js';
import { validateAs, validateList, validateObject, validateWatchEvent } from '../lib/k8s-openapi.js';
import { waitFor } from '../lib/weaver.js';

interface Kubectl { code: number | null; stdout: string; stderr: string }

async function setup(t: { teardown(fn: () => unknown): void }): Promise<{ api: FakeKubeApi; kubectl: (...args: string[]) => Promise<Kubectl>; client: KubeApi }> {
  const api = await FakeKubeApi.start();
  const dir = mkdtempSync(join(tmpdir(), 'weft-kubeapi-'));
  t.teardown(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, api.kubeconfig());
  const kubectl = (...args: string[]): Promise<Kubectl> => new Promise((resolve) => {
    execFile('/usr/bin/kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), '--request-timeout', '20s', ...args],
      { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  return { api, kubectl, client: new KubeApi(kc) };
}

function json(r: Kubectl): Record<string, unknown> {
  if (r.code !== 0) throw new Error(`kubectl failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Reads a watch stream until `count` events came; returns them. */
function watch(url: string, count: number, onOpen: () => void): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const events: Record<string, unknown>[] = [];
    const req = request(url, (res) => {
      if (res.statusCode !== 200) reject(new Error(`watch: HTTP ${res.statusCode}`));
      let partial = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const l of lines) if (l !== '') events.push(JSON.parse(l) as Record<string, unknown>);
        if (events.length >= count) {
          req.destroy();
          resolve(events);
        }
      });
      onOpen();
    });
    req.on('error', (err) => { if (events.length < count) reject(err); });
    req.setTimeout(20_000, () => req.destroy(new Error(`watch: ${events.length} of ${count} events`)));
    req.end();
  });
}

t.test('kubectl lists, gets and deletes nodes; every object is valid', async (t) => {
  const { api, kubectl } = await setup(t);
  api.addNode('node-1', { internalIP: '10.0.0.1' });
  api.addNode('node-2', { internalIP: '10.0.0.2', externalIP: '192.0.2.2' });
  const list = json(await kubectl('get', 'nodes', '-o', 'json'));
  t.same(validateList(list), [], 'kubectl get nodes -o json: valid');
  t.same((list.items as { metadata: { name: string } }[]).map((n) => n.metadata.name), ['node-1', 'node-2']);
  const one = json(await kubectl('get', 'node', 'node-2', '-o', 'json'));
  t.same(validateObject(one), []);
  t.same((one.status as { addresses: unknown[] }).addresses, [{ type: 'InternalIP', address: '10.0.0.2' }, { type: 'ExternalIP', address: '192.0.2.2' }, { type: 'Hostname', address: 'node-2' }]);
  const table = await kubectl('get', 'nodes');
  t.match(table.stdout, /^NAME +AGE\nnode-1 +\S+\nnode-2 +\S+\n$/, 'the plain listing');

  const missing = await kubectl('get', 'node', 'nope');
  t.not(missing.code, 0);
  t.match(missing.stderr, /Error from server \(NotFound\): nodes "nope" not found/, 'a 404 kubectl understands');

  const del = await kubectl('delete', 'node', 'node-2');
  t.equal(del.code, 0, del.stderr);
  t.match(del.stdout, /node "node-2" deleted/);
  t.same(api.nodeList().map((n) => n.metadata.name), ['node-1']);
  t.equal((json(await kubectl('get', 'nodes', '-o', 'json')).items as unknown[]).length, 1, 'kubectl sees it gone');
});

t.test('kubectl patches node status with a strategic merge: conditions merge by type', async (t) => {
  const { api, kubectl } = await setup(t);
  api.addNode('node-1', { internalIP: '10.0.0.1' });
  const rv = Number(api.node('node-1')!.metadata.resourceVersion);
  const patch = { status: { conditions: [{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated', message: 'x', lastTransitionTime: '2026-01-01T00:00:00Z' }] } };
  const r = await kubectl('patch', 'node', 'node-1', '--subresource=status', '--type=strategic', '-p', JSON.stringify(patch), '-o', 'json');
  const node = json(r);
  t.same(validateObject(node), []);
  const conditions = (node.status as { conditions: { type: string; status: string }[] }).conditions;
  t.same(conditions.map((c) => `${c.type}=${c.status}`), ['Ready=True', 'NetworkUnavailable=True']);
  t.ok(Number((node.metadata as { resourceVersion: string }).resourceVersion) > rv, 'the write raised the resourceVersion');
  patch.status.conditions[0]!.status = 'False';
  const again = json(await kubectl('patch', 'node', 'node-1', '--subresource=status', '--type=merge', '-p', JSON.stringify({ metadata: { labels: { sneaky: 'yes' } }, ...patch }), '-o', 'json'));
  t.same((again.status as { conditions: { type: string; status: string }[] }).conditions.map((c) => `${c.type}=${c.status}`), ['NetworkUnavailable=False'],
    'a JSON merge patch replaces the whole list, as on a real server');
  t.notOk((again.metadata as { labels: Record<string, string> }).labels.sneaky, 'the status subresource changes status only');
  const bad = await kubectl('patch', 'node', 'node-1', '--subresource=status', '--type=json', '-p', '[]');
  t.not(bad.code, 0, 'a patch type it does not serve is refused, not misapplied');
});

t.test('the official client: node list, condition patch, and the Lease with 409 on a stale version', async (t) => {
  const { api, kubectl, client } = await setup(t);
  api.addNode('node-1', { internalIP: '10.0.0.1' });
  t.same((await client.listNodes()).map((n) => n.metadata?.name), ['node-1']);
  await client.setNetworkAvailable('node-1', new Date('2026-02-03T04:05:06Z'));
  const node = api.node('node-1')!;
  t.same(validateObject(node), []);
  t.match((node.status as { conditions: unknown[] }).conditions, [{ type: 'Ready' }, { type: 'NetworkUnavailable', status: 'False', reason: 'WeaveIsUp', lastTransitionTime: '2026-02-03T04:05:06.000Z' }]);

  const p1 = parsePeerName('02:00:00:00:46:01');
  const p2 = parsePeerName('02:00:00:00:46:02');
  t.same(await client.read(), { registry: [], version: undefined }, 'no Lease yet: an empty registry');
  t.equal(await client.write([{ peerName: p1, nodeName: 'node-1' }], undefined, p1), true, 'created');
  t.equal(await client.write([{ peerName: p2, nodeName: 'node-2' }], undefined, p2), false, 'a second create is a conflict (AlreadyExists)');
  const first = await client.read();
  t.same(first.registry, [{ peerName: p1, nodeName: 'node-1' }]);
  t.equal(await client.write([...first.registry, { peerName: p2, nodeName: 'node-2' }], first.version, p2), true, 'update at the version read');
  t.equal(await client.write([], first.version, p1), false, 'update at a stale version: 409');
  t.equal((await client.read()).registry.length, 2, 'the stale write changed nothing');

  const leases = json(await kubectl('get', 'lease', '-n', 'kube-system', '-o', 'json'));
  t.same(validateList(leases), [], 'kubectl get lease -n kube-system: valid');
  const lease = (leases.items as { metadata: { name: string; annotations: Record<string, string> }; spec: { holderIdentity: string } }[])[0]!;
  t.equal(lease.metadata.name, 'weave-net');
  t.equal(lease.spec.holderIdentity, p2);
  t.match(lease.metadata.annotations['kube-peers.weave.works/peers'], /node-2/);
  const listing = await kubectl('get', 'lease', '-n', 'kube-system');
  t.match(listing.stdout, /weave-net/);
  const missing = await kubectl('get', 'lease', 'other', '-n', 'kube-system');
  t.match(missing.stderr, /NotFound.*leases\.coordination\.k8s\.io "other" not found/);
  const ns = json(await kubectl('get', 'namespace', 'kube-system', '-o', 'json'));
  t.same(validateObject(ns), [], 'the namespace kubectl looks up is valid too');
  for (const o of api.allObjects()) t.same(validateObject(o), [], `${o.kind as string} ${o.metadata.name} valid`);
});

t.test('watch: replay from a resourceVersion, then live ADDED/MODIFIED/DELETED; each event valid', async (t) => {
  const { api, client } = await setup(t);
  api.addNode('node-1', { internalIP: '10.0.0.1' });
  const from = api.resourceVersion;
  api.addNode('node-2', { internalIP: '10.0.0.2' });
  const events = await watch(`${api.url}/api/v1/nodes?watch=1&resourceVersion=${from}`, 4, () => {
    void client.setNetworkAvailable('node-2').then(() => api.deleteNode('node-1')).then(() => api.addNode('node-3', { internalIP: '10.0.0.3' }));
  });
  t.same(events.map((e) => `${e.type as string} ${(e.object as { metadata: { name: string } }).metadata.name}`),
    ['ADDED node-2', 'MODIFIED node-2', 'DELETED node-1', 'ADDED node-3'], 'node-1 (before the version) is not replayed');
  for (const e of events) t.same(validateWatchEvent(e), [], `${e.type as string} event valid`);
  const versions = events.map((e) => Number((e.object as { metadata: { resourceVersion: string } }).metadata.resourceVersion));
  t.same(versions, [...versions].sort((a, b) => a - b), 'resourceVersions increase');
  const initial = await watch(`${api.url}/api/v1/nodes?watch=true`, 2, () => undefined);
  t.same(initial.map((e) => e.type), ['ADDED', 'ADDED'], 'without a version: what exists, as ADDED');
});

t.test('the client\'s informer follows nodes through the fake\'s watch', async (t) => {
  const { api, client } = await setup(t);
  api.addNode('node-1', { internalIP: '10.0.0.1' });
  let names: string[] = [];
  const deleted: string[] = [];
  const stop = client.watchNodes((nodes) => { names = nodes.map((n) => n.metadata!.name!).sort(); }, (n) => deleted.push(n.metadata!.name!), silentLogger);
  t.teardown(stop);
  await waitFor('node-1 seen', () => (names.join() === 'node-1' ? true : undefined), 10_000);
  api.addNode('node-2', { internalIP: '10.0.0.2' });
  await waitFor('node-2 seen', () => (names.join() === 'node-1,node-2' ? true : undefined), 10_000);
  api.deleteNode('node-1');
  await waitFor('node-1 gone', () => (names.join() === 'node-2' ? true : undefined), 10_000);
  t.same(deleted, ['node-1']);
});

t.test('pods are listed cluster-wide and per namespace; errors are valid Status objects', async (t) => {
  const { api, kubectl } = await setup(t);
  api.addPod('default', 'web', 'node-1', '10.32.0.5');
  api.addPod('kube-system', 'dns', 'node-1');
  const all = json(await kubectl('get', 'pods', '-A', '-o', 'json'));
  t.same(validateList(all), []);
  t.equal((all.items as unknown[]).length, 2);
  const ns = json(await kubectl('get', 'pods', '-n', 'default', '-o', 'json'));
  t.same((ns.items as { metadata: { name: string } }[]).map((p) => p.metadata.name), ['web']);
  const status = await new Promise<Record<string, unknown>>((resolve, reject) => {
    request(`${api.url}/api/v1/nodes/nope`, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ code: res.statusCode, ...JSON.parse(body) as object }));
    }).on('error', reject).end();
  });
  t.equal(status.code, 404);
  const { code: _code, ...body } = status;
  t.same(validateAs('io.k8s.apimachinery.pkg.apis.meta.v1.Status', body), []);
});
