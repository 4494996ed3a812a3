// IPAM benchmarks with real daemons on loopback addresses:
//   1. allocations per second through the HTTP API, every answer durable (fsync + rename), with
//      the disk's own rate of such atomic writes measured in the same run as the reference;
//   2. time from starting N peers together (consensus=N) to every one of them being ready.
// Run: node dist/bench/ipam.bench.js [--runs 3] [--peers 3,10,50] [--allocations 3000]
import { spawn, type ChildProcess } from 'node:child_process';
import { request, Agent } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, formatSummary } from './lib/stats.js';

const WEAVER = fileURLToPath(new URL('../src/daemon/main.js', import.meta.url));
const runs = Number(arg('runs', '3'));
const peerCounts = arg('peers', '3,10,50').split(',').map(Number);
const allocations = Number(arg('allocations', '3000'));
const state = mkdtempSync(join(tmpdir(), 'weft-bench-ipam-'));
const procs: ChildProcess[] = [];

function name(i: number, j: number): string {
  return `02:be:00:00:${i.toString(16).padStart(2, '0')}:${j.toString(16).padStart(2, '0')}`;
}

function startDaemon(ip: string, peerName: string, args: string[], onLine?: (line: string) => void): ChildProcess {
  const p = spawn(process.execPath, [WEAVER, '--no-bridge', '--name', peerName, '--host', ip, '--http-addr', `${ip}:6784`, '--metrics-addr', '',
    '--log-format', 'json', '--db-prefix', join(state, `${ip}-`), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let partial = '';
  p.stdout!.setEncoding('utf8').on('data', (c: string) => {
    const lines = (partial + c).split('\n');
    partial = lines.pop() ?? '';
    if (onLine) for (const l of lines) onLine(l);
  });
  procs.push(p);
  return p;
}

async function stopAll(): Promise<void> {
  await Promise.all(procs.splice(0).map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  })));
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });
function post(host: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: 6784, path, method: 'POST', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The reference: how many atomic durable replacements of a ~100 KB file the disk does per second. */
async function durableWritesPerSecond(): Promise<number> {
  const path = join(state, 'ref.json');
  const text = 'x'.repeat(100_000);
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < 2000) {
    const f = await open(`${path}.tmp`, 'w');
    await f.writeFile(text);
    await f.sync();
    await f.close();
    await rename(`${path}.tmp`, path);
    const d = await open(state, 'r');
    await d.sync();
    await d.close();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

async function allocationRate(run: number, concurrency: number): Promise<number> {
  const ip = `127.0.16.${run * 10 + concurrency % 10 + 1}`;
  const me = name(0xaa, run * 10 + concurrency % 10);
  let readyFlag = false;
  startDaemon(ip, me, ['--ipalloc-init', `seed=${me}`], (l) => {
    if (l.includes('Listening for HTTP')) readyFlag = true;
  });
  await until(() => readyFlag, 10_000);
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < allocations) {
      const id = `c${next++}`;
      const status = await post(ip, `/ip/${id}`);
      if (status !== 200) throw new Error(`allocation answered ${status}`);
    }
  }));
  const rate = allocations / ((performance.now() - start) / 1000);
  await stopAll();
  return rate;
}

let launch = 0;

async function timeToReady(n: number, run: number): Promise<{ all: number; afterLastUp: number }> {
  // Fresh addresses and state for every launch, so nothing is restored from an earlier one.
  const net = 20 + launch++;
  const readyAt = new Array<number>(n).fill(0);
  const upAt = new Array<number>(n).fill(0);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const ip = `127.0.${net}.${i + 1}`;
    startDaemon(ip, name(net, i + 1), ['--ipalloc-init', `consensus=${n}`, ...(i === 0 ? [] : [`127.0.${net}.1`])], (l) => {
      if (l.includes('Listening for HTTP') && upAt[i] === 0) upAt[i] = performance.now() - t0;
      if ((l.includes('IP range divided evenly') || l.includes('adopted the ring')) && readyAt[i] === 0) readyAt[i] = performance.now() - t0;
    });
  }
  await until(() => readyAt.every((x) => x > 0), 120_000);
  await stopAll();
  const all = Math.max(...readyAt);
  return { all, afterLastUp: all - Math.max(...upAt) };
}

async function main(): Promise<void> {
  process.on('exit', () => {
    for (const p of procs) p.kill('SIGKILL');
    rmSync(state, { recursive: true, force: true });
  });
  console.log(`IPAM benchmark: ${runs} runs each, min / median / max`);
  const ref: number[] = [];
  for (let r = 0; r < runs; r++) ref.push(await durableWritesPerSecond());
  console.log(`reference: durable atomic file replacements per second (100 KB, fsync file + dir): ${formatSummary(ref)}`);
  for (const concurrency of [1, 16, 64]) {
    const rates: number[] = [];
    for (let r = 0; r < runs; r++) rates.push(await allocationRate(r, concurrency));
    const medianRef = [...ref].sort((a, b) => a - b)[Math.floor(ref.length / 2)]!;
    console.log(`allocations/s through HTTP, durable, ${allocations} allocations, ${String(concurrency).padStart(2)} clients: ${formatSummary(rates)}  (median ${(rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)]! / medianRef).toFixed(1)} x the reference write rate; goal >= 2000/s)`);
  }
  for (const n of peerCounts) {
    const all: number[] = [];
    const after: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t = await timeToReady(n, r);
      all.push(t.all / 1000);
      after.push(t.afterLastUp / 1000);
    }
    console.log(`${String(n).padStart(3)} peers started together, consensus=${n}: spawn -> all ready ${formatSummary(all, 2)} s; last API up -> all ready ${formatSummary(after, 2)} s (goal < 3 s for 50)`);
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(`benchmark failed: ${(err as Error).message}`);
  process.exit(1);
});
