// The plugin's daemon client against a real HTTP server on a unix socket: answers, the daemon's
// CNI errors passed on with their code, a server that says nothing (timeout), one that hangs up,
// and what each becomes for the runtime.
import t from 'tap';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callDaemon } from '../../src/cni/daemon-client.js';
import { expectOk } from '../../src/cni/plugin.js';
import { CniError } from '../../src/cni/cni-error.js';

function thrown(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

t.test('daemon client over a unix socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cni-client-'));
  const socket = join(dir, 'weave.sock');
  const seen: { method: string; url: string; body: string }[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      if (req.url === '/cni/add') res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":1}');
      else if (req.url === '/cni/status') res.writeHead(503).end(JSON.stringify({ code: 50, msg: 'IPAM is awaiting consensus', details: 'quorum 2' }));
      else if (req.url === '/cni/check') res.writeHead(500).end('<html>oops</html>');
      else if (req.url === '/cni/gc') req.socket.destroy(); // hangs up without an answer
      // /cni/del: never answers
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const add = await callDaemon(socket, 'POST', '/cni/add', { containerId: 'c1', ifName: 'eth0', netns: '/run/netns/x' }, 5000);
  t.same(add, { kind: 'answer', status: 200, body: '{"ok":1}' });
  t.same(seen[0], { method: 'POST', url: '/cni/add', body: '{"containerId":"c1","ifName":"eth0","netns":"/run/netns/x"}' }, 'the request as sent');
  t.equal(expectOk(add, 'ADD', socket, 11), '{"ok":1}');

  const status = await callDaemon(socket, 'GET', '/cni/status', undefined, 5000);
  const e = thrown(() => expectOk(status, 'STATUS', socket, 50));
  t.same(e.body, { code: 50, msg: 'IPAM is awaiting consensus', details: 'quorum 2' }, 'the daemon\'s CNI error, passed on as it is');

  const check = thrown(() => expectOk({ kind: 'answer', status: 500, body: '<html>oops</html>' }, 'CHECK', socket, 11));
  t.equal(check.code, 100, 'an answer that is no CNI error: code 100');
  t.match(check.message, /answered CHECK with HTTP 500: <html>oops/);
  t.same(await callDaemon(socket, 'POST', '/cni/check', {}, 5000), { kind: 'answer', status: 500, body: '<html>oops</html>' });

  const gc = await callDaemon(socket, 'POST', '/cni/gc', { valid: [] }, 5000);
  t.equal(gc.kind, 'unreachable', 'a hang-up is no answer');

  const del = await callDaemon(socket, 'POST', '/cni/del', { containerId: 'c1', ifName: 'eth0' }, 300);
  t.same(del, { kind: 'timeout' }, 'silence ends at the timeout');
  const late = thrown(() => expectOk(del, 'DEL', socket, 11));
  t.equal(late.code, 11);
  t.match(late.message, new RegExp(`the weave daemon at ${socket} did not answer DEL within 20 s`));

  const gone = await callDaemon(join(dir, 'none.sock'), 'GET', '/cni/status', undefined, 5000);
  t.same(gone, { kind: 'unreachable', reason: 'no socket there' });
  const down = thrown(() => expectOk(gone, 'STATUS', join(dir, 'none.sock'), 50));
  t.equal(down.code, 50, 'STATUS with no daemon: 50');
});
