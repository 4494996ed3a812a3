import t from 'tap';
import { parseConfig, ConfigError } from '../../src/daemon/config.js';

t.test('defaults are Weave\'s', async (t) => {
  const c = parseConfig([], {});
  t.equal(c.port, 6783);
  t.equal(c.connLimit, 200);
  t.same(c.httpAddr, { host: '127.0.0.1', port: 6784 });
  t.equal(c.discovery, true);
  t.equal(c.noBridge, false);
  t.equal(c.password, undefined);
  t.equal(c.heartbeatInterval, 30);
  t.same(c.peers, []);
});

t.test('flags, peers and environment', async (t) => {
  const c = parseConfig(
    ['--name', '::1', '--nickname=n1', '--port', '7000', '--conn-limit', '5', '--no-discovery', '--no-bridge', '10.0.0.2', '10.0.0.3:7001', '[fd00::1]:7002'],
    { WEAVE_PASSWORD: 'sekrit', WEAVE_HTTP_ADDR: '127.0.0.9:7784' },
  );
  t.equal(c.name, '00:00:00:00:00:01');
  t.equal(c.nickname, 'n1');
  t.equal(c.port, 7000);
  t.equal(c.connLimit, 5);
  t.equal(c.discovery, false);
  t.equal(c.noBridge, true);
  t.equal(c.password, 'sekrit');
  t.same(c.httpAddr, { host: '127.0.0.9', port: 7784 });
  t.same(c.peers, ['10.0.0.2:6783', '10.0.0.3:7001', '[fd00::1]:7002']);
});

t.test('a flag beats the environment', async (t) => {
  const c = parseConfig(['--conn-limit', '7', '--password', 'a'], { CONN_LIMIT: '9', WEAVE_PASSWORD: 'b' });
  t.equal(c.connLimit, 7);
  t.equal(c.password, 'a');
  t.equal(parseConfig([], { CONN_LIMIT: '9' }).connLimit, 9);
});

t.test('bad input is one clear line naming the flag', async (t) => {
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--port', '0'], {}, /--port "0": want a whole number from 1 to 65535/],
    [['--port', 'abc'], {}, /--port "abc"/],
    [['--conn-limit=-1'], {}, /--conn-limit "-1"/],
    [['--conn-limit', '-1'], {}, /--conn-limit/],
    [[], { CONN_LIMIT: 'lots' }, /--conn-limit "lots"/],
    [['--name', 'zz:zz'], {}, /invalid --name: invalid peer name "zz:zz"/],
    [['--http-addr', 'a b:1'], {}, /invalid --http-addr/],
    [['--log-level', 'loud'], {}, /--log-level "loud": want one of fatal, error/],
    [['--log-format', 'xml'], {}, /--log-format "xml"/],
    [['--nickname', 'has space'], {}, /--nickname/],
    [['--bogus'], {}, /Unknown option '--bogus'/],
    [['10.0.0.1:99999'], {}, /invalid peer: invalid port in address "10.0.0.1:99999"/],
    [['--port'], {}, /--port/],
  ];
  for (const [argv, env, re] of cases) {
    t.throws(() => parseConfig(argv, env), re, argv.join(' '));
    try {
      parseConfig(argv, env);
    } catch (err) {
      t.ok(err instanceof ConfigError, 'is a ConfigError');
      t.notMatch((err as Error).message, /\n/, 'one line');
    }
  }
});

t.test('--socket: the CNI plugin\'s unix socket', async (t) => {
  t.equal(parseConfig([], {}).socket, '/run/weave/weave.sock');
  t.equal(parseConfig([], { WEAVE_SOCKET: '/tmp/w/e.sock' }).socket, '/tmp/w/e.sock');
  t.equal(parseConfig(['--socket', '/a/b.sock'], { WEAVE_SOCKET: '/tmp/w/e.sock' }).socket, '/a/b.sock');
  t.throws(() => parseConfig(['--socket', 'rel.sock'], {}), /invalid --socket "rel.sock": want an absolute file path/);
  t.throws(() => parseConfig(['--socket', `/${'x'.repeat(120)}`], {}), /at most 107 bytes/);
});

t.test('--cni-reconcile-interval', async (t) => {
  t.equal(parseConfig([], {}).cniReconcileInterval, 60);
  t.equal(parseConfig(['--cni-reconcile-interval', '0.5'], {}).cniReconcileInterval, 0.5);
  t.throws(() => parseConfig(['--cni-reconcile-interval', '0'], {}), /invalid --cni-reconcile-interval "0"/);
});

t.test('the iptables backend: flag, IPTABLES_BACKEND, or detected (absent)', async (t) => {
  t.equal(parseConfig([], {}).iptablesBackend, undefined);
  t.equal(parseConfig(['--iptables-backend', 'legacy'], {}).iptablesBackend, 'legacy');
  t.equal(parseConfig([], { IPTABLES_BACKEND: 'nft' }).iptablesBackend, 'nft');
  t.throws(() => parseConfig(['--iptables-backend', 'pf'], {}), new ConfigError('invalid --iptables-backend "pf": want nft or legacy'));
});

t.test('fastdp: on by default; --no-fastdp or WEAVE_NO_FASTDP (any value but empty) turn it off', async (t) => {
  t.equal(parseConfig([], {}).fastdp, true);
  t.equal(parseConfig(['--no-fastdp'], {}).fastdp, false);
  t.equal(parseConfig([], { WEAVE_NO_FASTDP: '1' }).fastdp, false);
  t.equal(parseConfig([], { WEAVE_NO_FASTDP: 'true' }).fastdp, false);
  t.equal(parseConfig([], { WEAVE_NO_FASTDP: '' }).fastdp, true);
});
