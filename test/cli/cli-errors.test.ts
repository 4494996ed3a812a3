// The real weave CLI against a daemon that is down, silent, or answering errors and garbage:
// always one line on stderr, nothing on stdout, and Weave's exit codes (4 for 404, 1 otherwise).
import t, { type Test } from 'tap';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { runCli } from '../lib/weaver.js';

const ip = (n: number): string => `127.0.80.${n}`;

function listen(t: Test, server: Server, host: string): Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(6784, host, () => resolve());
  });
}

/** stderr is exactly one line, stdout empty. */
function oneLine(t: Test, r: { stdout: string; stderr: string }, pattern: RegExp, what: string): void {
  t.equal(r.stdout, '', `${what}: nothing on stdout`);
  t.equal(r.stderr.split('\n').length, 2, `${what}: one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.match(r.stderr, pattern, what);
}

t.test('daemon down: connection refused', async (t) => {
  for (const args of [['status'], ['ps'], ['report'], ['reset'], ['expose'], ['rmpeer', 'x'], ['connect', '10.0.0.1']]) {
    const r = await runCli(args, { WEAVE_HTTP_ADDR: `${ip(99)}:6784` });
    t.equal(r.code, 1, args.join(' '));
    oneLine(t, r, /^weave: the weave daemon is not reachable at 127\.0\.80\.99:6784: connection refused; is weaver running\?\n$/, args.join(' '));
  }
});

t.test('daemon that accepts and never answers: the CLI gives up with a clear message', async (t) => {
  await listen(t, createTcpServer(() => undefined), ip(3));
  const env = { WEAVE_HTTP_ADDR: `${ip(3)}:6784` };
  const r = await runCli(['status'], env);
  t.equal(r.code, 1);
  oneLine(t, r, /^weave: the weave daemon at 127\.0\.80\.3:6784 gave no answer: no answer within 10 s \(WEAVE_CLI_TIMEOUT=<seconds> waits longer\)\n$/, 'default 10 s');
  const quick = await runCli(['ps'], { ...env, WEAVE_CLI_TIMEOUT: '0.5' });
  t.equal(quick.code, 1);
  oneLine(t, quick, /no answer within 0\.5 s/, 'WEAVE_CLI_TIMEOUT');
  const bad = await runCli(['status'], { ...env, WEAVE_CLI_TIMEOUT: 'soon' });
  t.equal(bad.code, 1);
  oneLine(t, bad, /^weave: invalid WEAVE_CLI_TIMEOUT "soon": want seconds > 0\n$/, 'a bad timeout value');
});

t.test('daemon that closes at once, or speaks something other than HTTP', async (t) => {
  await listen(t, createTcpServer((s) => s.destroy()), ip(4));
  const closed = await runCli(['status'], { WEAVE_HTTP_ADDR: `${ip(4)}:6784` });
  t.equal(closed.code, 1);
  oneLine(t, closed, /^weave: the weave daemon at 127\.0\.80\.4:6784 closed the connection without an answer\n$/, 'closed');

  await listen(t, createTcpServer((s) => s.end('SSH-2.0-OpenSSH_9.2\r\nnot http at all\r\n\r\n')), ip(5));
  const garbage = await runCli(['status'], { WEAVE_HTTP_ADDR: `${ip(5)}:6784` });
  t.equal(garbage.code, 1);
  oneLine(t, garbage, /^weave: the weave daemon at 127\.0\.80\.5:6784 sent an answer that is not HTTP \(HPE_\w+\): is WEAVE_HTTP_ADDR the daemon's API address\?\n$/, 'garbage');
});

t.test('error answers: 404 exits 4, others 1, each one line', async (t) => {
  await listen(t, createHttpServer((req, res) => {
    const send = (status: number, body: string, type = 'text/plain'): void => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    };
    switch (req.url) {
      case '/status': return send(500, 'cannot render status: something broke\n');
      case '/status/ipam': return send(404, 'unknown status section "ipam"\n');
      case '/ps': return send(500, '');
      case '/report': return send(200, '<html>\n<body>not a report</body>\n</html>\n', 'text/html');
      case '/expose': return send(503, 'awaiting consensus (quorum: 2, known: 1)\n');
      case '/peer/ghost': return send(404, 'unknown peer ghost\n');
      default: return send(502, '<html>\n<head><title>502 Bad Gateway</title></head>\n</html>\n', 'text/html');
    }
  }), ip(1));
  const env = { WEAVE_HTTP_ADDR: `${ip(1)}:6784` };
  const cases: [string[], number, RegExp][] = [
    [['status'], 1, /^weave: cannot render status: something broke\n$/],
    [['ps'], 1, /^weave: the daemon answered HTTP 500 with no message\n$/],
    [['report', '-f', '.Router.Name'], 1, /^weave: the weave daemon at 127\.0\.80\.1:6784 sent a report that is not JSON\n$/],
    [['expose'], 1, /^weave: awaiting consensus \(quorum: 2, known: 1\)\n$/],
    [['rmpeer', 'ghost'], 4, /^weave: unknown peer ghost\n$/],
    [['connect', '10.0.0.1'], 1, /^weave: the daemon answered HTTP 502: <html> \.\.\.\n$/],
  ];
  for (const [args, code, pattern] of cases) {
    const r = await runCli(args, env);
    t.equal(r.code, code, `${args.join(' ')} exits ${code}`);
    oneLine(t, r, pattern, args.join(' '));
  }
  // An unknown status section: 404, exit 4, the reason and then the usage.
  const section = await runCli(['status', 'ipam'], env);
  t.equal(section.code, 4);
  t.match(section.stderr, /^weave: unknown status section "ipam"\nUsage:\n/);
});

t.test('usage errors: exit 1, the reason, then the usage', async (t) => {
  for (const [args, reason] of [
    [[], 'no command given'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['expose', '10.32.0.1/12'], 'expose takes no arguments: the bridge gets its address from IPAM'],
    [['reset', '--force'], 'reset takes no arguments'],
    [['rmpeer'], 'rmpeer needs at least one peer'],
  ] as [string[], string][]) {
    const r = await runCli(args, { WEAVE_HTTP_ADDR: `${ip(99)}:6784` });
    t.equal(r.code, 1, args.join(' '));
    t.equal(r.stderr.split('\n')[0], `weave: ${reason}`);
    t.match(r.stderr, /\nUsage:\n {2}weave status/);
    t.match(r.stderr, /\n {2}weave ps \[<id> \.\.\.\]\n/);
  }
});
