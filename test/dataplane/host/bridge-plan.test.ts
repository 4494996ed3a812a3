// The bridge planner without a kernel: parsing the probe's output, and the fixes each difference
// calls for (the kernel tests in bridge.test.ts show the fixes work).
import t from 'tap';
import {
  FALLBACK_PORT_QDISC, parseBridgeProbe, planBridge, PROBE_MARK, resolveBridgeConfig, type HostState,
} from '../../../src/dataplane/host/bridge-plan.js';

const section = (...parts: string[]): string => parts.map((p) => `${p}\n${PROBE_MARK}\n`).join('').slice(0, -(PROBE_MARK.length + 1));

const bridgeJson = JSON.stringify([{
  ifname: 'weave', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1376, address: '4e:ca:40:86:0d:24',
  linkinfo: { info_kind: 'bridge' },
  addr_info: [{ family: 'inet', local: '10.32.0.1', prefixlen: 12 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64 }],
}]);
const portJson = JSON.stringify([{ ifname: 'vethwe-tap', flags: ['NO-CARRIER', 'UP'], mtu: 1376, master: 'weave', linkinfo: { info_kind: 'tun' } }]);
const qdiscJson = JSON.stringify([{ kind: 'fq_codel', handle: '8001:', root: true }]);

const GOOD: HostState = {
  bridge: { kind: 'bridge', up: true, mtu: 1376, mac: '4e:ca:40:86:0d:24', macPinned: true, addresses: [{ local: '10.32.0.1', prefixlen: 12 }], acceptRa: '0' },
  port: { master: 'weave', up: true, mtu: 1376, qdisc: 'fq_codel' },
  ipForward: true,
};
const config = resolveBridgeConfig({ address: '10.32.0.1/12', port: 'vethwe-tap' });

t.test('parses a probe of a correct host', async (t) => {
  t.same(parseBridgeProbe(section(bridgeJson, portJson, qdiscJson, '1', '0', '3') + '\n'), GOOD);
});

t.test('parses a probe with nothing there (no bridge, no port, IPv6 off)', async (t) => {
  t.same(parseBridgeProbe(section('', '', '', '0', '', '')), { bridge: undefined, port: undefined, ipForward: false });
  t.throws(() => parseBridgeProbe('garbage'), /sections/);
  t.throws(() => parseBridgeProbe(section('{oops', '', '', '0', '', '')), /cannot parse the bridge/);
});

t.test('a correct host needs nothing; each difference gets its fix', async (t) => {
  t.same(planBridge(GOOD, config), { fixes: [], unfixable: [] });

  const problems = (s: HostState): string[] => planBridge(s, config).fixes.map((f) => f.problem);
  t.same(problems({ ...GOOD, ipForward: false }), ['ip_forward was off']);
  t.same(planBridge({ ...GOOD, bridge: undefined }, config).fixes.map((f) => f.actions), [[{ kind: 'ip', line: 'link add weave type bridge' }]], 'a missing bridge first');
  t.same(problems({ ...GOOD, bridge: { ...GOOD.bridge!, macPinned: false } }), ['MAC of weave was not pinned']);
  t.same(planBridge({ ...GOOD, bridge: { ...GOOD.bridge!, macPinned: false } }, config).fixes[0]!.actions, [{ kind: 'ip', line: 'link set weave address 4e:ca:40:86:0d:24' }], 'pinned to the MAC it has');
  t.same(
    planBridge({ ...GOOD, bridge: { ...GOOD.bridge!, addresses: [{ local: '10.32.0.1', prefixlen: 16 }] } }, config).fixes.flatMap((f) => f.actions),
    [{ kind: 'ip', line: 'addr del 10.32.0.1/16 dev weave' }, { kind: 'ip', line: 'addr add 10.32.0.1/12 dev weave' }],
    'a wrong prefix: the stale address goes first',
  );
  t.same(problems({ ...GOOD, port: { ...GOOD.port!, master: 'docker0', up: false } }), ['vethwe-tap was on docker0', 'vethwe-tap was down']);
  t.same(planBridge({ ...GOOD, port: undefined }, config).unfixable, ['port vethwe-tap is missing']);
  t.same(planBridge({ ...GOOD, bridge: { ...GOOD.bridge!, kind: 'openvswitch' } }, config).unfixable.length, 1, 'not a bridge: nothing touched');
  t.same(planBridge(GOOD, resolveBridgeConfig({ port: 'vethwe-tap' })).fixes, [], 'no address given: addresses left alone');
  t.same(planBridge(GOOD, resolveBridgeConfig({ address: '10.32.0.1/12' })).fixes, [], 'no port given: ports left alone');
  t.same(
    planBridge(GOOD, config, FALLBACK_PORT_QDISC).fixes.flatMap((f) => f.actions),
    [{ kind: 'tc', args: ['qdisc', 'replace', 'dev', 'vethwe-tap', 'root', 'pfifo', 'limit', '100'] }],
  );
  t.same(planBridge(GOOD, resolveBridgeConfig({ address: '10.32.0.1/12', port: 'vethwe-tap', mac: '02:00:00:00:00:01' })).fixes.map((f) => f.problem),
    ['MAC of weave was 4e:ca:40:86:0d:24, want 02:00:00:00:00:01']);
});

t.test('configuration is checked', async (t) => {
  t.same(resolveBridgeConfig({}), { name: 'weave', mtu: 1376, address: undefined, port: undefined, mac: undefined });
  t.throws(() => resolveBridgeConfig({ name: 'weave; rm -rf /' }), RangeError);
  t.throws(() => resolveBridgeConfig({ port: 'weave' }), RangeError);
  t.throws(() => resolveBridgeConfig({ mtu: 100 }), RangeError);
  t.throws(() => resolveBridgeConfig({ address: '10.32.0.1' }), RangeError);
  t.throws(() => resolveBridgeConfig({ mac: 'AA:BB:CC:DD:EE:FF' }), RangeError);
});
