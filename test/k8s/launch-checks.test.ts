// The entrypoint's pure parts: the DaemonSet environment, the weaver command line, the peers from
// the Node list, and the range-against-host-routes check.
import t from 'tap';
import { defaultIpallocInit, flagValue, readLaunchEnv, weaverArgs, DEFAULT_DB_PREFIX } from '../../src/k8s/launch-plan.js';
import { nodeAddress, peerAddresses } from '../../src/k8s/node-peers.js';
import { rangeConflict } from '../../src/k8s/route-check.js';
import { parseCidr } from '../../src/net/ipv4.js';

const node = (name: string, ...addresses: [string, string][]) => ({ metadata: { name }, status: { addresses: addresses.map(([type, address]) => ({ type, address })) } });

t.test('peers are the other nodes\' InternalIP, ExternalIP when there is none', async (t) => {
  const nodes = [
    node('a', ['InternalIP', '10.0.0.1'], ['ExternalIP', '1.1.1.1']),
    node('b', ['Hostname', 'b'], ['ExternalIP', '1.1.1.2']),
    node('c', ['Hostname', 'c']),
    node('d', ['InternalIP', 'fd00::1'], ['InternalIP', '10.0.0.4']),
    node('e', ['InternalIP', '10.0.0.1']),
  ];
  t.equal(nodeAddress(nodes[0]!), '10.0.0.1');
  t.equal(nodeAddress(nodes[1]!), '1.1.1.2');
  t.equal(nodeAddress(nodes[2]!), undefined, 'no address: skipped');
  t.equal(nodeAddress(nodes[3]!), '10.0.0.4', 'the IPv4 InternalIP of a dual-stack node');
  t.same(peerAddresses(nodes, 'a'), ['1.1.1.2', '10.0.0.1', '10.0.0.4'], 'self excluded, duplicates once, sorted');
  t.same(peerAddresses(nodes, 'x'), ['1.1.1.2', '10.0.0.1', '10.0.0.4']);
});

t.test('the DaemonSet environment with Weave\'s defaults', async (t) => {
  const s = readLaunchEnv({ HOSTNAME: 'node-1' });
  t.equal(s.rangeText, '10.32.0.0/12');
  t.equal(s.connLimit, '200');
  t.equal(s.httpAddrText, '127.0.0.1:6784');
  t.equal(s.metricsAddrText, '0.0.0.0:6782');
  t.equal(s.dbPrefix, DEFAULT_DB_PREFIX);
  t.equal(s.ipallocInit, undefined, 'consensus over the node count, decided later');
  t.equal(s.kubePeers, undefined);
  t.equal(defaultIpallocInit(3), 'consensus=3');
  t.equal(defaultIpallocInit(0), 'consensus=1', 'an empty node list still gives a valid count');
  const args = weaverArgs(s, 'consensus=3', ['10.0.0.2', '10.0.0.3'], 'nft');
  t.same(args, ['--nickname', 'node-1', '--ipalloc-range', '10.32.0.0/12', '--ipalloc-init', 'consensus=3', '--conn-limit', '200',
    '--http-addr', '127.0.0.1:6784', '--metrics-addr', '0.0.0.0:6782', '--db-prefix', DEFAULT_DB_PREFIX, '--iptables-backend', 'nft',
    '10.0.0.2', '10.0.0.3']);
});

t.test('every variable given', async (t) => {
  const s = readLaunchEnv({
    HOSTNAME: 'n', IPALLOC_RANGE: '10.40.0.0/16', IPALLOC_INIT: 'seed=02:00:00:00:00:01', WEAVE_MTU: '1400', CONN_LIMIT: '30',
    KUBE_PEERS: '10.0.0.7 10.0.0.8,10.0.0.9', WEAVE_HTTP_ADDR: '127.0.0.9:7000', WEAVE_METRICS_ADDR: '', EXTRA_ARGS: ' --log-level=debug  --db-prefix=/x/y- ',
    IPTABLES_BACKEND: 'legacy', WEAVE_NO_FASTDP: '1', NO_MASQ_LOCAL: '1', WEAVE_PASSWORD: 'secret',
  });
  t.same(s.kubePeers, ['10.0.0.7', '10.0.0.8', '10.0.0.9']);
  t.equal(s.dbPrefix, '/x/y-', '--db-prefix in EXTRA_ARGS is the one weaver will use');
  t.same(s.httpAddr, { host: '127.0.0.9', port: 7000 });
  t.equal(s.iptablesBackend, 'legacy');
  t.same(s.notes.map((n) => n.split(':')[0]), ['NO_MASQ_LOCAL'], 'variables without effect are said so in the log (WEAVE_NO_FASTDP has one: weaver reads it)');
  const args = weaverArgs(s, s.ipallocInit!, s.kubePeers!, s.iptablesBackend);
  t.ok(args.join(' ').includes('--mtu 1400'));
  t.ok(args.join(' ').includes('--metrics-addr  '), 'empty WEAVE_METRICS_ADDR turns metrics off');
  t.notOk(args.includes('secret'), 'the password goes by environment, never on the command line');
  t.same(args.slice(-5), ['--log-level=debug', '--db-prefix=/x/y-', '10.0.0.7', '10.0.0.8', '10.0.0.9']);
});

t.test('bad environment: one clear line', async (t) => {
  t.throws(() => readLaunchEnv({}), /HOSTNAME is not set/);
  t.throws(() => readLaunchEnv({ HOSTNAME: 'n', IPALLOC_RANGE: '10.32.0.1/12' }), /IPALLOC_RANGE: .*not a subnet/);
  t.throws(() => readLaunchEnv({ HOSTNAME: 'n', IPTABLES_BACKEND: 'ipfw' }), /IPTABLES_BACKEND "ipfw": want nft or legacy/);
  t.throws(() => readLaunchEnv({ HOSTNAME: 'n', WEAVE_HTTP_ADDR: 'nowhere:port' }), /WEAVE_HTTP_ADDR/);
});

t.test('flagValue takes the last of both spellings', async (t) => {
  t.equal(flagValue(['--a', '1', '--a=2'], '--a'), '2');
  t.equal(flagValue(['--ab=2'], '--a'), undefined);
  t.equal(flagValue(['--a'], '--a'), undefined);
});

t.test('the range must not overlap a host route; the message names both', async (t) => {
  const routes = JSON.stringify([
    { dst: 'default', gateway: '192.0.2.1', dev: 'eth0' },
    { dst: '192.0.2.0/24', dev: 'eth0' },
    { dst: '10.32.5.0/24', dev: 'weave' },
    { dst: '10.0.0.0/8', dev: 'ens5' },
    { dst: '172.16.3.4', dev: 'tun0' },
  ]);
  t.equal(rangeConflict(routes, parseCidr('10.32.0.0/12')), 'network 10.32.0.0/12 overlaps with existing route 10.0.0.0/8 dev ens5 on the host; choose another IPALLOC_RANGE');
  t.match(rangeConflict(routes, parseCidr('172.16.0.0/16'))!, /existing route 172\.16\.3\.4\/32 dev tun0/, 'a host route is a /32');
  t.equal(rangeConflict(routes, parseCidr('100.64.0.0/10')), undefined, 'the default route and our own bridge do not count');
  t.equal(rangeConflict(routes, parseCidr('192.0.3.0/24')), undefined, 'adjacent is not overlapping');
  t.equal(rangeConflict(JSON.stringify([{ dst: 'fe80::/64', dev: 'eth0' }]), parseCidr('10.32.0.0/12')), undefined, 'IPv6 routes are ignored');
});
