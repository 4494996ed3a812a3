// The C executable's own work, run as a runtime runs it (src/cluster/cni-exec.ts): its JSON reader
// (agrees with JSON.parse on what is JSON, bounded in size and depth, finds "socket"), the request
// it relays, how it prints the daemon's answer (byte for byte, exit status, stderr line), and
// what it makes of daemons that answer nonsense, hang up or say nothing. The fake daemons are
// plain unix-socket servers that answer whatever the case needs.
import t from 'tap';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CNI_SOCKET, pendingReleaseDir, type CniAddResponse } from '../../src/api/cni-protocol.js';
import { runPlugin as runPluginLogic, type PluginIo } from '../../src/cni/plugin.js';
import { runPlugin } from './driver/driver.js';
import { startRelayDaemon } from './relay-daemon.js';

const ID = 'c0ffee1234';
const dir = mkdtempSync(join(tmpdir(), 'weft-native-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let sockets = 0;

/** A unix-socket server that hands each connection's request (once whole) to `answer`. */
async function fakeDaemon(t: Teardown, answer: (request: string, conn: Socket) => void): Promise<{ path: string; requests: string[] }> {
  const path = join(dir, `d${++sockets}.sock`);
  const requests: string[] = [];
  const conns = new Set<Socket>();
  const server = createServer((conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('error', () => undefined);
    let got = Buffer.alloc(0);
    conn.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      const text = got.toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text);
      if (end < 0 || !length || Buffer.byteLength(text.slice(end + 4)) < Number(length[1])) return;
      requests.push(text);
      answer(text, conn);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const c of conns) c.destroy();
    server.close(() => resolve());
  }));
  return { path, requests };
}
interface Teardown {
  teardown(fn: () => unknown): void;
}

const conf = (socket: string, o: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'weave', type: 'weave-net', socket, ...o });
const add = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: ID, CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' };

t.test('the relayed request, and the answer printed as it came', async (t) => {
  const d = await fakeDaemon(t, (_req, conn) => {
    // In pieces, to be read across several reads; the stderr line percent-encoded, with UTF-8.
    const body = '{"cniVersion":"1.0.0","x":"é"}\n';
    conn.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n');
    setTimeout(() => conn.write(`content-length: ${Buffer.byteLength(body)}\r\nWeave-Cni-Exit: 3\r\nWeave-Cni-Stderr: weave-net: caf%C3%A9 100%25\r\n\r\n${body.slice(0, 5)}`), 20);
    setTimeout(() => conn.end(body.slice(5)), 40);
  });
  const stdin = ` ${conf(d.path, { args: { note: 'tab\there, "quoted", back\\slash, ünïcode' } })}\n`;
  const r = await runPlugin(null, { ...add, CNI_ARGS: 'IgnoreUnknown=1', CNI_PATH: '/opt/cni/bin', HOME: '/root', FOO: 'not relayed' }, stdin);
  t.equal(r.stdout, '{"cniVersion":"1.0.0","x":"é"}\n', 'the body, byte for byte');
  t.equal(r.code, 3, 'the exit status from the header');
  t.equal(r.stderr, 'weave-net: café 100%\n', 'the stderr line, decoded');
  t.equal(d.requests.length, 1);
  const [head, body] = d.requests[0]!.split('\r\n\r\n') as [string, string];
  const lines = head.split('\r\n');
  t.equal(lines[0], 'POST /cni/exec HTTP/1.1');
  t.ok(lines.includes('Connection: close'), 'asks for the connection to close');
  t.ok(lines.includes(`Content-Length: ${Buffer.byteLength(body)}`));
  t.same(JSON.parse(body), { env: { ...add, CNI_ARGS: 'IgnoreUnknown=1', CNI_PATH: '/opt/cni/bin' }, stdin }, 'only the CNI variables, and stdin exactly');
});

t.test('a daemon that answers nonsense: code 100, never a crash', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['not HTTP', 'hello there\r\n\r\n', /it is not HTTP/],
    ['no exit header', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}\n', /no valid Weave-Cni-Exit header/],
    ['an exit status out of range', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nWeave-Cni-Exit: 300\r\n\r\n', /no valid Weave-Cni-Exit header/],
    ['not 200', 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 55\r\n\r\n{"code":100,"msg":"no such CNI route: POST /cni/exec"}\n', /HTTP status 500/],
    ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nWeave-Cni-Exit: 0\r\n\r\n2\r\n{}\r\n0\r\n\r\n', /the body is chunked, not of a Content-Length/],
    ['a body cut short', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nWeave-Cni-Exit: 0\r\n\r\n{"cniVersion"', /it ended after 72 bytes, before the whole answer/],
    ['more than its Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nWeave-Cni-Exit: 0\r\n\r\n{}', /more bytes than its Content-Length/],
    ['half a status line', 'HTTP/1.1 2', /it ended after 10 bytes/],
  ];
  for (const [what, answer, why] of cases) {
    const d = await fakeDaemon(t, (_req, conn) => conn.end(answer));
    const r = await runPlugin(null, add, conf(d.path));
    t.equal(r.json?.code, 100, `${what}: code 100`);
    t.equal(r.code, 1, `${what}: exit status 1`);
    t.match(String(r.json?.msg), new RegExp(`the weave daemon's answer to ADD at ${d.path} was not understood: ${why.source}`), `${what}: ${String(r.json?.msg)}`);
  }
  // Headers that never end: refused at 64 KiB, not read forever.
  const endless = await fakeDaemon(t, (_req, conn) => {
    const line = `X-Filler: ${'x'.repeat(1000)}\r\n`;
    const more = (): void => {
      if (!conn.destroyed && conn.write(line.repeat(64))) setImmediate(more);
      else if (!conn.destroyed) conn.once('drain', more);
    };
    conn.write('HTTP/1.1 200 OK\r\n');
    more();
  });
  const r = await runPlugin(null, add, conf(endless.path));
  t.equal(r.json?.code, 100);
  t.match(String(r.json?.msg), /no end of headers in 65536 bytes/);
});

t.test('a daemon that hangs up: as one that is not there (ADD 11, DEL recorded)', async (t) => {
  const d = await fakeDaemon(t, (_req, conn) => conn.destroy());
  const r = await runPlugin(null, add, conf(d.path));
  t.equal(r.json?.code, 11);
  t.match(String(r.json?.msg), new RegExp(`the weave daemon is not running at ${d.path} \\(the connection was (closed|reset)\\)`));
  const del = await runPlugin(null, { ...add, CNI_COMMAND: 'DEL' }, conf(d.path));
  t.equal(del.code, 0, del.stdout);
  t.same(readdirSync(pendingReleaseDir(d.path)), [`${ID}:eth0.json`]);
});

t.test('a daemon that says nothing: code 11 at the command\'s own timeout (STATUS: 10 s), no hang', async (t) => {
  const d = await fakeDaemon(t, () => undefined);
  const r = await runPlugin(null, { CNI_COMMAND: 'STATUS' }, conf(d.path, { cniVersion: '1.1.0' }));
  t.equal(r.json?.code, 11);
  t.equal(r.json?.msg, `the weave daemon at ${d.path} did not answer STATUS within 10 s`);
  t.equal(d.requests.length, 1, 'the request did arrive');
});

t.test('the config: bounded, validated, and where the socket is', async (t) => {
  const nowhere = join(dir, 'none', 'weave.sock');
  const big = conf(nowhere, { pad: 'x'.repeat(1024 * 1024) });
  const r1 = await runPlugin(null, add, big);
  t.equal(r1.json?.code, 4);
  t.match(String(r1.json?.msg), /the network configuration on stdin is larger than 1048576 bytes/);

  const nested = (levels: number) => `{"socket":${JSON.stringify(nowhere)},"a":${'['.repeat(levels)}${']'.repeat(levels)}}`;
  t.equal((await runPlugin(null, add, nested(63))).json?.code, 11, '64 levels are read (then: no daemon)');
  const deep = await runPlugin(null, add, nested(64));
  t.equal(deep.json?.code, 6, '65 levels are refused');
  t.equal(deep.json?.msg, `the network configuration on stdin is not valid JSON: nesting deeper than 64 levels at position ${nested(64).indexOf('[') + 63}`);

  if (existsSync(DEFAULT_CNI_SOCKET)) {
    t.comment(`not checked: a daemon listens on ${DEFAULT_CNI_SOCKET} on this machine`);
  } else {
    const dflt = await runPlugin(null, { CNI_COMMAND: 'STATUS' }, JSON.stringify({ cniVersion: '0.4.0', name: 'weave', type: 'weave-net' }));
    t.equal(dflt.json?.code, 50);
    t.equal(dflt.json?.msg, `the weave daemon is not running at ${DEFAULT_CNI_SOCKET} (no socket there)`, 'no "socket": the default path');
    t.equal(dflt.json?.cniVersion, '0.4.0', 'the error in the config\'s version');
  }
  t.equal((await runPlugin(null, add, conf('weave.sock'))).json?.code, 4, 'a relative socket path is refused');
  t.match(String((await runPlugin(null, add, conf('weave.sock'))).json?.msg), /"socket" must be the absolute path of the weave daemon's unix socket, got "weave.sock"/);
  t.match(String((await runPlugin(null, add, conf(`/${'s'.repeat(120)}`))).json?.msg), /is longer than the 107 bytes of a unix socket path/);

  // Escapes in the socket string are decoded, and the last of a repeated key wins (as JSON.parse).
  const d = await fakeDaemon(t, (_req, conn) => conn.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nWeave-Cni-Exit: 0\r\n\r\n{}\n'));
  const escaped = JSON.stringify(d.path).replace(/\//g, '\\/').replace(/d(\d+)\.sock/, '\\u0064$1\\u002esock');
  const r2 = await runPlugin(null, add, `{"socket": "/nowhere.sock", "cniVersion": "0.3.1", "socket": ${escaped}}`);
  t.equal(r2.code, 0, `${escaped} is ${d.path}: ${r2.stdout}`);
  t.equal(d.requests.length, 1);

  // Whatever the text, it is refused as JSON (code 6) exactly when JSON.parse refuses it (or it is no object).
  const base = fc.record({ socket: fc.constant(nowhere), x: fc.jsonValue({ maxDepth: 3 }) }).map((o) => JSON.stringify(o));
  const mutated = fc.tuple(base, fc.nat(), fc.constantFrom('', '"', '\\', '{', '}', '[', ']', ',', ':', '0', '-', 'e', '.', 't', 'n', ' ', '\n', '\u0001', '\\u12', '\ud800'), fc.boolean())
    .map(([text, at, ch, replace]) => {
      const i = at % (text.length + 1);
      return text.slice(0, i) + ch + text.slice(replace ? i + 1 : i);
    });
  await fc.assert(fc.asyncProperty(fc.oneof(base, mutated), async (text) => {
    let isJsonObject: boolean;
    try {
      const v: unknown = JSON.parse(text);
      isJsonObject = typeof v === 'object' && v !== null && !Array.isArray(v);
    } catch {
      isJsonObject = false;
    }
    const r = await runPlugin(null, { CNI_COMMAND: 'GC' }, text);
    if ((r.json?.code === 6) === isJsonObject) throw new Error(`${JSON.stringify(text)}: JSON.parse says ${isJsonObject ? 'an object' : 'no object'}, weave-net ${r.stdout}`);
  }), { numRuns: 150 });
});

t.test('through the real server and relay, the output is exactly what runPlugin gives', async (t) => {
  // A network namespace of its own, held by a sleeping process: a real nsfs path, not the host's.
  const holder = spawn('unshare', ['--net', 'sleep', '300'], { stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  const netns = `/proc/${holder.pid}/ns/net`;
  await new Promise((resolve) => setTimeout(resolve, 100));
  const ADDED: CniAddResponse = {
    hostInterface: { name: 'vethweplc0ffee1', mac: '12:34:56:78:9a:bc' },
    interface: { name: 'eth0', mac: '02:00:0a:20:00:05', sandbox: netns },
    address: '10.32.0.5/12', gateway: '10.32.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }], mtu: 1376,
  };
  const calls: string[] = [];
  const socket = join(dir, 'relay', 'weave.sock');
  await startRelayDaemon(t, socket, (method, path) => {
    calls.push(`${method} ${path}`);
    return Promise.resolve(path === '/cni/add' ? { status: 200, body: ADDED } : { status: 200, body: {} });
  });
  const io: PluginIo = {
    readStdin: () => Promise.resolve(''),
    call: (_m, path) => Promise.resolve({ status: 200, body: JSON.stringify(path === '/cni/add' ? ADDED : {}) }),
    netnsState: () => 'ok',
  };
  const env = { ...add, CNI_NETNS: netns, CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web' };
  for (const [what, e, stdin] of [
    ['ADD at 1.0.0 with DNS', env, conf(socket, { dns: { nameservers: ['10.96.0.10'] } })],
    ['ADD at 0.3.1', env, conf(socket, { cniVersion: '0.3.1' })],
    ['a bad mtu', env, conf(socket, { mtu: 7 })],
    ['DEL', { ...env, CNI_COMMAND: 'DEL' }, conf(socket)],
  ] as const) {
    const exe = await runPlugin(null, e, stdin);
    const want = await runPluginLogic(e, { ...io, readStdin: () => Promise.resolve(stdin) });
    t.equal(exe.stdout, want.stdout, `${what}: stdout byte-identical`);
    t.equal(exe.code, want.exitCode, `${what}: exit status ${want.exitCode}`);
    t.equal(exe.stderr, want.stderr === undefined ? '' : `${want.stderr}\n`, `${what}: stderr`);
  }
  t.same(calls, ['POST /cni/add', 'POST /cni/add', 'POST /cni/del'], 'the daemon\'s routes, called in process');
});
