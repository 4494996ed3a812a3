// A real partition: three daemons in network namespaces; one node's underlay link goes down while
// both sides keep allocating, then comes back. Nothing may be given twice.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, type ClusterNode } from '../../src/cluster/cluster.js';
import { sweep } from '../../src/cluster/netns.js';
import { WEAVER, waitFor, nameForIp } from '../lib/weaver.js';

const HTTP_CALL = fileURLToPath(new URL('../../src/cluster/http-call.js', import.meta.url));
const PREFIX = 'wtip';

async function call(node: ClusterNode, method: string, path: string): Promise<{ status: number; body: string }> {
  const r = await node.exec([process.execPath, HTTP_CALL, method, `http://127.0.0.1:6784${path}`], { timeoutMs: 40_000 });
  const nl = r.stdout.indexOf('\n');
  return { status: Number(r.stdout.slice(0, nl)), body: r.stdout.slice(nl + 1) };
}

t.before(() => sweep(PREFIX));

t.test('both sides of a partition keep allocating; after the heal no address has two holders', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 3, underlaySubnet: '172.31.9.0/24' });
  const state = mkdtempSync(join(tmpdir(), 'weft-partition-'));
  t.teardown(async () => {
    await cluster.destroy();
    rmSync(state, { recursive: true, force: true });
  });
  const [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  for (const node of cluster.nodes) {
    node.spawn([process.execPath, WEAVER, '--no-bridge', '--name', nameForIp(`127.0.9.${node.index}`), '--nickname', node.name,
      '--host', node.underlayIp, '--metrics-addr', `${node.underlayIp}:6782`, '--db-prefix', join(state, `${node.name}-`), '--log-format', 'json',
      '--heartbeat-interval', '1', '--gossip-interval', '1', '--ipalloc-init', 'consensus=3', '--ipam-request-timeout', '5',
      ...(node === n1 ? [] : [n1.underlayIp])]);
  }
  for (const node of cluster.nodes) {
    await waitFor(`${node.name} ready`, async () => (/Status: ready/.test((await call(node, 'GET', '/status')).body) ? true : undefined), 30_000);
  }

  await n3.iproute(['link', 'set', n3.underlayIf, 'down']);
  await waitFor('the partition is noticed', async () => (/\(with 2 established/.test((await call(n1, 'GET', '/status')).body) ? true : undefined), 15_000);
  for (let i = 0; i < 5; i++) {
    for (const node of cluster.nodes) t.equal((await call(node, 'POST', `/ip/${node.name}-${i}`)).status, 200, `${node.name} allocates`);
  }
  t.match((await call(n1, 'GET', '/status/ipam')).body, /- unreachable!/, 'n3 shows as unreachable');

  await n3.iproute(['link', 'set', n3.underlayIf, 'up']);
  await waitFor('the heal', async () => (/Peers: 3 \(with 6 established/.test((await call(n1, 'GET', '/status')).body) ? true : undefined), 30_000);
  const holders = new Map<string, string>();
  for (const node of cluster.nodes) {
    const owned = JSON.parse((await call(node, 'GET', '/ip')).body) as { owned: { containerid: string; addrs: string[] }[] };
    t.equal(owned.owned.length, 5, `${node.name} kept its allocations`);
    for (const o of owned.owned) {
      const a = o.addrs[0]!;
      t.notOk(holders.has(a), `${a} held once (${o.containerid})`);
      holders.set(a, o.containerid);
    }
  }
  const views = await Promise.all(cluster.nodes.map(async (n) => (await call(n, 'GET', '/status/ipam')).body.replace(/ \(\d+ active\)/, '').split('\n').map((l) => l.trimEnd()).sort().join('\n')));
  t.equal(views[1], views[0], 'same ring on n1 and n2');
  t.equal(views[2], views[0], 'same ring on n3');
  t.notMatch(views[0]!, /unreachable/);
});
