// Which captured frames the TAP reader takes (pure): planSnapshot from the main thread's state,
// and CaptureShortcut's per-frame decision on it.
import t from 'tap';
import { planSnapshot, snapshotSignature, type LinkView, type SnapshotLink } from '../../../src/dataplane/sender/snapshot.js';
import { CaptureShortcut } from '../../../src/dataplane/sender/shortcut.js';
import { parseMac, BROADCAST_MAC, type Mac } from '../../../src/dataplane/forwarder/mac.js';
import type { PeerName } from '../../../src/net/peer-name.js';

const SELF = '02:00:00:00:00:01' as PeerName;
const B = '02:00:00:00:00:02' as PeerName;
const C = '02:00:00:00:00:03' as PeerName;
const D = '02:00:00:00:00:04' as PeerName;
const number = (p: PeerName): number => parseInt(p.replace(/:/g, ''), 16);

const LOCAL = parseMac('0a:00:00:00:00:01');
const AT_B = parseMac('0a:00:00:00:00:02');
const AT_C = parseMac('0a:00:00:00:00:03');
const AT_D = parseMac('0a:00:00:00:00:04');
const MULTICAST = parseMac('01:00:5e:00:00:01');

function link(peer: PeerName, uid: bigint): SnapshotLink {
  return { key: uid.toString(), connectionUid: uid, weDialled: true, stride: 1436, remoteIp: `172.31.0.${number(peer) & 0xff}`, remotePort: 6783, sequence: new SharedArrayBuffer(8) };
}

const linkB = link(B, 11n);
const linkC = link(C, 12n);

function input(overrides: { links?: Map<PeerName, LinkView>; unicast?: Map<PeerName, PeerName>; reserved?: (m: Mac) => boolean } = {}) {
  return {
    self: SELF,
    macs: [
      { mac: LOCAL, peer: SELF },
      { mac: AT_B, peer: B },
      { mac: AT_C, peer: C },
      { mac: AT_D, peer: D },
      { mac: MULTICAST, peer: B }, // never learned in practice; never the reader's anyway
    ],
    // D is reached through B; C is directly connected.
    unicast: overrides.unicast ?? new Map<PeerName, PeerName>([[B, B], [C, C], [D, B]]),
    links: overrides.links ?? new Map<PeerName, LinkView>([[B, { established: true, link: linkB }], [C, { established: true, link: linkC }]]),
    peerNumber: number,
    ...(overrides.reserved ? { reserved: overrides.reserved } : {}),
  };
}

t.test('remote MACs with a route over an established link are the reader\'s, with the final peer in the header', async (t) => {
  const s = planSnapshot(input());
  t.equal(s.self, number(SELF));
  t.same(s.locals, [LOCAL]);
  t.same(s.routes, [
    { mac: AT_B, link: '11', dstPeer: number(B) },
    { mac: AT_C, link: '12', dstPeer: number(C) },
    { mac: AT_D, link: '11', dstPeer: number(D) }, // relayed by B: next hop B, destination D
  ]);
  t.same(s.links.map((l) => l.key), ['11', '12']);
});

t.test('no route, a link not established or missing, a reserved MAC: the main thread\'s', async (t) => {
  const noRouteToD = planSnapshot(input({ unicast: new Map([[B, B], [C, C]]) }));
  t.same(noRouteToD.routes.map((r) => r.mac), [AT_B, AT_C], 'no route to D: frames to its MAC flood from the main thread');
  const cDown = planSnapshot(input({ links: new Map([[B, { established: true, link: linkB }], [C, { established: false, link: linkC }]]) }));
  t.same(cDown.routes.map((r) => r.mac), [AT_B, AT_D]);
  t.same(cDown.links.map((l) => l.key), ['11'], 'a link nothing is sent on is not in the snapshot');
  const noLinks = planSnapshot(input({ links: new Map() }));
  t.same(noLinks.routes, []);
  t.same(noLinks.locals, [LOCAL]);
  const reserved = planSnapshot(input({ reserved: (m) => m === AT_C || m === LOCAL }));
  t.same(reserved.routes.map((r) => r.mac), [AT_B, AT_D]);
  t.same(reserved.locals, []);
});

t.test('the signature changes exactly when the snapshot does', async (t) => {
  const a = snapshotSignature(planSnapshot(input()));
  t.equal(snapshotSignature(planSnapshot(input())), a);
  t.not(snapshotSignature(planSnapshot(input({ unicast: new Map([[B, B], [C, C], [D, C]]) }))), a, 'a route moved');
  t.not(snapshotSignature(planSnapshot(input({ links: new Map([[B, { established: true, link: linkB }], [C, { established: true, link: { ...linkC, remotePort: 6784 } }]]) }))), a, 'a link moved');
  t.not(snapshotSignature(planSnapshot({ ...input(), macs: [{ mac: AT_B, peer: B }] })), a, 'MACs went');
});

t.test('the reader\'s decision: a local source to a routed destination, nothing else', async (t) => {
  const s = new CaptureShortcut<string>(1000);
  t.equal(s.active, false);
  t.equal(s.decide(AT_B, LOCAL), undefined, 'nothing before a snapshot');
  s.apply(new Map([[AT_B, 'to B']]), new Set([LOCAL]));
  t.equal(s.active, true);
  t.equal(s.decide(AT_B, LOCAL), 'to B');
  t.equal(s.decide(AT_C, LOCAL), undefined, 'unknown destination: the main thread floods it');
  t.equal(s.decide(BROADCAST_MAC, LOCAL), undefined, 'broadcast');
  t.equal(s.decide(AT_B, AT_C), undefined, 'a source the main thread does not hold as ours: it must learn it');
  t.equal(s.decide(LOCAL, LOCAL), undefined, 'local destination');
  s.apply(new Map([[AT_B, 'to B']]), new Set());
  t.equal(s.decide(AT_B, LOCAL), undefined, 'a MAC that stopped being ours');
  t.equal(s.active, false);
});

t.test('a local MAC is reported alive at most once per interval', async (t) => {
  const s = new CaptureShortcut<string>(1000);
  s.apply(new Map([[AT_B, 'to B']]), new Set([LOCAL, AT_D]));
  t.equal(s.noteDue(LOCAL, 5000), true, 'first frame');
  t.equal(s.noteDue(LOCAL, 5500), false);
  t.equal(s.noteDue(AT_D, 5500), true, 'each MAC on its own');
  t.equal(s.noteDue(LOCAL, 5999), false);
  t.equal(s.noteDue(LOCAL, 6000), true, 'a second later');
  s.apply(new Map([[AT_B, 'to B']]), new Set([AT_D]));
  s.apply(new Map([[AT_B, 'to B']]), new Set([LOCAL, AT_D]));
  t.equal(s.noteDue(LOCAL, 6001), true, 'a MAC that left and came back is reported at once');
  t.equal(s.noteDue(AT_D, 6001), false);
});
