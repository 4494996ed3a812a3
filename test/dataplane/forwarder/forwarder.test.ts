// One forwarder's decisions, case by case, on a line a - b - c (we are b) and a star.
import t from 'tap';
import { peerNameFromNumber, type PeerName } from '../../../src/net/peer-name.js';
import { Forwarder, type ForwardingRoutes } from '../../../src/dataplane/forwarder/forwarder.js';
import { describeForwarderEvent } from '../../../src/dataplane/forwarder/events.js';
import { BROADCAST_MAC, macFromNumber, parseMac, type Mac } from '../../../src/dataplane/forwarder/mac.js';

const A = peerNameFromNumber(0x0200_0000_000a);
const B = peerNameFromNumber(0x0200_0000_000b);
const C = peerNameFromNumber(0x0200_0000_000c);
const D = peerNameFromNumber(0x0200_0000_000d);
const mac = (i: number): Mac => macFromNumber(0x0a58_0000_0000 + i);

/** b's view of the line a - b - c. */
const line: ForwardingRoutes = {
  unicast: new Map([[A, A], [C, C]]),
  broadcast: (source: PeerName) => (source === B ? [A, C] : source === A ? [C] : source === C ? [A] : []),
};

const make = (routes: ForwardingRoutes = line) => new Forwarder({ self: B, routes, macTable: { maxAgeMs: 10_000, localTakeoverMs: 1000 } });

t.test('captured: flood unknown and broadcast to our tree, each copy addressed to its hop', async (t) => {
  const f = make();
  const d = f.onCaptured({ src: mac(1), dst: BROADCAST_MAC }, 0);
  t.same(d, {
    inject: false,
    sends: [{ nextHop: A, srcPeer: B, dstPeer: A }, { nextHop: C, srcPeer: B, dstPeer: C }],
    dropped: undefined,
    events: [{ kind: 'local-mac', mac: mac(1) }],
  });
  t.same(f.onCaptured({ src: mac(1), dst: mac(99) }, 1).sends.map((s) => s.nextHop), [A, C], 'unknown unicast floods');
  t.same(f.onCaptured({ src: mac(1), dst: mac(99) }, 1).events, [], 'a known local MAC is not news');
});

t.test('captured: unicast to a remote MAC goes to the next hop, addressed to its peer', async (t) => {
  const routes: ForwardingRoutes = { unicast: new Map([[A, A], [C, C], [D, C]]), broadcast: () => [A, C] };
  const f = make(routes);
  f.onReceived({ src: mac(4), dst: BROADCAST_MAC }, { srcPeer: D, dstPeer: B }, C, 0);
  t.same(f.onCaptured({ src: mac(1), dst: mac(4) }, 1).sends, [{ nextHop: C, srcPeer: B, dstPeer: D }]);
});

t.test('captured: drops, with the reason', async (t) => {
  const f = make();
  f.onCaptured({ src: mac(2), dst: BROADCAST_MAC }, 0);
  const stp = f.onCaptured({ src: mac(1), dst: parseMac('01:80:c2:00:00:00') }, 0);
  t.same([stp.dropped, stp.sends, stp.events], ['bridge-reserved', [], [{ kind: 'local-mac', mac: mac(1) }]], 'STP: learned, not sent');
  t.equal(f.onCaptured({ src: mac(1), dst: mac(2) }, 0).dropped, 'local-destination');
  t.equal(f.onCaptured({ src: BROADCAST_MAC, dst: mac(2) }, 0).dropped, 'group-source');

  f.onReceived({ src: mac(3), dst: BROADCAST_MAC }, { srcPeer: A, dstPeer: B }, A, 100);
  const conflict = f.onCaptured({ src: mac(3), dst: BROADCAST_MAC }, 500);
  t.same([conflict.dropped, conflict.sends, conflict.events], ['mac-conflict', [], [{ kind: 'mac-conflict', mac: mac(3), peer: A }]]);
  t.equal(describeForwarderEvent(conflict.events[0]!), `Captured frame from MAC (0a:58:00:00:00:03) associated with another peer ${A}`);
  const moved = f.onCaptured({ src: mac(3), dst: BROADCAST_MAC }, 1100);
  t.same(moved.events, [{ kind: 'local-mac-moved', mac: mac(3), from: A }]);
  t.equal(moved.sends.length, 2);
});

t.test('captured: a MAC at a peer we have no route to floods (stale knowledge), and peerGone forgets it', async (t) => {
  const f = make();
  f.onReceived({ src: mac(4), dst: BROADCAST_MAC }, { srcPeer: A, dstPeer: B }, A, 0);
  t.same(f.onCaptured({ src: mac(1), dst: mac(4) }, 1).sends, [{ nextHop: A, srcPeer: B, dstPeer: A }]);
  f.setRoutes({ unicast: new Map([[C, C]]), broadcast: () => [C] });
  t.same(f.onCaptured({ src: mac(1), dst: mac(4) }, 2).sends, [{ nextHop: C, srcPeer: B, dstPeer: C }], 'no route to a: flood');
  t.equal(f.peerGone(A), 1);
  t.equal(f.macs.lookup(mac(4), 3), undefined);
});

t.test('received for another peer: relayed by the unicast route, nothing learned', async (t) => {
  const f = make();
  const d = f.onReceived({ src: mac(1), dst: mac(2) }, { srcPeer: A, dstPeer: C }, A, 0);
  t.same(d, { inject: false, sends: [{ nextHop: C, srcPeer: A, dstPeer: C }], dropped: undefined, events: [] });
  t.equal(f.macs.size, 0);
  t.equal(f.onReceived({ src: mac(1), dst: mac(2) }, { srcPeer: A, dstPeer: D }, A, 0).dropped, 'no-route');
  t.equal(f.onReceived({ src: mac(1), dst: mac(2) }, { srcPeer: C, dstPeer: A }, A, 0).dropped, 'would-return', 'not bounced back to where it came from');
  t.equal(f.onReceived({ src: mac(1), dst: mac(2) }, { srcPeer: B, dstPeer: B }, A, 0).dropped, 'own-frame');
});

t.test('received for us: learned, injected, flooded on along the source tree unless the MAC is ours', async (t) => {
  const f = make();
  const d = f.onReceived({ src: mac(1), dst: BROADCAST_MAC }, { srcPeer: A, dstPeer: B }, A, 0);
  t.same(d, {
    inject: true,
    sends: [{ nextHop: C, srcPeer: A, dstPeer: C }],
    dropped: undefined,
    events: [{ kind: 'remote-mac', mac: mac(1), peer: A }],
  });
  t.equal(describeForwarderEvent(d.events[0]!, (p) => `${p}(node-a)`), `Discovered remote MAC 0a:58:00:00:00:01 at ${A}(node-a)`);

  f.onCaptured({ src: mac(2), dst: BROADCAST_MAC }, 1);
  const toLocal = f.onReceived({ src: mac(1), dst: mac(2) }, { srcPeer: A, dstPeer: B }, A, 2);
  t.same([toLocal.inject, toLocal.sends, toLocal.events], [true, [], []], 'for a local MAC: injected only');

  const moved = f.onReceived({ src: mac(1), dst: BROADCAST_MAC }, { srcPeer: C, dstPeer: B }, C, 3);
  t.same(moved.events, [{ kind: 'remote-mac', mac: mac(1), peer: C, was: A }]);
  t.equal(describeForwarderEvent(moved.events[0]!), `Discovered remote MAC 0a:58:00:00:00:01 at ${C} (was at ${A})`);
  t.same(moved.sends, [{ nextHop: A, srcPeer: C, dstPeer: A }]);

  // The source tree may (while routes change) list the hop it came from: it is not sent back.
  const star = make({ unicast: new Map([[A, A], [C, C]]), broadcast: () => [A, C] });
  t.same(star.onReceived({ src: mac(5), dst: BROADCAST_MAC }, { srcPeer: D, dstPeer: B }, A, 0).sends, [{ nextHop: C, srcPeer: D, dstPeer: C }]);
});
