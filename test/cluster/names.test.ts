import t from 'tap';
import fc from 'fast-check';
import { ClusterNames, MAX_IFNAME_LENGTH, ownedByPrefix, validateIfName, validatePodName, validatePrefix } from '../../src/cluster/names.js';
import { parseAddrs, parseLinks } from '../../src/cluster/iproute-json.js';

const prefix = fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/);
const podName = fc.stringMatching(/^[a-z0-9]{1,7}$/);

t.test('every link name fits the kernel limit, at the longest prefix and pod name', async (t) => {
  fc.assert(
    fc.property(prefix, podName, fc.integer({ min: 1, max: 999 }), (p, pod, index) => {
      const n = new ClusterNames(p);
      const links = [n.underlayBridge, n.nodeUnderlayIf, n.underlayPort(index), n.podHostIf(pod)];
      return links.every((l) => l.length <= MAX_IFNAME_LENGTH && validateIfName(l) === l);
    }),
  );
  const n = new ClusterNames('abcdef');
  t.equal(n.podHostIf('abcdefg'), 'abcdef-vabcdefg');
  t.equal(n.podHostIf('abcdefg').length, 15);
});

t.test('every namespace of a cluster is owned by its prefix and by no other', async (t) => {
  fc.assert(
    fc.property(prefix, prefix, podName, fc.integer({ min: 1, max: 999 }), (a, b, pod, index) => {
      const n = new ClusterNames(a);
      const namespaces = [n.underlayNs, n.nodeNs(index), n.podNs(index, pod)];
      return namespaces.every((ns) => n.owns(ns) && ownedByPrefix(b, ns) === (a === b));
    }),
  );
  t.notOk(ownedByPrefix('wt3', 'wt30-n1'), 'a longer prefix is someone else');
  t.ok(ownedByPrefix('wt3', 'wt3-n1-p1'));
  t.equal(new ClusterNames('wt3').podNs(2, 'p1'), 'wt3-n2-p1');
});

t.test('names that would break ip, the kernel or the sweep are refused', async (t) => {
  for (const bad of ['', 'Wt3', '3wt', 'wt-3', 'abcdefg', 'wt 3']) t.throws(() => validatePrefix(bad), RangeError, `prefix ${JSON.stringify(bad)}`);
  for (const bad of ['', 'P1', 'p-1', 'abcdefgh']) t.throws(() => validatePodName(bad), RangeError, `pod ${JSON.stringify(bad)}`);
  for (const bad of ['', 'a'.repeat(16), 'we ave', 'a/b', '-x', 'dev\n']) t.throws(() => validateIfName(bad), RangeError, `ifname ${JSON.stringify(bad)}`);
  t.equal(validateIfName('vethwepl1234567'), 'vethwepl1234567');
});

// Captured from `ip -d -j addr show` (iproute2 6.1) in a namespace with a bridge and a veth port.
const ADDR_JSON = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK'], mtu: 65536, qdisc: 'noop', operstate: 'DOWN', link_type: 'loopback', address: '00:00:00:00:00:00', gso_max_size: 65536, addr_info: [] },
  {
    ifindex: 2, ifname: 'br9', flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'], mtu: 1376, operstate: 'DOWN', link_type: 'ether', address: 'ba:4a:b7:40:47:fc',
    linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } }, gso_max_size: 65536,
    addr_info: [{ family: 'inet', local: '10.32.0.1', prefixlen: 12, scope: 'global', label: 'br9' }, { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }],
  },
  {
    ifindex: 4, link: 'eth0', ifname: 'v9', flags: ['BROADCAST', 'MULTICAST', 'M-DOWN'], mtu: 1500, master: 'br9', operstate: 'DOWN', address: 'ba:4a:b7:40:47:fc',
    linkinfo: { info_kind: 'veth', info_slave_kind: 'bridge' }, gso_max_size: 62000, addr_info: [],
  },
]);

t.test('ip -j output: the fields tests use, typed', async (t) => {
  const addrs = parseAddrs(ADDR_JSON);
  t.same(addrs.map((a) => [a.ifname, a.kind, a.master, a.mtu]), [['lo', undefined, undefined, 65536], ['br9', 'bridge', undefined, 1376], ['v9', 'veth', 'br9', 1500]]);
  t.same(addrs[1]?.addresses, [{ family: 'inet', local: '10.32.0.1', prefixlen: 12 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64 }]);
  t.equal(addrs[2]?.gsoMaxSize, 62000);
  t.same(addrs[1]?.flags, ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP']);
  const links = parseLinks(ADDR_JSON);
  t.same(links.map((l) => l.ifname), ['lo', 'br9', 'v9']);
  t.notOk('addresses' in links[0]!, 'links carry no addresses');
});

t.test('ip -j output that is not what iproute2 prints is an error naming the field', async (t) => {
  t.throws(() => parseLinks('{}'), /want an array/);
  t.throws(() => parseLinks('[{"ifindex":"1","ifname":"lo","mtu":1,"flags":[],"operstate":"UP"}]'), /"ifindex" is "1"/);
  t.throws(() => parseAddrs('[{"ifindex":1,"ifname":"lo","mtu":1,"flags":[],"operstate":"UP","addr_info":[{"family":"inet","prefixlen":8}]}]'), /"local"/);
});
