// Pod-to-pod data path benchmark (issue 4's bench/ goal). Run as root (network namespaces):
//
//   node dist/bench/dataplane.bench.js [--runs 3] [--seconds 10] [--configs routed,vxlan,plain,encrypted,fastdp]
//        [--gso-compare] [--max-background PCT [--quiet-timeout 60]]
//
// Four paths between two pods on two node namespaces, all built in this run on one underlay:
//   kernel routed   pods on a bridge per node, plain L3 routes between the nodes (the limit)
//   kernel VXLAN    pods on one L2 segment over a kernel vxlan device (the kernel's own overlay)
//   weft plain      real weaver daemons (bridge weave, TAP, sleeve), pods with IPAM addresses
//   weft encrypted  the same with a password on both daemons
//   weft fastdp     the same without a password and with the kernel VXLAN fast path (UDP 6784),
//                   which `weft plain` runs without (--no-fastdp), so that it measures the sleeve
// For each, --runs rounds of: ping idle (50 × 10 ms), then iperf3 TCP single stream for --seconds
// with a ping every 20 ms alongside (RTT under load), daemon CPU (utime+stime of both daemons
// over the iperf3 run) and the drop counters of both nodes. Rounds interleave the configurations
// (in a rotating order), so that a change in the machine's background load hits them all alike.
// weft pods get gso_max_size 62000 on both ends of their veths (DESIGN §6), as the CNI plugin
// will set; --gso-compare adds the weft paths with the veth default (65536) as well.
// Prints min/median/max per configuration, then the ratios with the issue's goals beside them.
// The machine may be shared: each run also says how much CPU other people's processes took during
// it (and, with --max-background, waits for them to stay below PCT % of a core first).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LocalCluster } from '../src/cluster/cluster.js';
import { exec } from '../src/cluster/exec.js';
import { listNetns, sweep } from '../src/cluster/netns.js';
import type { NetnsHandle } from '../src/cluster/netns-handle.js';
import type { PingStats } from '../src/cluster/ping.js';
import { arg, summary } from './lib/stats.js';
import { iperfTcp, startIperfServer, type IperfRun } from './lib/iperf.js';
import { busyFraction, loadAverage, machineCpu, netnsInode, othersCpu, processCpuSeconds, sampleProcesses, type ProcessSample } from './lib/proc-cpu.js';
import { dsackSegments, grown, readCounters, type Counters } from './lib/node-counters.js';
import { checkPath, setGsoMaxSize, type PodPair } from './lib/pod-pair.js';
import { kernelRouted, kernelVxlan, VXLAN_MTU } from './lib/kernel-paths.js';
import { weftPair, WEFT_MTU } from './lib/weft-pair.js';

const WEFT_PREFIX = 'wtb';
const KERNEL_PREFIX = 'wtk';
const POD_GSO_MAX_SIZE = 62_000;
const VETH_DEFAULT_GSO_MAX_SIZE = 65_536;

const RUNS = Number(arg('runs', '3'));
const SECONDS = Number(arg('seconds', '10'));
const SELECTED = new Set(arg('configs', 'routed,vxlan,plain,encrypted,fastdp').split(','));
const GSO_COMPARE = process.argv.includes('--gso-compare');
/** Before each run, wait (up to --quiet-timeout s) until others' processes take at most this % of one core. */
const MAX_BACKGROUND = Number(arg('max-background', 'Infinity'));
const QUIET_TIMEOUT_S = Number(arg('quiet-timeout', '60'));
if (!(Number.isInteger(RUNS) && RUNS >= 1 && SECONDS >= 1)) throw new RangeError('want --runs >= 1 and --seconds >= 1');

type ConfigKey = 'routed' | 'vxlan' | 'plain' | 'encrypted' | 'fastdp' | 'plain-nocap' | 'encrypted-nocap' | 'fastdp-nocap';

interface Config {
  readonly key: ConfigKey;
  readonly label: string;
  /** The pair, or why it could not be built. */
  pair?: PodPair;
  error?: string;
  /** gso_max_size set on the pods' veths before each run (weft only). */
  readonly gso?: number;
  readonly runs: RunResult[];
}

interface RunResult {
  readonly iperf: IperfRun;
  /** Segments the receiver reported as duplicates (D-SACK): retransmissions of reordered, not lost, data. */
  readonly dsack: number;
  readonly idle: PingStats;
  readonly load: PingStats | undefined;
  /** CPU-seconds of each daemon over the iperf3 run (client side, server side). */
  readonly daemonCpu: readonly number[];
  readonly wallS: number;
  /** How busy the machine was during the iperf3 run, all cores together (0..1). */
  readonly machineBusy: number;
  /** CPU others' processes took during the run, % of one core, and the busiest of them. */
  readonly others: number;
  readonly othersWho: string;
  /** The same in the second before the run (our paths idle). */
  readonly background: number;
  readonly backgroundWho: string;
  readonly drops: readonly string[];
}

const LABEL_WIDTH = 26;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const f = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const gbps = (r: RunResult): number => r.iperf.bitsPerSecond / 1e9;
const median = (xs: readonly number[]): number => (xs.length === 0 ? NaN : summary(xs).median);

/** Set by SIGINT/SIGTERM: measuring stops at the next step while the cleanup runs. */
let interrupted = false;
function stopIfInterrupted(): void {
  if (interrupted) throw new Error('interrupted');
}

/** Whether a process is ours: this benchmark, or anything inside one of our namespaces. */
let ours: (pid: number, p: ProcessSample) => boolean = (pid) => pid === process.pid;

/**
 * One second with our paths idle: how much CPU others' processes take (% of one core), and whose.
 * Repeated while above --max-background, for up to --quiet-timeout s.
 */
async function background(): Promise<{ percent: number; who: string }> {
  const deadline = performance.now() + QUIET_TIMEOUT_S * 1000;
  for (;;) {
    const before = sampleProcesses();
    const start = performance.now();
    await sleep(1000);
    const others = othersCpu(before, sampleProcesses(), ours);
    const percent = (others.seconds / ((performance.now() - start) / 1000)) * 100;
    if (percent <= MAX_BACKGROUND || performance.now() > deadline) return { percent, who: others.who };
  }
}

/** The namespaces whose drop counters a run reads: the pods, their nodes and the underlay between them. */
function counted(pair: PodPair): NetnsHandle[] {
  return [pair.client, pair.nodes[0], pair.underlay, pair.nodes[1], pair.server];
}

async function readAllCounters(pair: PodPair): Promise<Counters[]> {
  return Promise.all(counted(pair).map((n) => readCounters(n)));
}

async function measure(config: Config, seconds: number, withPings: boolean): Promise<RunResult> {
  const pair = config.pair!;
  if (config.gso !== undefined) await setGsoMaxSize([pair.client, pair.server], config.gso);
  const bg = withPings ? await background() : { percent: NaN, who: '' };
  const idle = await pair.client.ping(pair.serverIp, { count: withPings ? 50 : 3, intervalS: 0.01, waitS: 1 });
  const countersBefore = await readAllCounters(pair);
  const dsackBefore = await dsackSegments(pair.client);
  const pids = pair.daemons.map((d) => d.pid ?? -1);
  const cpuBefore = pids.map((p) => processCpuSeconds(p) ?? NaN);
  const machineBefore = machineCpu();
  const procsBefore = sampleProcesses();
  const start = performance.now();
  // Pings start half a second in and stop before the end, so that all of them meet a full pipe.
  const pingCount = Math.floor((seconds - 1) / 0.02);
  const [iperf, load] = await Promise.all([
    iperfTcp(pair.client, pair.serverIp, seconds),
    withPings && pingCount > 0
      ? sleep(500).then(() => pair.client.ping(pair.serverIp, { count: pingCount, intervalS: 0.02, waitS: 1 }))
      : Promise.resolve(undefined),
  ]);
  const wallS = (performance.now() - start) / 1000;
  const machineBusy = busyFraction(machineBefore, machineCpu());
  const others = othersCpu(procsBefore, sampleProcesses(), ours);
  const daemonCpu = pids.map((p, i) => (processCpuSeconds(p) ?? NaN) - cpuBefore[i]!);
  const countersAfter = await readAllCounters(pair);
  const drops = counted(pair).flatMap((n, i) => grown(n.ns, countersBefore[i]!, countersAfter[i]!));
  const dsack = (await dsackSegments(pair.client)) - dsackBefore;
  return { iperf, dsack, idle, load, daemonCpu, wallS, machineBusy, others: (others.seconds / wallS) * 100, othersWho: others.who, background: bg.percent, backgroundWho: bg.who, drops };
}

function describeRun(config: Config, r: RunResult, round: number): string {
  const cpu = r.daemonCpu.length === 0 ? '' : `  daemons ${r.daemonCpu.map((c) => f((c / r.wallS) * 100, 0)).join('+')} % core`;
  const load = r.load?.rtt ? `load RTT ${f(r.load.rtt.avgMs, 3)}/${f(r.load.rtt.maxMs, 2)} ms (${r.load.received}/${r.load.transmitted})` : 'load RTT -';
  return `  [${round}] ${config.label.padEnd(LABEL_WIDTH)} ${f(gbps(r), 2).padStart(6)} Gbit/s  retr ${String(r.iperf.retransmits).padStart(5)} (dsack ${r.dsack})  ` +
    `idle RTT ${f(r.idle.rtt?.avgMs ?? NaN, 3)} ms  ${load}${cpu}  machine ${f(r.machineBusy * 100, 0)} %  ` +
    `others ${f(r.background, 0)} % before, ${f(r.others, 0)} % during${r.othersWho ? ` (${r.othersWho})` : ''}` +
    (r.drops.length > 0 ? `\n      drops: ${r.drops.join(', ')}` : '');
}

interface Row {
  readonly gbps: { min: number; median: number; max: number };
  readonly idleRtt: number;
  readonly loadAvg: number;
  readonly loadMax: number;
}

function row(config: Config): Row | undefined {
  if (config.runs.length === 0) return undefined;
  const rtts = (get: (r: RunResult) => number | undefined): number[] => config.runs.map(get).filter((x): x is number => x !== undefined);
  return {
    gbps: summary(config.runs.map(gbps)),
    idleRtt: median(rtts((r) => r.idle.rtt?.avgMs)),
    loadAvg: median(rtts((r) => r.load?.rtt?.avgMs)),
    loadMax: Math.max(...rtts((r) => r.load?.rtt?.maxMs)),
  };
}

function printTable(configs: readonly Config[]): void {
  console.log(`\nPod to pod, iperf3 TCP single stream, ${RUNS} × ${SECONDS} s; RTT: ping idle 50 × 10 ms, under load every 20 ms`);
  console.log(
    `${'config'.padEnd(LABEL_WIDTH)} ${'Gbit/s min/med/max'.padEnd(20)} ${'retr med'.padStart(8)} ${'idle RTT'.padStart(9)} ${'load RTT avg/max'.padStart(17)} ` +
      `${'daemon CPU %'.padStart(13)} ${'CPU-s/Gbit'.padStart(10)} ${'machine %'.padStart(9)} ${'others %'.padStart(8)}`,
  );
  for (const c of configs) {
    const r = row(c);
    if (!r) {
      console.log(`${c.label.padEnd(LABEL_WIDTH)} FAILED: ${c.error ?? 'no runs'}`);
      continue;
    }
    const retr = median(c.runs.map((x) => x.iperf.retransmits));
    const weft = (c.pair?.daemons.length ?? 0) > 0;
    // Daemon CPU: per side, as % of one core over the run (median of runs); per Gbit: both daemons' CPU-seconds per Gbit moved.
    const sides = weft ? [0, 1].map((i) => f(median(c.runs.map((x) => ((x.daemonCpu[i] ?? NaN) / x.wallS) * 100)), 0)).join('+') : '-';
    const perGbit = weft ? f(median(c.runs.map((x) => x.daemonCpu.reduce((a, b) => a + b, 0) / ((x.iperf.bytesReceived * 8) / 1e9))), 3) : '-';
    console.log(
      `${c.label.padEnd(LABEL_WIDTH)} ${`${f(r.gbps.min, 2)} / ${f(r.gbps.median, 2)} / ${f(r.gbps.max, 2)}`.padEnd(20)} ${f(retr, 0).padStart(8)} ` +
        `${`${f(r.idleRtt, 3)} ms`.padStart(9)} ${`${f(r.loadAvg, 3)} / ${f(r.loadMax, 2)} ms`.padStart(17)} ${sides.padStart(13)} ${perGbit.padStart(10)} ` +
        `${f(median(c.runs.map((x) => x.machineBusy * 100)), 0).padStart(9)} ${f(median(c.runs.map((x) => x.others)), 0).padStart(8)}`,
    );
  }
  console.log('(daemon CPU %: client side + server side, % of one core; CPU-s/Gbit: both daemons; machine %: both cores busy during the runs; others %: CPU of other people\'s processes during the runs, % of one core; all medians)');
}

function printGoals(configs: readonly Config[]): void {
  const by = (key: ConfigKey): Row | undefined => {
    const c = configs.find((x) => x.key === key);
    return c ? row(c) : undefined;
  };
  const routed = by('routed');
  const vxlan = by('vxlan');
  const lines: [string, number | undefined, string, ((v: number) => boolean) | undefined][] = [];
  const ratio = (a: Row | undefined, b: Row | undefined): number | undefined => (a && b ? a.gbps.median / b.gbps.median : undefined);
  for (const [key, name, goal] of [['plain', 'weft plain', 0.3], ['encrypted', 'weft encrypted', 0.2]] as const) {
    const r = by(key);
    lines.push([`${name} / kernel routed`, ratio(r, routed), `>= ${goal.toFixed(2)}`, (v) => v >= goal]);
  }
  lines.push(['weft plain / kernel VXLAN', ratio(by('plain'), vxlan), '(no goal)', undefined]);
  lines.push(['weft fastdp / kernel VXLAN', ratio(by('fastdp'), vxlan), '>= 0.90', (v) => v >= 0.9]);
  const fastdp = by('fastdp');
  const rttDiffUs = fastdp && vxlan ? (fastdp.idleRtt - vxlan.idleRtt) * 1000 : undefined;
  lines.push(['weft fastdp idle RTT - kernel VXLAN (us)', rttDiffUs, '<= 20 us', (v) => v <= 20]);
  lines.push(['weft encrypted / kernel VXLAN', ratio(by('encrypted'), vxlan), '(no goal)', undefined]);
  if (GSO_COMPARE) {
    lines.push(['weft plain, no cap / capped', ratio(by('plain-nocap'), by('plain')), '(gso_max_size 65536 vs 62000)', undefined]);
    lines.push(['weft encr., no cap / capped', ratio(by('encrypted-nocap'), by('encrypted')), '(gso_max_size 65536 vs 62000)', undefined]);
  }
  for (const [key, name] of [['plain', 'weft plain'], ['encrypted', 'weft encrypted']] as const) {
    const r = by(key);
    lines.push([`${name} idle RTT (ms)`, r?.idleRtt, '<= 0.3 ms', (v) => v <= 0.3]);
    lines.push([`${name} RTT under load, avg (ms)`, r?.loadAvg, '<= 2 ms', (v) => v <= 2]);
    lines.push([`${name} RTT under load, max (ms)`, r?.loadMax, '(no goal)', undefined]);
  }
  console.log('\nGoals (medians of this run):');
  for (const [what, value, goal, met] of lines) {
    const verdict = value === undefined || !Number.isFinite(value) ? 'not measured' : met === undefined ? '' : met(value) ? 'met' : 'MISSED';
    console.log(`  ${what.padEnd(40)} ${(value === undefined ? '-' : f(value, 3)).padStart(7)}   ${goal.padEnd(30)} ${verdict}`);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark makes network namespaces');
  const iperfVersion = (await exec(null, ['iperf3', '--version'])).stdout.split('\n')[0] ?? '?';
  const kernel = (await exec(null, ['uname', '-r'])).stdout.trim();
  console.log(`weft data path benchmark: node ${process.version}, kernel ${kernel}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${iperfVersion}`);
  console.log(`load average at start: ${loadAverage()}`);
  console.log(`command: node ${process.argv.slice(1).join(' ')}`);
  for (const prefix of [WEFT_PREFIX, KERNEL_PREFIX]) {
    const left = await sweep(prefix);
    if (left.length > 0) console.log(`removed leftovers of an earlier run: ${left.join(', ')}`);
  }

  const stateDir = mkdtempSync(join(tmpdir(), 'weft-bench-dp-'));
  const clusters: LocalCluster[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      await Promise.allSettled(clusters.map((c) => c.destroy()));
      await Promise.allSettled([sweep(WEFT_PREFIX), sweep(KERNEL_PREFIX)]);
      rmSync(stateDir, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      console.error(`\n${signal}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  const configs: Config[] = [];
  const add = (key: ConfigKey, label: string, gso?: number): Config => {
    const c: Config = { key, label, runs: [], ...(gso === undefined ? {} : { gso }) };
    configs.push(c);
    return c;
  };
  try {
    const wantKernel = SELECTED.has('routed') || SELECTED.has('vxlan');
    const wantWeft = SELECTED.has('plain') || SELECTED.has('encrypted') || SELECTED.has('fastdp');
    const setupStart = performance.now();
    if (wantKernel) {
      const kernelCluster = await LocalCluster.create({ prefix: KERNEL_PREFIX, nodes: 2, underlaySubnet: '172.31.41.0/24' });
      clusters.push(kernelCluster);
      for (const [key, label, build] of [
        ['routed', 'kernel routed', kernelRouted],
        ['vxlan', `kernel VXLAN (mtu ${VXLAN_MTU})`, kernelVxlan],
      ] as const) {
        if (!SELECTED.has(key)) continue;
        const c = add(key, label);
        try {
          c.pair = await build(kernelCluster);
        } catch (err) {
          c.error = (err as Error).message;
        }
      }
    }
    if (wantWeft) {
      // The meshes in one cluster: nodes 1-2 plain (sleeve), 3-4 encrypted, 5-6 fastdp; each daemon dials only its partner.
      const weftCluster = await LocalCluster.create({ prefix: WEFT_PREFIX, nodes: 6, underlaySubnet: '172.31.40.0/24' });
      clusters.push(weftCluster);
      for (const [key, label, nodes, password, path] of [
        ['plain', 'weft plain', [1, 2], undefined, 'sleeve'],
        ['encrypted', 'weft encrypted', [3, 4], randomBytes(16).toString('hex'), 'sleeve'],
        ['fastdp', 'weft fastdp', [5, 6], undefined, 'fastdp'],
      ] as const) {
        if (!SELECTED.has(key)) continue;
        const c = add(key, label, POD_GSO_MAX_SIZE);
        const nocap = GSO_COMPARE ? add(`${key}-nocap`, `${label}, gso 65536`, VETH_DEFAULT_GSO_MAX_SIZE) : undefined;
        try {
          const pair = await weftPair(weftCluster, [weftCluster.node(nodes[0]), weftCluster.node(nodes[1])], {
            stateDir, tag: nodes[0], path, ...(password === undefined ? {} : { password }),
          });
          const encrypted = /Encryption:\s+enabled/.test(pair.status);
          if (encrypted !== (password !== undefined)) throw new Error(`weave status says encryption is ${encrypted ? 'on' : 'off'}:\n${pair.status}`);
          console.log(`${label}: ${pair.connections.split('\n').find((l) => l.includes('established')) ?? pair.connections}`);
          c.pair = pair;
          if (nocap) nocap.pair = pair;
        } catch (err) {
          c.error = (err as Error).message;
          if (nocap) nocap.error = c.error;
        }
      }
    }
    const ourNetns = new Set(clusters.flatMap((c) => c.namespaces).map(netnsInode));
    ours = (pid, p) => pid === process.pid || (p.netns !== undefined && ourNetns.has(p.netns));
    console.log(`pod MTU: kernel routed 1500, kernel VXLAN ${VXLAN_MTU}, weft ${WEFT_MTU}; setup took ${f((performance.now() - setupStart) / 1000, 1)} s`);

    const serving = new Set<PodPair>(); // the gso variants share their pair, and its iperf3 server
    for (const c of configs) {
      if (!c.pair) continue;
      try {
        if (!serving.has(c.pair)) {
          await checkPath(c.pair, c.label);
          await startIperfServer(c.pair.server, c.pair.serverIp);
          serving.add(c.pair);
        }
        await measure(c, 1, false); // warm-up: ARP, MAC learning, the daemons' JIT
      } catch (err) {
        c.error = (err as Error).message;
        delete c.pair;
      }
    }
    stopIfInterrupted();
    for (const c of configs) if (c.error) console.log(`${c.label}: FAILED: ${c.error}`);

    const live = configs.filter((c) => c.pair);
    for (let round = 0; round < RUNS; round++) {
      // A rotating order, so that no configuration always runs first (or last) in a round.
      for (let k = 0; k < live.length; k++) {
        const c = live[(round + k) % live.length]!;
        stopIfInterrupted();
        try {
          const r = await measure(c, SECONDS, true);
          c.runs.push(r);
          console.log(describeRun(c, r, round + 1));
        } catch (err) {
          stopIfInterrupted();
          console.log(`  [${round + 1}] ${c.label}: run failed: ${(err as Error).message}`);
        }
      }
    }
    stopIfInterrupted();
    printTable(configs);
    printGoals(configs);
    console.log(`\nload average at end: ${loadAverage()}`);
  } finally {
    await cleanup();
    const left = (await listNetns()).filter((ns) => ns.startsWith(`${WEFT_PREFIX}-`) || ns.startsWith(`${KERNEL_PREFIX}-`));
    if (left.length > 0) console.error(`namespaces left behind: ${left.join(', ')}`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (interrupted) return; // the signal handler exits once the cleanup is done
    console.error(err);
    process.exit(1);
  },
);
