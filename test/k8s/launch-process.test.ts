// The entrypoint's refusals, as a process: one clear line on stderr and exit status 1, before
// anything is started.
import t from 'tap';
import { LocalCluster, sweep } from '../../src/cluster/index.js';
import { runNode } from '../lib/weaver.js';
import { LAUNCH } from './launcher.js';

const PREFIX = 'wk2';
t.before(() => sweep(PREFIX));

t.test('no HOSTNAME', async (t) => {
  const r = await runNode([LAUNCH], { HOSTNAME: '' });
  t.equal(r.code, 1);
  t.equal(r.stderr, 'weave-kube: HOSTNAME is not set: the DaemonSet sets it to spec.nodeName\n');
});

t.test('a range that overlaps a route of the host is refused, naming both', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1, underlaySubnet: '172.31.73.0/24' });
  t.teardown(() => cluster.destroy());
  const node = cluster.node(1);
  const env = { HOSTNAME: 'n1', KUBECONFIG: '/nonexistent/kubeconfig', EXTRA_ARGS: '--no-bridge' };
  const r = await node.exec([process.execPath, LAUNCH], { env: { ...env, IPALLOC_RANGE: '172.16.0.0/12' }, timeoutMs: 30_000 });
  t.equal(r.code, 1);
  t.equal(r.stderr, `weave-kube: network 172.16.0.0/12 overlaps with existing route 172.31.73.0/24 dev ${PREFIX}-eth0 on the host; choose another IPALLOC_RANGE\n`);
  // With a range clear of the routes, the next refusal is the missing API configuration.
  const next = await node.exec([process.execPath, LAUNCH], { env: { ...env, IPALLOC_RANGE: '10.32.0.0/12' }, timeoutMs: 30_000 });
  t.equal(next.code, 1);
  t.match(next.stderr, /^weave-kube: cannot configure the Kubernetes client: .*\n$/);
});
