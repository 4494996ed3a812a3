// The weft/weave-kube image, built by scripts/build-image.sh (buildah, a debootstrap rootfs,
// Node.js 20 from the npm registry) and run with podman:
//   - always (the CI smoke test): the build, using the rootfs and Node.js cached in
//     WEFT_IMAGE_CACHE (/var/cache/weft-image) when there; `weaver --version`; the tools the
//     entrypoint and the daemon call; the daemon running in the image answers `weave status`,
//     both control-plane only and, privileged, with its bridge, TAP and iptables rules.
//     And the DaemonSet's container itself: the image's default command (weave-kube) with the
//     manifest's environment, privileged, in a network namespace of its own wired to the
//     project's fake API server: it lists the Node, starts weaver with its bridge, registers in
//     the Lease, sets NetworkUnavailable=False and writes the conflist into the mounted directory.
//   - WEFT_IMAGE_TEST=1 (opt-in, slow): the build from nothing (--fresh: debootstrap and the npm
//     download again) and the docker-archive export a cluster would import.
// Each container runs with --network none (its own network namespace: nothing on the host is
// touched) under a per-run name and image tag, removed at the end.
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec, type ExecResult } from '../../src/cluster/exec.js';
import { waitFor } from '../../src/cluster/wait-for.js';
import { addNetns, deleteNetns, netnsPath } from '../../src/cluster/netns.js';
import { FakeKubeApi } from '../../src/cluster/fake-kube-api.js';
import { validateObject } from '../lib/k8s-openapi.js';
import { PEERS_ANNOTATION } from '../../src/k8s/peer-registry.js';
import { LOCK_NAME, LOCK_NAMESPACE } from '../../src/k8s/names.js';
import { VERSION } from '../../src/version.js';
import { repoRoot } from '../lib/repo-root.js';

const root = repoRoot();
const full = process.env.WEFT_IMAGE_TEST === '1';
const tag = `localhost/wk9-test/weave-kube:${process.pid}`;
const prefix = `wk9-img-${process.pid}`;
// podman here runs without CAP_SYS_RESOURCE under RLIMIT_NPROC 32768, and its default limits
// are higher: runc could not set them ("error setting rlimit ... operation not permitted").
// Limits at or below the current ones always work.
const ULIMITS = ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096'];

// A cold cache means debootstrap (about 2.5 min measured here), a 43 MB download and npm ci.
t.setTimeout(20 * 60_000);

if (process.getuid?.() !== 0) {
  t.fail('the image test needs root (debootstrap, buildah and podman storage); CI runs it as root');
  process.exit(1);
}

function ok(r: ExecResult): string {
  if (r.code !== 0) throw new Error(`exit ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}`);
  return r.stdout;
}

const podmanRun = (args: string[], timeoutMs = 60_000): Promise<ExecResult> =>
  exec(null, ['podman', 'run', '--rm', '--network', 'none', ...ULIMITS, tag, ...args], { timeoutMs });

t.before(async () => {
  const args = ['bash', join(root, 'scripts', 'build-image.sh'), '--no-build', '--tag', tag, ...(full ? ['--fresh'] : [])];
  const started = Date.now();
  const build = await exec(null, args, { timeoutMs: 18 * 60_000 });
  t.comment(build.stdout.trim());
  t.comment(`build-image.sh took ${((Date.now() - started) / 1000).toFixed(1)} s${full ? ' (fresh)' : ''}`);
  ok(build);
});
t.teardown(async () => {
  await exec(null, ['buildah', 'rmi', '--force', tag], { timeoutMs: 60_000 });
});

t.test('the image starts the daemon: weaver --version', async (t) => {
  t.equal(ok(await podmanRun(['weaver', '--version'])), `weave ${VERSION}\n`);
  t.equal(ok(await podmanRun(['weave', 'version'])), `weave ${VERSION}\n`, 'the CLI too');
});

t.test('the image holds Node.js 20, the entrypoint and the host tools the daemon and entrypoint call', async (t) => {
  t.match(ok(await podmanRun(['node', '--version'])), /^v20\.\d+\.\d+\n$/);
  const tools = ok(await podmanRun(['sh', '-c', 'for c in weave-kube weaver weave ip iptables-nft iptables-nft-save iptables-legacy iptables-legacy-save modprobe; do command -v $c || echo "missing $c"; done']));
  t.notMatch(tools, /missing/, tools);
  t.match(ok(await podmanRun(['iptables-legacy', '--version'])), /legacy/);
  t.match(ok(await podmanRun(['iptables-nft', '--version'])), /nf_tables/);
  // The entrypoint's module graph (the Kubernetes client included) loads: without HOSTNAME it stops
  // at its first check with its one-line error, before talking to any API server.
  const launch = await podmanRun(['env', '-u', 'HOSTNAME', 'weave-kube']);
  t.equal(launch.code, 1);
  t.match(launch.stderr, /^weave-kube: HOSTNAME is not set/m);
  t.equal(ok(await podmanRun(['sh', '-c', 'test -e /etc/machine-id && echo present || echo absent'])).trim(), 'absent',
    'no machine id baked in: each node brings its own (peer names must differ)');
});

/** Starts weaver detached in a container of its own and waits until `weave status` answers there. */
async function runDaemon(t: Test, name: string, extra: string[], weaverArgs: string[]): Promise<string> {
  t.teardown(async () => {
    await exec(null, ['podman', 'rm', '--force', '--time', '0', name], { timeoutMs: 60_000 });
  });
  ok(await exec(null, ['podman', 'run', '--detach', '--name', name, '--network', 'none', ...ULIMITS, ...extra, tag, 'weaver', ...weaverArgs], { timeoutMs: 60_000 }));
  return waitFor(`weave status in ${name}`, async () => {
    const r = await exec(null, ['podman', 'exec', name, 'weave', 'status']);
    if (r.code === 0) return r.stdout;
    const state = await exec(null, ['podman', 'inspect', '--format', '{{.State.Status}}', name]);
    if (state.stdout.trim() !== 'running') {
      const logs = await exec(null, ['podman', 'logs', name]);
      throw new Error(`container ${name} is ${state.stdout.trim()}: ${logs.stdout}${logs.stderr}`);
    }
    return undefined;
  }, 30_000, 200);
}

t.test('the daemon runs in the image: control plane only', async (t) => {
  const status = await runDaemon(t, `${prefix}-cp`, [], ['--no-bridge']);
  t.match(status, new RegExp(`Version: ${VERSION.replace(/\./g, '\\.')}`));
  t.match(status, /Service: router/);
  t.match(status, /Status: ready/, 'IPAM ready: one peer, consensus of one');
});

t.test('the daemon runs in the image privileged: bridge, TAP and iptables rules in its namespace', async (t) => {
  const name = `${prefix}-dp`;
  await runDaemon(t, name, ['--privileged'], []);
  const bridge = await waitFor('the weave bridge with its address', async () => {
    const r = await exec(null, ['podman', 'exec', name, 'ip', '-j', 'addr', 'show', 'dev', 'weave']);
    const links = r.code === 0 ? (JSON.parse(r.stdout) as { addr_info?: { local: string; prefixlen: number }[] }[]) : [];
    return links[0]?.addr_info?.find((a) => a.local.startsWith('10.3'));
  });
  t.equal(`${bridge.local}/${bridge.prefixlen}`, '10.32.0.1/12', 'weave:expose: the first address of the range');
  ok(await exec(null, ['podman', 'exec', name, 'ip', 'link', 'show', 'vethwe-tap']));
  const rules = ok(await exec(null, ['podman', 'exec', name, 'iptables-save']));
  t.match(rules, /^-A FORWARD -j WEAVE-FORWARD$/m, 'the daemon\'s chains, made with the image\'s iptables');
});

t.test('the DaemonSet container: weave-kube in the image against an API server', async (t) => {
  // netns wk9-<pid> holds the "node" (172.31.79.2); the API server listens on the host end of a
  // veth (172.31.79.1), the only address the container can reach.
  const ns = `wk9-${process.pid}`;
  const hostIf = `wk9h${process.pid % 1_000_000}`;
  const dir = mkdtempSync(join(tmpdir(), 'wk9-kube-'));
  const name = `${prefix}-kube`;
  t.teardown(async () => {
    await exec(null, ['podman', 'rm', '--force', '--time', '0', name], { timeoutMs: 60_000 });
    await deleteNetns([ns]);
    await exec(null, ['ip', 'link', 'del', hostIf]);
    rmSync(dir, { recursive: true, force: true });
  });
  await addNetns(ns);
  ok(await exec(null, ['ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]));
  ok(await exec(null, ['ip', 'addr', 'add', '172.31.79.1/24', 'dev', hostIf]));
  ok(await exec(null, ['ip', 'link', 'set', hostIf, 'up']));
  ok(await exec(null, ['ip', '-n', ns, 'addr', 'add', '172.31.79.2/24', 'dev', 'eth0']));
  ok(await exec(null, ['ip', '-n', ns, 'link', 'set', 'eth0', 'up']));
  ok(await exec(null, ['ip', '-n', ns, 'link', 'set', 'lo', 'up']));

  const api = await FakeKubeApi.start('172.31.79.1');
  t.teardown(() => api.close());
  api.addNode('node-a', { internalIP: '172.31.79.2' });
  writeFileSync(join(dir, 'kubeconfig'), api.kubeconfig());
  const confDir = join(dir, 'net.d');
  const weavedb = join(dir, 'weavedb');
  ok(await exec(null, ['mkdir', '-p', confDir, weavedb]));

  // The manifest's env (HOSTNAME is the node name; the API comes from KUBECONFIG, not the
  // in-cluster service account) and its mounts for state and CNI config.
  ok(await exec(null, ['podman', 'run', '--detach', '--name', name, '--privileged', '--network', `ns:${netnsPath(ns)}`, ...ULIMITS,
    '-e', 'HOSTNAME=node-a', '-e', 'KUBECONFIG=/kube/config', '-e', 'IPALLOC_RANGE=10.32.0.0/12', '-e', 'WEAVE_MTU=1376',
    '-e', 'CONN_LIMIT=200', '-e', 'NO_MASQ_LOCAL=1', '-e', 'WEAVE_HTTP_ADDR=127.0.0.1:6784', '-e', 'WEAVE_METRICS_ADDR=0.0.0.0:6782',
    '-e', 'DB_PREFIX=/weavedb/weave-net',
    '-v', `${join(dir, 'kubeconfig')}:/kube/config:ro`, '-v', `${confDir}:/host/etc/cni/net.d`, '-v', `${weavedb}:/weavedb`,
    tag], { timeoutMs: 60_000 }));

  const conflist = join(confDir, '10-weave.conflist');
  await waitFor('the conflist, written once the network is up', async () => {
    if (existsSync(conflist)) return true;
    const state = await exec(null, ['podman', 'inspect', '--format', '{{.State.Status}}', name]);
    if (state.stdout.trim() !== 'running') {
      const logs = await exec(null, ['podman', 'logs', name]);
      throw new Error(`container ${name} is ${state.stdout.trim()}: ${logs.stdout}${logs.stderr}`);
    }
    return undefined;
  }, 60_000, 200);
  const plugins = (JSON.parse(readFileSync(conflist, 'utf8')) as { plugins: { type: string }[] }).plugins.map((p) => p.type);
  t.same(plugins, ['weave-net', 'portmap']);
  const node = api.node('node-a') as { status?: { conditions?: { type: string; status: string }[] } } | undefined;
  t.same(node?.status?.conditions?.filter((c) => c.type === 'NetworkUnavailable').map((c) => c.status), ['False'],
    'NetworkUnavailable=False is set by the time the conflist is there');
  t.same(validateObject(api.node('node-a')), [], 'the patched Node is still a valid Node');
  const lease = api.lease(LOCK_NAMESPACE, LOCK_NAME);
  t.match(lease?.metadata.annotations?.[PEERS_ANNOTATION] ?? '', /node-a/, 'registered in the lock Lease');
  t.same(validateObject(lease), [], 'a valid Lease');
  t.ok(existsSync(join(weavedb, 'weave-netdata.json')), 'state on the mounted host path');
  const status = ok(await exec(null, ['podman', 'exec', name, 'weave', 'status']));
  t.match(status, /Name: [0-9a-f:]{17}\(node-a\)/, 'the nickname is the node name');
  t.match(status, /Status: ready/);
  ok(await exec(null, ['ip', '-n', ns, 'link', 'show', 'weave']));
});

t.test('opt-in: the docker-archive a cluster imports', { skip: full ? false : 'set WEFT_IMAGE_TEST=1' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wk9-archive-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'weave-kube.tar');
  ok(await exec(null, ['buildah', 'push', '--quiet', tag, `docker-archive:${file}:${tag}`], { timeoutMs: 5 * 60_000 }));
  t.ok(statSync(file).size > 50 * 1024 * 1024, `${(statSync(file).size / 1024 / 1024).toFixed(0)} MB`);
  const listing = ok(await exec(null, ['tar', '-tf', file]));
  t.match(listing, /^manifest\.json$/m, 'docker-archive layout: ctr images import / kind load image-archive read it');
});
