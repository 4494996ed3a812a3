// The VXLAN device planner without a kernel (fastdp-network.test.ts runs the real device).
import t from 'tap';
import { parseVxlanProbe, planVxlan, vxlanFits, type VxlanConfig, type VxlanState } from '../../../src/dataplane/fastdp/vxlan-plan.js';

const CONFIG: VxlanConfig = { name: 'vxlan-6784', vni: 0x574654, port: 6784, mtu: 1376, bridge: 'weave', local: '172.31.60.2' };
const GOOD: VxlanState = {
  kind: 'vxlan', vni: 0x574654, port: 6784, local: '172.31.60.2', learning: false, df: 'set', mtu: 1376, master: 'weave', up: true,
  portLearning: false, portFlood: false, portMcastFlood: false, portBcastFlood: false,
};

t.test('parses ip -d -j link show of the device', async (t) => {
  const json = JSON.stringify([{
    ifname: 'vxlan-6784', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1376, master: 'weave',
    linkinfo: {
      info_kind: 'vxlan', info_data: { id: 0x574654, local: '172.31.60.2', port: 6784, learning: false, df: 'set' },
      info_slave_kind: 'bridge', info_slave_data: { learning: false, flood: false, mcast_flood: false, bcast_flood: false },
    },
  }]);
  t.same(parseVxlanProbe(json), GOOD);
  t.equal(parseVxlanProbe(''), undefined);
  t.throws(() => parseVxlanProbe('[{'), /cannot parse the VXLAN device/);
});

t.test('a correct device needs nothing; a missing one is created, on the bridge, not learning or flooding', async (t) => {
  t.same(planVxlan(GOOD, CONFIG), []);
  t.same(planVxlan(undefined, CONFIG), [{
    problem: 'vxlan-6784 was missing',
    actions: [
      { tool: 'ip', line: 'link add vxlan-6784 type vxlan id 5719636 dstport 6784 nolearning df set local 172.31.60.2' },
      { tool: 'ip', line: 'link set vxlan-6784 mtu 1376 master weave up' },
      { tool: 'bridge', line: 'link set dev vxlan-6784 learning off flood off mcast_flood off bcast_flood off' },
    ],
  }]);
  t.notMatch(planVxlan(undefined, { ...CONFIG, local: '' })[0]!.actions[0]!.line, /local/, 'no local address when none is given');
});

t.test('what cannot be changed in place recreates the device; the rest is fixed in place', async (t) => {
  for (const [change, why] of [[{ vni: 42 }, /VNI 42/], [{ port: 4789 }, /port 4789/], [{ learning: true }, /learning on/], [{ df: 'inherit' }, /df inherit/], [{ kind: 'dummy' }, /a dummy device/], [{ local: undefined }, /local address none/]] as const) {
    const fixes = planVxlan({ ...GOOD, ...change }, CONFIG);
    t.equal(fixes.length, 1);
    t.match(fixes[0]!.problem, why);
    t.same(fixes[0]!.actions[0], { tool: 'ip', line: 'link del vxlan-6784' }, `${JSON.stringify(change)}: deleted first`);
  }
  const problems = (s: Partial<VxlanState>): string[] => planVxlan({ ...GOOD, ...s }, CONFIG).map((f) => f.problem);
  t.same(problems({ mtu: 1500 }), ['MTU of vxlan-6784 was 1500, want 1376']);
  t.same(problems({ up: false }), ['vxlan-6784 was down']);
  t.same(problems({ portFlood: true }), ['bridge port vxlan-6784 learned or flooded']);
  t.same(problems({ portBcastFlood: undefined }), ['bridge port vxlan-6784 learned or flooded'], 'a flag not reported counts as wrong');
  t.same(problems({ master: undefined, portLearning: undefined }), ['vxlan-6784 was on no bridge', 'bridge port flags of vxlan-6784']);
});

t.test('the overlay MTU plus 50 bytes of VXLAN must fit the underlay', async (t) => {
  t.ok(vxlanFits(1376, 1500));
  t.ok(vxlanFits(1450, 1500));
  t.notOk(vxlanFits(1451, 1500));
  t.ok(vxlanFits(8950, 9000));
});
