// The data path end to end: three nodes as network namespaces, a real daemon in each with its
// bridge, TAP and sleeve, pods attached to the bridges with addresses from IPAM, real traffic.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, type ClusterNode, type Pod } from '../../src/cluster/cluster.js';
import { sweep } from '../../src/cluster/netns.js';
import { WEAVER, WEAVE_CLI, waitFor, nameForIp } from '../lib/weaver.js';

const HTTP_CALL = fileURLToPath(new URL('../lib/http-call.js', import.meta.url));
const PREFIX = 'wtd';

async function call(node: ClusterNode, method: string, path: string): Promise<{ status: number; body: string }> {
  const r = await node.exec([process.execPath, HTTP_CALL, method, `http://127.0.0.1:6784${path}`], { timeoutMs: 40_000 });
  const nl = r.stdout.indexOf('\n');
  return { status: Number(r.stdout.slice(0, nl)), body: r.stdout.slice(nl + 1) };
}

async function weave(node: ClusterNode, ...args: string[]): Promise<string> {
  return (await node.exec([process.execPath, WEAVE_CLI, ...args], { timeoutMs: 20_000 })).stdout;
}

t.before(() => sweep(PREFIX));

t.test('pods on three nodes reach each other across the overlay, and the hosts reach their pods', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 3, underlaySubnet: '172.31.12.0/24' });
  const state = mkdtempSync(join(tmpdir(), 'weft-dataplane-'));
  t.teardown(async () => {
    await cluster.destroy();
    rmSync(state, { recursive: true, force: true });
  });
  const nodes = cluster.nodes as ClusterNode[];
  const [n1] = nodes as [ClusterNode];
  for (const node of nodes) {
    node.spawn([process.execPath, WEAVER, '--name', nameForIp(`127.0.12.${node.index}`), '--nickname', node.name,
      '--host', node.underlayIp, '--metrics-addr', `${node.underlayIp}:6782`, '--db-prefix', join(state, `${node.name}-`),
      '--log-format', 'json', '--heartbeat-interval', '1', '--gossip-interval', '1', '--ipalloc-init', 'consensus=3',
      ...(node === n1 ? [] : [n1.underlayIp])]);
  }
  const gateways = new Map<ClusterNode, string>();
  for (const node of nodes) {
    const expose = await waitFor(`${node.name} bridge address`, async () => {
      const r = await call(node, 'GET', '/ip/weave:expose');
      return r.status === 200 ? r.body : undefined;
    }, 40_000);
    gateways.set(node, expose.split('/')[0]!);
  }
  await waitFor('sleeve established everywhere', async () => {
    const outs = await Promise.all(nodes.map((n) => weave(n, 'status', 'connections')));
    return outs.every((o) => (o.match(/established sleeve /g) ?? []).length === 2) ? outs : undefined;
  }, 30_000);
  const text = await weave(n1, 'status', 'connections');
  t.match(text, /^(->|<-) 172\.31\.12\.\d+:6783 +established sleeve +[0-9a-f:]{17}\(\S+\) mtu=1412$/m, 'status shows sleeve and mtu');

  const pods: Pod[] = [];
  for (const node of nodes) {
    const r = await call(node, 'POST', `/ip/pod-${node.index}`);
    t.equal(r.status, 200);
    pods.push(await cluster.addPod(node, { name: 'p', ip: r.body, gateway: gateways.get(node)!, bridge: 'weave', mtu: 1376 }));
  }
  const [p1, p2, p3] = pods as [Pod, Pod, Pod];
  const ipOf = (p: Pod): string => p.ip!.split('/')[0]!;
  for (const [from, to] of [[p1, p2], [p2, p3], [p3, p1]] as const) {
    const stats = await from.ping(ipOf(to), { count: 5, intervalS: 0.2, waitS: 2 });
    t.ok(stats.received >= 4, `${from.ns} -> ${to.ns}: ${stats.received}/5 replies`);
  }
  for (const [i, node] of nodes.entries()) {
    const stats = await node.ping(ipOf(pods[i]!), { count: 3 });
    t.equal(stats.received, 3, `${node.name} reaches its pod through the bridge address`);
  }
  const transfer = await p1.tcpTransferTo(p3, ipOf(p3), 8 * 1024 * 1024);
  t.ok(transfer.intact, `TCP across the overlay arrives intact (${transfer.mbitPerSecond.toFixed(0)} Mbit/s)`);
});
