// Status never blocks (pain #9; DESIGN §3): every status, report, ps, metrics and /ip answer of
// a quiet loopback daemon comes within 100 ms while IPAM waits for a consensus that cannot come
// with a thousand allocations waiting on it, and while a dead peer's ranges are being reclaimed.
// The only timed assertion of the test suite: each request is timed on its own, and the largest
// must stay under 100 ms (see measure() for how machine noise is told from a daemon that waits). (Not covered: the moment a burst of a thousand new requests is being
// parsed; the one event loop serves them in arrival order, and status waits its turn.)
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setPriority } from 'node:os';
import { Weaver, waitFor, nameForIp } from '../lib/weaver.js';

const ip = (n: number): string => `127.0.81.${n}`;
const FLOOD = fileURLToPath(new URL('../lib/http-flood.js', import.meta.url));
const LIMIT_MS = 100;
const RETRIES_OVER_LIMIT = 2;
const READ_PATHS = ['/status', '/status/targets', '/status/connections', '/status/peers', '/status/ipam', '/report', '/ps', '/metrics', '/ip'];
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** One GET, timed from the request to the last byte of the answer. */
function timedGet(addr: string, path: string): Promise<{ status: number; body: string; ms: number }> {
  const [host, port] = addr.split(':') as [string, string];
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - start }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path}: no answer in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Every read path on both of the daemon's addresses, `rounds` times (or until `until`); returns the slowest. */
async function measure(t: Test, w: Weaver, rounds: number, until?: () => boolean): Promise<{ max: number; path: string; count: number; retried: number }> {
  let retried = 0;
  let max = 0;
  let slowest = '';
  let count = 0;
  for (let round = 0; round < rounds || (until !== undefined && !until()); round++) {
    for (const addr of [w.httpAddr, `${w.ip}:6782`]) {
      for (const path of READ_PATHS) {
        // A request over the limit is asked again at once, up to twice, and the best try counts:
        // a daemon that waits on IPAM is slow every time while the condition lasts, while a
        // shared machine's scheduler only now and then stalls a process for tens of ms.
        let best = Infinity;
        for (let attempt = 0; attempt < RETRIES_OVER_LIMIT + 1 && best >= LIMIT_MS; attempt++) {
          if (attempt > 0) retried++;
          const r = await timedGet(addr, path);
          if (r.status !== 200) t.fail(`${addr}${path}: HTTP ${r.status} ${r.body}`);
          best = Math.min(best, r.ms);
        }
        count++;
        if (best > max) {
          max = best;
          slowest = `${addr}${path}`;
        }
      }
    }
  }
  return { max, path: slowest, count, retried };
}

/** Starts the flood process; resolves once its requests are all on the wire. */
async function flood(t: Test, addr: string, prefix: string, count: number): Promise<{ proc: ChildProcess; done: Promise<string> }> {
  const proc = spawn(process.execPath, [FLOOD, addr, 'POST', prefix, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    proc.kill('SIGKILL');
  });
  let out = '';
  let sent: () => void = () => undefined;
  const sentPromise = new Promise<void>((resolve) => (sent = resolve));
  const done = new Promise<string>((resolve) => {
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('sent\n')) sent();
      const m = /done (.*)\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', () => resolve(/done (.*)\n/.exec(out)?.[1] ?? `exited: ${out}`));
  });
  await sentPromise;
  return { proc, done };
}

t.teardown(() => agent.destroy());

/**
 * The daemon under test and this measuring process get a higher CPU priority than the rest of
 * the machine: on a shared, busy machine the scheduler alone can delay a process by tens of ms,
 * which says nothing about the daemon. What is measured stays the daemon's own latency.
 */
function prioritise(w: Weaver): void {
  setPriority(-10);
  setPriority(w.pid!, -10);
}

t.test('awaiting consensus with a thousand allocations waiting: status answers within 100 ms', async (t) => {
  const a = await Weaver.start(t, {
    ip: ip(1), nickname: 'lonely',
    args: ['--ipalloc-init', 'consensus=3', '--ipam-request-timeout', '120', '--ipalloc-range', '10.40.0.0/16'],
  });
  prioritise(a);
  await measure(t, a, 1); // warm-up: the first call of each path compiles it
  await flood(t, a.httpAddr, '/ip/pod-', 1000);
  const report = await waitFor('a thousand allocations pending', async () => {
    const r = JSON.parse((await timedGet(a.httpAddr, '/report')).body) as { IPAM: { Status: string; PendingAllocates: string[] } };
    return r.IPAM.PendingAllocates.length === 1000 ? r : undefined;
  });
  t.match(report.IPAM.Status, /^awaiting consensus \(quorum: 2, known: 1\)$/);
  const status = await a.cli(['status']);
  t.match(status.stdout, /\n {9}Status: awaiting consensus \(quorum: 2, known: 1\)\n/, 'weave status says what IPAM waits for');
  const r = await measure(t, a, 10);
  t.comment(`${r.count} requests (${r.retried} asked again), slowest ${r.max.toFixed(1)} ms (${r.path})`);
  t.ok(r.max < LIMIT_MS, `every answer within ${LIMIT_MS} ms (slowest ${r.max.toFixed(1)} ms: ${r.path})`);
  const metrics = (await timedGet(a.httpAddr, '/metrics')).body;
  t.match(metrics, /^weave_ipam_pending_allocates 1000$/m, 'the metrics count the waiting allocations');
});

t.test('a dead peer being reclaimed: status answers within 100 ms', async (t) => {
  const names = [ip(2), ip(3)].map(nameForIp);
  const init = ['--ipalloc-init', `seed=${names.join(',')}`, '--ipalloc-range', '10.41.0.0/16', '--heartbeat-interval', '1', '--gossip-interval', '1'];
  const a = await Weaver.start(t, { ip: ip(2), nickname: 'keeper', args: init });
  const b = await Weaver.start(t, { ip: ip(3), nickname: 'victim', args: init, peers: [a.address] });
  // Reachable in IPAM first: the mesh lists the victim as soon as its gossip arrives, but IPAM
  // hears that it is reachable a little later; a victim killed before that shows "unreachable!"
  // at once, and then reachable for a moment when the news of the connection catches up, which
  // is when rmpeer refused it (seen once in CI).
  await waitFor('victim reachable in IPAM', async () => {
    const body = (await a.get('/status/ipam')).body;
    return /\(victim\)/.test(body) && !/unreachable!/.test(body) ? true : undefined;
  });
  await b.kill();
  await waitFor('victim unreachable', async () => (/- unreachable!/.test((await a.get('/status/ipam')).body) ? true : undefined));
  prioritise(a);
  await measure(t, a, 1);

  let finished = false;
  const rmpeer = a.cli(['rmpeer', 'victim']).then((r) => {
    finished = true;
    return r;
  });
  const r = await measure(t, a, 3, () => finished);
  const taken = await rmpeer;
  t.equal(taken.code, 0, taken.stderr);
  t.match(taken.stdout, /^32768 IPs taken over from victim\n$/);
  t.comment(`${r.count} requests (${r.retried} asked again), slowest ${r.max.toFixed(1)} ms (${r.path})`);
  t.ok(r.max < LIMIT_MS, `every answer within ${LIMIT_MS} ms (slowest ${r.max.toFixed(1)} ms: ${r.path})`);
  t.match((await a.get('/status/ipam')).body, /^\S+\(keeper\) +65536 IPs \(100\.0% of total\) \(0 active\)\n$/);
});
