// How long one host command stalls the daemon's other thread (not run by `npm test`):
//
//   node dist/bench/spawn.bench.js [--runs 3] [--commands 40] [--mb 150]
//
// The daemon's TAP reader Worker carries every frame while the main thread runs ip, tc and
// iptables. A process of --mb MB (touched ballast, like the daemon's heap) runs a Worker that
// records the longest gap between iterations of a busy loop, and the main thread runs `true`
// --commands times, once through localRunner() (execFile: a fork of this whole process) and once
// through the Spawner (a fork of its small helper). Printed: the Worker's longest stall per
// command, median and 90th percentile, min / median / max over --runs runs, and the difference.
import { Worker } from 'node:worker_threads';
import { localRunner, type Runner } from '../src/dataplane/host/runner.js';
import { Spawner } from '../src/dataplane/host/spawner.js';
import { arg, formatSummary, summary } from './lib/stats.js';

const RUNS = Number(arg('runs', '3'));
const COMMANDS = Number(arg('commands', '40'));
const MB = Number(arg('mb', '150'));

// Touched, so that its pages are mapped and a fork has their page tables to copy.
const ballast = Array.from({ length: MB }, (_, i) => Buffer.alloc(1 << 20, i));

// [0]: the longest gap since the last reset, in ms; [1]: 1 asks the Worker to reset [0].
const shared = new Float64Array(new SharedArrayBuffer(16));
const worker = new Worker(
  `const { workerData } = require('node:worker_threads');
   const { performance } = require('node:perf_hooks');
   const w = new Float64Array(workerData);
   const buf = Buffer.alloc(8 << 20);
   let last = performance.now();
   for (let k = 0; ; k++) {
     const now = performance.now();
     if (now - last > w[0]) w[0] = now - last;
     last = now;
     buf[(k * 4096) % buf.length] = k; // writes, as a data path does: copy-on-write after a fork
     if (w[1] === 1) { w[0] = 0; w[1] = 0; }
   }`,
  { eval: true, workerData: shared.buffer },
);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The Worker's longest stall around each of COMMANDS runs of `true`. */
async function stalls(run: Runner): Promise<number[]> {
  await run(['true']); // a helper starts with its first command
  const out: number[] = [];
  for (let i = 0; i < COMMANDS; i++) {
    shared[1] = 1;
    await sleep(30);
    const quiet = shared[0]!;
    shared[1] = 1;
    await sleep(1);
    const r = await run(['true']);
    if (r.code !== 0) throw new Error(`true exited ${r.code}: ${r.stderr}`);
    await sleep(5);
    // What the command added over the loop's own noise just before it.
    out.push(Math.max(0, shared[0]! - quiet));
  }
  return out;
}

const p90 = (v: readonly number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length * 0.9)]!;
const spawner = new Spawner();
const ways = [
  { name: 'execFile (fork of this process)', run: localRunner(), median: [] as number[], p90: [] as number[] },
  { name: 'Spawner (fork of the helper)', run: spawner.run, median: [] as number[], p90: [] as number[] },
] as const;
for (let run = 0; run < RUNS; run++) {
  for (const way of ways) {
    const s = await stalls(way.run);
    way.median.push(summary(s).median);
    way.p90.push(p90(s));
  }
}
console.log(`process RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB (ballast ${ballast.length} MB); Worker stall per command, ms, min / median / max over ${RUNS} runs of ${COMMANDS} commands:`);
for (const way of ways) console.log(`  ${way.name.padEnd(32)} median ${formatSummary(way.median, 2)}   p90 ${formatSummary(way.p90, 2)}`);
const [fork, helper] = ways;
// A ratio means little when the helper's figure is ~0: the difference is what a frame in flight waits less.
console.log(`  a frame in flight waits ${(summary(fork.median).median - summary(helper.median).median).toFixed(2)} ms less per command (medians)`);
spawner.close();
await worker.terminate();
