// A real container runtime against weft: podman with its CNI backend, run in the node namespaces
// of a local cluster (through nsenter, so that the network namespaces podman makes under
// /run/netns are visible to the node's daemon), a busybox rootfs, the weave-net executable and
// the conflist installed by `weave setup-cni`. Containers on two nodes ping each other; `podman rm`
// frees the address and removes the veth; fifty run/rm cycles leave nothing behind.
import t from 'tap';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OverlayCluster } from '../../src/cluster/overlay-cluster.js';
import type { ClusterNode } from '../../src/cluster/cluster.js';
import { pendingReleaseDir } from '../../src/api/cni-protocol.js';
import { recordsOnDisk } from '../lib/cni-records-on-disk.js';

const WEAVE_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BUSYBOX = '/bin/busybox';
const PORTMAP = '/usr/lib/cni/portmap';
const CYCLES = 50;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A busybox root filesystem: the one static binary and the applets the test uses. */
function makeRootfs(dir: string): void {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin', 'busybox'));
  for (const applet of ['sh', 'sleep', 'ping', 'ip', 'cat', 'true']) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\n');
}

t.test('podman with the CNI backend on two nodes', async (t) => {
  if (!existsSync(BUSYBOX) || !existsSync(PORTMAP)) {
    t.fail(`needs ${BUSYBOX} (busybox-static) and ${PORTMAP} (containernetworking-plugins)`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'weft-podman-'));
  const oc = await OverlayCluster.start({ prefix: 'wn2', nodes: 2, net: 51 }, (c) => t.teardown(async () => {
    await c.destroy();
    // podman's storage holds overlay mounts under its root: unmounted by `podman system reset` would
    // be slow; a lazy unmount of whatever is left is enough for the directory to go.
    await run(['sh', '-c', `grep -o " ${work}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    rmSync(work, { recursive: true, force: true });
  }));
  const [n1, n2] = oc.nodes as [ClusterNode, ClusterNode];
  await oc.established();
  const rootfs = join(work, 'rootfs');
  makeRootfs(rootfs);

  // Per node: its own plugin dir, conflist (with the node's socket), containers.conf and storage.
  const podman = new Map<ClusterNode, (args: readonly string[], timeoutMs?: number) => Promise<Run>>();
  for (const node of [n1, n2]) {
    const dir = join(work, node.name);
    const bin = join(dir, 'bin');
    const netd = join(dir, 'net.d');
    const setup = await run([process.execPath, WEAVE_CLI, 'setup-cni', '--bin-dir', bin, '--conf-dir', netd, '--socket', oc.socketPath(node)]);
    t.equal(setup.code, 0, `setup-cni: ${setup.stderr}`);
    t.same(setup.stdout.trim().split('\n'), [`installed ${bin}/weave-net`, `wrote ${netd}/10-weave.conflist`]);
    copyFileSync(PORTMAP, join(bin, 'portmap'));
    const conf = join(dir, 'containers.conf');
    writeFileSync(conf, [
      '[containers]', 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]', 'log_driver = "k8s-file"',
      '[engine]', 'runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', `tmp_dir = "${dir}/tmp"`,
      '[network]', 'network_backend = "cni"', `cni_plugin_dirs = ["${bin}"]`, `network_config_dir = "${netd}"`, '',
    ].join('\n'));
    const env = { ...process.env, CONTAINERS_CONF: conf };
    const base = ['nsenter', `--net=${node.path}`, 'podman', '--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'overlay'];
    podman.set(node, (args, timeoutMs) => run([...base, ...args], env, timeoutMs));
  }
  const pm = (node: ClusterNode, ...args: string[]): Promise<Run> => podman.get(node)!(args);
  const ok = async (node: ClusterNode, ...args: string[]): Promise<string> => {
    const r = await pm(node, ...args);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  const owned = async (node: ClusterNode): Promise<string[]> =>
    (JSON.parse((await oc.call(node, 'GET', '/ip')).body) as { owned: { containerid: string }[] }).owned.map((o) => o.containerid).filter((id) => id !== 'weave:expose');
  const podVeths = async (node: ClusterNode): Promise<string[]> => (await node.links()).map((l) => l.ifname).filter((n) => n.startsWith('vethwepl'));
  const runArgs = ['--network', 'weave', '--rootfs', `${rootfs}:O`];
  const addressOf = async (node: ClusterNode, name: string): Promise<string> => {
    const out = await ok(node, 'exec', name, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0');
    const m = /inet (10\.\d+\.\d+\.\d+)\/12/.exec(out);
    if (!m) throw new Error(`no 10.x/12 address on eth0 of ${name}: ${out}`);
    return m[1]!;
  };

  await t.test('containers on two nodes ping each other', async (t) => {
    const id1 = await ok(n1, 'run', '-d', '--name', 'c1', ...runArgs, 'sleep', '600');
    const id2 = await ok(n2, 'run', '-d', '--name', 'c2', ...runArgs, 'sleep', '600');
    const ip1 = await addressOf(n1, 'c1');
    const ip2 = await addressOf(n2, 'c2');
    t.ok((await podVeths(n1)).includes(`vethwepl${id1.slice(0, 7)}`), 'c1 has its veth on node 1');
    t.same(await owned(n1), [id1], 'node 1 holds one address, for c1\'s container id');
    const p12 = await ok(n1, 'exec', 'c1', 'ping', '-c', '3', '-W', '2', ip2);
    t.match(p12, /3 packets received/, `c1 (${ip1}) -> c2 (${ip2})`);
    const p21 = await ok(n2, 'exec', 'c2', 'ping', '-c', '3', '-W', '2', ip1);
    t.match(p21, /3 packets received/, 'c2 -> c1');
    t.match(await oc.weave(n2, 'ps'), new RegExp(`^${id2.slice(0, 12)} [0-9a-f:]{17} ${ip2.replaceAll('.', '\\.')}/12$`, 'm'), 'weave ps on node 2');

    await ok(n1, 'rm', '-f', '-t', '0', 'c1');
    t.same(await podVeths(n1), [], 'podman rm removed the veth');
    t.same(await owned(n1), [], 'and freed the address');
    await ok(n2, 'rm', '-f', '-t', '0', 'c2');
    t.same(await owned(n2), []);
  });

  await t.test(`${CYCLES} run/rm cycles leave no address, veth or file behind`, async (t) => {
    const started = Date.now();
    for (let i = 0; i < CYCLES; i++) {
      const out = await ok(n1, 'run', '--rm', ...runArgs, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0');
      if (!/inet 10\.\d+\.\d+\.\d+\/12/.test(out)) throw new Error(`cycle ${i}: no address on eth0: ${out}`);
    }
    t.comment(`${CYCLES} cycles in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.same(await owned(n1), [], 'no address held');
    t.same(await podVeths(n1), [], 'no veth left');
    t.same((await oc.weave(n1, 'ps')).split('\n').filter((l) => l !== '' && !l.startsWith('weave:expose ')), [], 'no attachment recorded');
    const pending = pendingReleaseDir(oc.socketPath(n1));
    t.same(existsSync(pending) ? readdirSync(pending) : [], [], 'no pending release file');
    t.same(recordsOnDisk(`${oc.dbPrefix(n1)}cni.json`), [], 'no attachment on disk');
    t.same(await ok(n1, 'ps', '-a', '-q'), '', 'podman has no containers left');
  });
});
