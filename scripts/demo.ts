// `npm run demo`: a local mesh of three weaver daemons on loopback addresses, what an operator
// sees of it, and a peer failure. Control plane only for now (the data path and pods in network
// namespaces join the demo as they land). Everything it starts is stopped on exit and on Ctrl-C.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const WEAVER = fileURLToPath(new URL('../src/daemon/main.js', import.meta.url));
const WEAVE = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
// All three run on this machine and so share its machine-id: each gets a name of its own.
const nodes = [1, 2, 3].map((n) => ({ nick: `node-${n}`, ip: `127.0.77.${n}`, name: `02:77:00:00:00:0${n}` }));
const procs = new Map<string, ChildProcess>();
const stateDir = mkdtempSync(join(tmpdir(), 'weft-demo-'));

function start(node: { nick: string; ip: string; name: string }, peers: string[]): void {
  const p = spawn(process.execPath, [WEAVER, '--no-bridge', '--name', node.name, '--host', node.ip, '--http-addr', `${node.ip}:6784`, '--metrics-addr', `${node.ip}:6782`,
    '--nickname', node.nick, '--log-format', 'json', '--ipalloc-init', 'consensus=3', '--db-prefix', join(stateDir, `${node.nick}-`), '--gossip-interval', '2', ...peers], { stdio: ['ignore', 'ignore', 'inherit'] });
  procs.set(node.nick, p);
}

function stopAll(): void {
  for (const p of procs.values()) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(stateDir, { recursive: true, force: true });
}

function weave(node: { ip: string }, ...args: string[]): string {
  return execFileSync(process.execPath, [WEAVE, ...args], { env: { ...process.env, WEAVE_HTTP_ADDR: `${node.ip}:6784` }, encoding: 'utf8' });
}

function peersSeen(node: { ip: string }): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: node.ip, port: 6784, path: '/report' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        try {
          resolve((JSON.parse(body) as { Router: { Peers: unknown[] } }).Router.Peers.length);
        } catch {
          resolve(0);
        }
      });
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const say = (text: string): void => void process.stdout.write(`\n### ${text}\n`);

async function main(): Promise<void> {
  process.on('SIGINT', () => {
    stopAll();
    process.exit(130);
  });
  process.on('exit', stopAll);
  const [n1, n2, n3] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
  say(`starting three peers: ${n1.nick} alone, ${n2.nick} and ${n3.nick} told only about ${n1.nick}`);
  start(n1, []);
  start(n2, [`${n1.ip}:6783`]);
  start(n3, [`${n1.ip}:6783`]);
  await until('every peer to know all three', async () => (await Promise.all(nodes.map(peersSeen))).every((n) => n === 3));

  say(`weave status on ${n3.nick}`);
  process.stdout.write(weave(n3, 'status'));
  say(`weave status connections on ${n3.nick} (it found ${n2.nick} through gossip)`);
  await until(`${n3.nick} to connect to ${n2.nick}`, async () => /\(node-2\)/.test(weave(n3, 'status', 'connections')));
  process.stdout.write(weave(n3, 'status', 'connections'));
  say(`weave status ipam on ${n1.nick}: 10.32.0.0/12 split evenly`);
  await until('the ring', async () => /ready/.test(weave(n1, 'status')));
  process.stdout.write(weave(n1, 'status', 'ipam'));
  say(`weave status peers on ${n1.nick}`);
  process.stdout.write(weave(n1, 'status', 'peers'));

  say(`kill -9 ${n2.nick}: the others notice and forget it`);
  procs.get(n2.nick)!.kill('SIGKILL');
  await until('node-2 to be forgotten', async () => (await peersSeen(n1)) === 2 && (await peersSeen(n3)) === 2);
  process.stdout.write(weave(n1, 'status', 'connections'));

  say(`restart ${n2.nick}: it rejoins`);
  start(n2, [`${n1.ip}:6783`]);
  await until('node-2 to rejoin', async () => (await Promise.all(nodes.map(peersSeen))).every((n) => n === 3), 30_000);
  process.stdout.write(weave(n1, 'status'));
  say('done; stopping the peers');
}

main().then(
  () => {
    stopAll();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    stopAll();
    process.exit(1);
  },
);
