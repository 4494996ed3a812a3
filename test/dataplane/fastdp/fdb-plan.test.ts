// The forwarding-entry planner without a kernel: desired entries from the MAC table and the
// peers' health, against what `bridge -j fdb show` printed (fastdp-network.test.ts shows the
// lines work on a real bridge).
import t from 'tap';
import fc from 'fast-check';
import { parseFdb, planFdb, type FdbEntry, type FdbPeer, type FdbWanted } from '../../../src/dataplane/fastdp/fdb-plan.js';
import { macFromNumber, parseMac, type Mac } from '../../../src/dataplane/forwarder/mac.js';
import type { PeerName } from '../../../src/net/peer-name.js';

const SELF = '02:00:00:00:3c:01' as PeerName;
const B = '02:00:00:00:3c:02' as PeerName;
const C = '02:00:00:00:3c:03' as PeerName;
const HB_SELF = parseMac('0e:00:00:00:00:01');
const HB_B = parseMac('0e:00:00:00:00:02');
const HB_C = parseMac('0e:00:00:00:00:03');
const POD_B = parseMac('5a:00:00:00:00:0b');
const POD_C = parseMac('5a:00:00:00:00:0c');
const POD_SELF = parseMac('5a:00:00:00:00:01');

const peer = (ip: string, heartbeatMac: Mac, healthy: boolean, offered = true): FdbPeer => ({ ip, heartbeatMac, healthy, offered });

function want(peers: [PeerName, FdbPeer][], macs: [Mac, PeerName][]): FdbWanted {
  return { vxlan: 'vxlan-6784', tap: 'vethwe-tap', selfHeartbeatMac: HB_SELF, peers: new Map(peers), macs: macs.map(([mac, p]) => ({ mac, peer: p })) };
}

/** What the kernel would hold after running `lines` on `have` (the planner's own model of them). */
function applyLines(have: readonly FdbEntry[], lines: readonly string[]): FdbEntry[] {
  const key = (e: { mac: Mac; dev: string; table: string }): string => `${e.mac}|${e.dev}|${e.table}`;
  const m = new Map(have.map((e) => [key(e), e]));
  for (const l of lines) {
    const del = /^fdb del (\S+) dev (\S+) (self|master)$/.exec(l);
    const self = /^fdb replace (\S+) dev (\S+) dst (\S+) self permanent$/.exec(l);
    const master = /^fdb replace (\S+) dev (\S+) master static sticky$/.exec(l);
    if (del) m.delete(key({ mac: parseMac(del[1]!), dev: del[2]!, table: del[3]! }));
    else if (self) m.set(key({ mac: parseMac(self[1]!), dev: self[2]!, table: 'self' }), { mac: parseMac(self[1]!), dev: self[2]!, table: 'self', dst: self[3]! });
    else if (master) m.set(key({ mac: parseMac(master[1]!), dev: master[2]!, table: 'master' }), { mac: parseMac(master[1]!), dev: master[2]!, table: 'master' });
    else throw new Error(`unexpected line ${l}`);
  }
  return [...m.values()];
}

t.test('parses bridge -j fdb show: only the entries it manages', async (t) => {
  const json = JSON.stringify([
    { mac: '33:33:00:00:00:01', ifname: 'weave', flags: ['self'], state: 'permanent' },
    { mac: '5a:00:00:00:00:0b', ifname: 'vxlan-6784', flags: ['sticky'], master: 'weave', state: 'static' },
    { mac: 'aa:5a:32:c1:02:d4', ifname: 'vxlan-6784', flags: [], master: 'weave', state: 'permanent' },
    { mac: '5a:00:00:00:00:0b', ifname: 'vxlan-6784', dst: '172.31.60.2', flags: ['self'], state: 'permanent' },
    { mac: '0e:00:00:00:00:01', ifname: 'vethwe-tap', flags: ['sticky'], master: 'weave', state: 'static' },
    { mac: '5a:00:00:00:00:77', ifname: 'vethwe-tap', flags: [], master: 'weave' },
    { mac: '5a:00:00:00:00:88', ifname: 'vethwepl1234', flags: [], master: 'weave', state: 'static' },
  ]);
  t.same(parseFdb(json, 'vxlan-6784', 'vethwe-tap'), [
    { mac: POD_B, dev: 'vxlan-6784', table: 'master' },
    { mac: POD_B, dev: 'vxlan-6784', table: 'self', dst: '172.31.60.2' },
    { mac: HB_SELF, dev: 'vethwe-tap', table: 'master' },
  ]);
  t.same(parseFdb('', 'vxlan-6784', 'vethwe-tap'), []);
  t.throws(() => parseFdb('{nope', 'vxlan-6784', 'vethwe-tap'), /cannot parse bridge fdb output/);
});

t.test('from nothing: heartbeat MACs of peers offering fastdp, MACs of healthy peers only, our heartbeat on the TAP', async (t) => {
  const plan = planFdb(want([[B, peer('172.31.60.2', HB_B, true)], [C, peer('172.31.60.3', HB_C, false)]],
    [[POD_B, B], [POD_C, C], [POD_SELF, SELF], [parseMac('01:00:5e:00:00:01'), B]]), []);
  t.same(plan.lines, [
    'fdb replace 0e:00:00:00:00:02 dev vxlan-6784 dst 172.31.60.2 self permanent',
    'fdb replace 0e:00:00:00:00:03 dev vxlan-6784 dst 172.31.60.3 self permanent',
    'fdb replace 5a:00:00:00:00:0b dev vxlan-6784 dst 172.31.60.2 self permanent',
    'fdb replace 0e:00:00:00:00:02 dev vxlan-6784 master static sticky',
    'fdb replace 0e:00:00:00:00:03 dev vxlan-6784 master static sticky',
    'fdb replace 5a:00:00:00:00:0b dev vxlan-6784 master static sticky',
    'fdb replace 0e:00:00:00:00:01 dev vethwe-tap master static sticky',
  ], 'C is unhealthy: its pod has no entry, its heartbeat MAC has; no entry for our own or group MACs');
  t.equal(plan.added, 3);
});

t.test('in place: nothing to do; a peer turning unhealthy loses its MACs first from the bridge, then from VXLAN', async (t) => {
  const w = want([[B, peer('172.31.60.2', HB_B, true)]], [[POD_B, B]]);
  const have = applyLines([], planFdb(w, []).lines);
  t.same(planFdb(w, have), { lines: [], added: 0, moved: 0, removed: 0 });
  const down = planFdb(want([[B, peer('172.31.60.2', HB_B, false)]], [[POD_B, B]]), have);
  t.same(down.lines, ['fdb del 5a:00:00:00:00:0b dev vxlan-6784 master', 'fdb del 5a:00:00:00:00:0b dev vxlan-6784 self']);
  t.equal(down.removed, 1);
});

t.test('a MAC that moves to another peer is re-pointed; one that moves here loses its entries', async (t) => {
  const peers: [PeerName, FdbPeer][] = [[B, peer('172.31.60.2', HB_B, true)], [C, peer('172.31.60.3', HB_C, true)]];
  const have = applyLines([], planFdb(want(peers, [[POD_B, B]]), []).lines);
  const moved = planFdb(want(peers, [[POD_B, C]]), have);
  t.same(moved.lines, ['fdb replace 5a:00:00:00:00:0b dev vxlan-6784 dst 172.31.60.3 self permanent']);
  t.equal(moved.moved, 1);
  const home = planFdb(want(peers, [[POD_B, SELF]]), have);
  t.same(home.lines, ['fdb del 5a:00:00:00:00:0b dev vxlan-6784 master', 'fdb del 5a:00:00:00:00:0b dev vxlan-6784 self']);
});

t.test('a peer that goes: its heartbeat MAC and its MACs go; stray static TAP entries go', async (t) => {
  const have = applyLines([], planFdb(want([[B, peer('172.31.60.2', HB_B, true)]], [[POD_B, B]]), []).lines);
  const stray: FdbEntry = { mac: parseMac('0e:99:00:00:00:01'), dev: 'vethwe-tap', table: 'master' };
  const plan = planFdb(want([], [[POD_B, B]]), [...have, stray]);
  t.same(new Set(applyLines([...have, stray], plan.lines)), new Set([{ mac: HB_SELF, dev: 'vethwe-tap', table: 'master' }]));
});

t.test('property: after applying the plan, the next plan is empty and the entries are exactly the wanted ones', async (t) => {
  const peerNames = [B, C, '02:00:00:00:3c:04' as PeerName];
  const arbPeers = fc.array(fc.tuple(fc.constantFrom(...peerNames), fc.boolean(), fc.boolean(), fc.integer({ min: 2, max: 9 })), { maxLength: 3 });
  const arbMacs = fc.array(fc.tuple(fc.integer({ min: 0, max: 15 }), fc.constantFrom(SELF, ...peerNames)), { maxLength: 20 });
  const arbHave = fc.array(fc.tuple(fc.integer({ min: 0, max: 15 }), fc.constantFrom('vxlan-6784', 'vethwe-tap'), fc.constantFrom('self', 'master'), fc.integer({ min: 2, max: 9 })), { maxLength: 20 });
  fc.assert(fc.property(arbPeers, arbMacs, arbHave, (ps, ms, hs) => {
    const peers = new Map<PeerName, FdbPeer>();
    for (const [name, offered, healthy, ip] of ps) {
      peers.set(name, peer(`172.31.60.${ip}`, parseMac(`0e:00:00:00:00:${name.slice(-2)}`), offered && healthy, offered));
    }
    const mac = (i: number): Mac => macFromNumber(0x5a0000000000 + i);
    const table = new Map<Mac, PeerName>(ms.map(([i, p]) => [mac(i), p])); // one holder per MAC, as in the MAC table
    const w: FdbWanted = { vxlan: 'vxlan-6784', tap: 'vethwe-tap', selfHeartbeatMac: HB_SELF, peers, macs: [...table].map(([m, p]) => ({ mac: m, peer: p })) };
    const have: FdbEntry[] = [];
    const seen = new Set<string>();
    for (const [i, dev, table, ip] of hs) {
      if (dev === 'vethwe-tap' && table === 'self') continue;
      const k = `${i}|${dev}|${table}`;
      if (seen.has(k)) continue;
      seen.add(k);
      have.push(table === 'self' ? { mac: mac(i), dev, table, dst: `172.31.60.${ip}` } : { mac: mac(i), dev, table });
    }
    const after = applyLines(have, planFdb(w, have).lines);
    if (planFdb(w, after).lines.length !== 0) return false;
    // Every VXLAN entry is for a MAC of a healthy peer or the heartbeat MAC of an offering peer, and points at it.
    const last = table;
    for (const e of after) {
      if (e.dev === 'vethwe-tap') {
        if (e.mac !== HB_SELF) return false;
        continue;
      }
      const hbOf = [...peers.values()].find((p) => p.offered && p.heartbeatMac === e.mac);
      const holder = peers.get(last.get(e.mac) ?? SELF);
      const target = hbOf ?? (holder?.healthy ? holder : undefined);
      if (target === undefined) return false;
      if (e.table === 'self' && e.dst !== target.ip) return false;
    }
    return true;
  }), { numRuns: 500 });
  t.pass('500 random tables, peers and kernel states');
});
