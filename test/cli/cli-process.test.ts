// The weave CLI and weaver's own command line, as an operator meets them.
import t from 'tap';
import { Weaver, runCli, runNode, WEAVER } from '../lib/weaver.js';

const ip = (n: number): string => `127.0.12.${n}`;

t.test('weave status when no daemon runs: one line, non-zero', async (t) => {
  const r = await runCli(['status'], { WEAVE_HTTP_ADDR: `${ip(99)}:6784` });
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^weave: the weave daemon is not reachable at 127\.0\.12\.99:6784: connection refused; is weaver running\?\n$/);
});

t.test('weaver refuses bad flags with one line and exit 1', async (t) => {
  for (const args of [['--port', 'x'], ['--bogus'], ['--name', 'nope'], ['300.1.1.1:99999']]) {
    const r = await runNode([WEAVER, ...args]);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, /^weaver: .+\n$/, 'one line');
    t.equal(r.stderr.split('\n').length, 2);
  }
  const v = await runNode([WEAVER, '--version']);
  t.match(v.stdout, /^weave \d+\.\d+\.\d+\n$/);
});

t.test('status layout, sub-commands, report, connect and forget', async (t) => {
  const a = await Weaver.start(t, { ip: ip(1), nickname: 'alpha', name: '02:00:00:00:12:01', args: ['--ipalloc-init', 'seed=02:00:00:00:12:01', '--ipalloc-range', '10.32.0.0/16'] });
  const status = await a.cli(['status']);
  t.equal(status.code, 0);
  t.equal(status.stdout, [
    '',
    '        Version: 0.1.0 (version check update disabled)',
    '',
    '        Service: router',
    '       Protocol: weft 1',
    '           Name: 02:00:00:00:12:01(alpha)',
    '     Encryption: disabled',
    '  PeerDiscovery: enabled',
    '        Targets: 0',
    '    Connections: 0',
    '          Peers: 1 (with 0 established connections)',
    ' TrustedSubnets: none',
    '',
    '        Service: ipam',
    '         Status: ready',
    '          Range: 10.32.0.0/16',
    '  DefaultSubnet: 10.32.0.0/16',
    '',
    '',
  ].join('\n'));
  t.equal((await a.cli(['status', 'ipam'])).stdout, '02:00:00:00:12:01(alpha)                 65536 IPs (100.0% of total) (0 active)\n');

  const c = await a.cli(['connect', `${ip(50)}:6783`, `${ip(51)}`]);
  t.equal(c.code, 0);
  t.equal((await a.cli(['status', 'targets'])).stdout, `${ip(50)}:6783\n${ip(51)}:6783\n`);
  t.match((await a.cli(['status'])).stdout, /\n {8}Targets: 2\n {4}Connections: 2 \((\d (failed|connecting|retrying)(, )?)+\)\n/);
  t.equal((await a.cli(['forget', `${ip(50)}`])).code, 0);
  t.equal((await a.cli(['status', 'targets'])).stdout, `${ip(51)}:6783\n`);
  t.equal((await a.cli(['connect', '--replace'])).code, 0);
  t.equal((await a.cli(['status', 'targets'])).stdout, '');

  const bad = await a.cli(['connect', 'not a host']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /invalid address/);

  const unknown = await a.cli(['status', 'nonsense']);
  t.equal(unknown.code, 4, '404 gives exit code 4');
  t.match(unknown.stderr, /unknown status section "nonsense"/);

  t.equal((await a.cli(['report', '-f', '.Router.NickName'])).stdout, 'alpha\n');
  const report = JSON.parse((await a.cli(['report'])).stdout) as { Router: { Name: string } };
  t.equal(report.Router.Name, '02:00:00:00:12:01');

  const usage = await a.cli(['frobnicate']);
  t.equal(usage.code, 1);
  t.match(usage.stderr, /^weave: unknown command "frobnicate"\nUsage:/);
});

t.test('SIGTERM stops the daemon cleanly', async (t) => {
  const a = await Weaver.start(t, { ip: ip(2), nickname: 'beta' });
  a.signal('SIGTERM');
  t.equal(await a.exitCode(), 0);
});
