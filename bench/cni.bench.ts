// CNI plugin benchmarks:
//   1. start-up: VERSION answered by the static C executable (dist/bin/weave-net) against the
//      reference Go plugin (`bridge`), with node's own start-up for scale (the plugin was a Node
//      executable before);
//   2. ADD and DEL latency through the same libcni driver (test/cni/driver), on a one-node local
//      cluster with a real daemon: weave-net against the reference `bridge` + `host-local`.
// Every figure is min / median / max of --count runs (20). Goal: weft ADD <= 2 x the reference.
// Run as root: node dist/bench/cni.bench.js [--count 20]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { OverlayCluster } from '../src/cluster/overlay-cluster.js';
import type { ClusterNode, Pod } from '../src/cluster/cluster.js';
import { PLUGIN_EXE, buildDriver, driver, writeConflist } from '../test/cni/driver/driver.js';
import { cniCall } from '../test/cni/daemon-socket.js';
import { arg, formatSummary, summary } from './lib/stats.js';

const count = Number(arg('count', '20'));
const REFERENCE_DIR = '/usr/lib/cni';
const cleanups: (() => unknown)[] = [];

function startupMs(argv: readonly string[]): number[] {
  const times: number[] = [];
  for (let i = 0; i < count + 2; i++) {
    const started = performance.now();
    const r = spawnSync(argv[0]!, argv.slice(1), { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}', encoding: 'utf8' });
    const ms = performance.now() - started;
    if (r.status !== 0 || !r.stdout.includes('supportedVersions')) throw new Error(`${argv.join(' ')} VERSION failed: ${r.stdout}${r.stderr}`);
    if (i >= 2) times.push(ms); // the first runs warm the page cache
  }
  return times;
}

async function latency(): Promise<void> {
  const exe = buildDriver({ teardown: (fn) => cleanups.push(fn) });
  const oc = await OverlayCluster.start({ prefix: 'wn8', nodes: 1, net: 58 }, (c) => cleanups.push(() => c.destroy()));
  const n1 = oc.nodes[0] as ClusterNode;
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-cni-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const weft = writeConflist(dir, 'weft', { cniVersion: '1.0.0', name: 'weave', plugins: [{ name: 'weave', type: 'weave-net', socket: oc.socketPath(n1) }] });
  const reference = writeConflist(dir, 'reference', {
    cniVersion: '1.0.0', name: 'refnet',
    plugins: [{ type: 'bridge', bridge: 'cniref0', isGateway: true, ipam: { type: 'host-local', subnet: '10.99.0.0/16', dataDir: join(dir, 'host-local') } }],
  });
  const pods = async (tag: string): Promise<Pod[]> => {
    const out: Pod[] = [];
    for (let i = 0; i < count; i++) out.push(await oc.cluster.addPodNamespace(n1, `${tag}${i}`));
    return out;
  };
  const run = async (conflist: string, tag: string) => {
    const ns = await pods(tag);
    const a = await driver(n1.ns, exe, 'bench', ['-conflist', conflist, '-path', `${dirname(PLUGIN_EXE)}:${REFERENCE_DIR}`, '-cache', join(dir, 'cache'),
      '-id', `${tag}x`, '-netns', ns.map((p) => p.path).join(',')]);
    if (!a.ok) throw new Error(`${tag}: ${a.error}`);
    return a;
  };
  // One warm-up ADD/DEL each (the daemon's first link work, the page cache), then the measured runs.
  await run(weft, 'ww');
  await run(reference, 'rw');
  const w = await run(weft, 'w');
  const r = await run(reference, 'r');
  // The executable's share: the same ADD and DEL sent straight over the daemon's socket, and by
  // the executable run directly (no libcni, the environment a runtime gives it), alternating pod
  // by pod so that both see the same load on this shared machine.
  const direct = { add: [] as number[], del: [] as number[] };
  const byExe = { add: [] as number[], del: [] as number[] };
  const [dPods, ePods] = [await pods('d'), await pods('e')];
  const socket = oc.socketPath(n1);
  const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'weave', type: 'weave-net', socket });
  const runExe = (command: string, id: string, netns: string): number => {
    const started = performance.now();
    const r = spawnSync(PLUGIN_EXE, [], { env: { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: dirname(PLUGIN_EXE) }, input: stdin, encoding: 'utf8' });
    const ms = performance.now() - started;
    if (r.status !== 0) throw new Error(`weave-net ${command}: ${r.stdout}${r.stderr}`);
    return ms;
  };
  // STATUS costs the daemon next to nothing: its time through the executable, against the same
  // route straight over the socket, is the executable's and the relay's own cost.
  const status = { exe: [] as number[], direct: [] as number[] };
  const statusStdin = JSON.stringify({ cniVersion: '1.1.0', name: 'weave', type: 'weave-net', socket });
  for (let i = 0; i < count; i++) {
    let started = performance.now();
    const r = spawnSync(PLUGIN_EXE, [], { env: { CNI_COMMAND: 'STATUS', CNI_PATH: dirname(PLUGIN_EXE) }, input: statusStdin, encoding: 'utf8' });
    status.exe.push(performance.now() - started);
    if (r.status !== 0) throw new Error(`weave-net STATUS: ${r.stdout}${r.stderr}`);
    started = performance.now();
    const a = await cniCall(socket, 'GET', '/cni/status');
    status.direct.push(performance.now() - started);
    if (a.status !== 200) throw new Error(`direct STATUS: ${JSON.stringify(a)}`);
  }
  for (const [i, p] of dPods.entries()) {
    const started = performance.now();
    const a = await cniCall(socket, 'POST', '/cni/add', { containerId: `${i}direct`, ifName: 'eth0', netns: p.path });
    direct.add.push(performance.now() - started);
    if (a.status !== 200) throw new Error(`direct ADD: ${JSON.stringify(a)}`);
    byExe.add.push(runExe('ADD', `${i}byexe`, ePods[i]!.path));
  }
  for (const [i, p] of ePods.entries()) {
    const started = performance.now();
    await cniCall(socket, 'POST', '/cni/del', { containerId: `${i}direct`, ifName: 'eth0' });
    direct.del.push(performance.now() - started);
    byExe.del.push(runExe('DEL', `${i}byexe`, p.path));
  }
  const ratio = summary(w.addMs!).median / summary(r.addMs!).median;
  console.log(`ADD ms, weft (weave-net -> daemon: IPAM + veth):       ${formatSummary(w.addMs!, 1)}`);
  console.log(`ADD ms, reference (bridge + host-local):               ${formatSummary(r.addMs!, 1)}`);
  console.log(`ADD ms, weft daemon alone (socket, no plugin start):    ${formatSummary(direct.add, 1)}`);
  console.log(`DEL ms, weft:                                          ${formatSummary(w.delMs!, 1)}`);
  console.log(`DEL ms, weft daemon alone:                             ${formatSummary(direct.del, 1)}`);
  console.log(`DEL ms, reference:                                     ${formatSummary(r.delMs!, 1)}`);
  console.log(`ADD ms, weave-net run directly (no libcni), same rounds:  ${formatSummary(byExe.add, 1)}`);
  console.log(`DEL ms, weave-net run directly (no libcni), same rounds:  ${formatSummary(byExe.del, 1)}`);
  console.log(`STATUS ms, weave-net (exec, relay, plugin logic in the daemon): ${formatSummary(status.exe, 2)}`);
  console.log(`STATUS ms, straight over the socket:                          ${formatSummary(status.direct, 2)}`);
  console.log(`the executable's and the relay's share of ADD (median, run directly - daemon alone): ${(summary(byExe.add).median - summary(direct.add).median).toFixed(1)} ms`);
  console.log(`weft ADD median / reference ADD median: ${ratio.toFixed(2)} (goal <= 2); DEL: ${(summary(w.delMs!).median / summary(r.delMs!).median).toFixed(2)}`);
}

async function main(): Promise<void> {
  console.log(`CNI plugin benchmark: ${count} runs each, min / median / max`);
  const exe = startupMs([PLUGIN_EXE]);
  const ref = startupMs([join(REFERENCE_DIR, 'bridge')]);
  const floor = startupMs([process.execPath, '-e', 'process.stdout.write("supportedVersions")']);
  console.log(`VERSION start-up ms, weave-net (static C, ${(statSync(PLUGIN_EXE).size / 1e3).toFixed(0)} kB): ${formatSummary(exe, 2)}`);
  console.log(`VERSION start-up ms, reference Go plugin (bridge):   ${formatSummary(ref, 2)}`);
  console.log(`start-up ms, node -e (node's own floor, for scale): ${formatSummary(floor, 2)}`);
  console.log(`weave-net / Go reference: ${(summary(exe).median / summary(ref).median).toFixed(2)}`);
  await latency();
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) await c();
}
