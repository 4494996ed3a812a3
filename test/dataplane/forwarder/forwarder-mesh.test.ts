// Forwarders of a whole mesh, on random connected topologies with the real routes: a broadcast
// reaches every other peer's TAP exactly once; a unicast to a learned MAC reaches the right peer
// exactly once, relayed by peers that do not know the MAC; a MAC that moves is relearned.
import t from 'tap';
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import type { PeerName } from '../../../src/net/peer-name.js';
import { BROADCAST_MAC, macFromNumber, type Mac } from '../../../src/dataplane/forwarder/mac.js';
import { graphArb, MeshSim, type Delivery } from './mesh-sim.js';

const MAX_AGE = 60_000;
const TAKEOVER = 1_000;

/** A unicast MAC of a pod (locally administered, I/G bit clear). */
const podMac = (i: number): Mac => macFromNumber(0x0a58_0000_0000 + i);
/** Destinations that must flood: broadcast, IPv4/IPv6 multicast, and a unicast MAC nobody has. */
const floodDst = fc.constantFrom<Mac>(BROADCAST_MAC, macFromNumber(0x0100_5e00_00fb), macFromNumber(0x3333_0000_0001), podMac(999_999));

function expectEveryoneElseOnce(sim: MeshSim, source: PeerName, d: Delivery): void {
  const want = new Map(sim.names.filter((p) => p !== source).map((p) => [p, 1]));
  deepStrictEqual(new Map([...d.injected].sort()), new Map([...want].sort()), 'every other peer injects exactly once, the source never');
}

t.test('a broadcast, multicast or unknown unicast reaches every other peer exactly once', async (t) => {
  fc.assert(
    fc.property(graphArb(16), fc.nat(), floodDst, (g, pick, dst) => {
      const sim = new MeshSim(g, { maxAgeMs: MAX_AGE, localTakeoverMs: TAKEOVER, maxEntries: 64 });
      const source = sim.names[pick % g.n]!;
      const src = podMac(1);
      const d = sim.capture(source, { src, dst }, 1_000);
      equal(d.captured.dropped, undefined);
      deepStrictEqual(d.captured.events, [{ kind: 'local-mac', mac: src }]);
      expectEveryoneElseOnce(sim, source, d);
      // Everyone heard of the sender's MAC, once, and knows where it lives.
      for (const p of sim.names) {
        if (p === source) continue;
        equal(sim.fwd(p).macs.lookup(src, 1_000), source);
        const events = d.hops.filter((h) => h.at === p).flatMap((h) => h.decision.events);
        deepStrictEqual(events, [{ kind: 'remote-mac', mac: src, peer: source }]);
      }
      // A second broadcast from the same MAC: delivered the same way, nothing new to log.
      const again = sim.capture(source, { src, dst: BROADCAST_MAC }, 2_000);
      expectEveryoneElseOnce(sim, source, again);
      equal(again.hops.flatMap((h) => h.decision.events).length + again.captured.events.length, 0);
    }),
  );
  t.pass('checked');
});

t.test('a unicast to a learned MAC reaches its peer once, relayed by peers that do not know it', async (t) => {
  fc.assert(
    fc.property(graphArb(16), fc.nat(), fc.nat(), (g, i, j) => {
      const sim = new MeshSim(g, { maxAgeMs: MAX_AGE, localTakeoverMs: TAKEOVER, maxEntries: 64 });
      const names = sim.names;
      const owner = names[i % g.n]!;
      const sender = names[(i + 1 + (j % (g.n - 1))) % g.n]!;
      const a = podMac(1); // lives at owner
      const b = podMac(2); // lives at sender
      // The owner's pod broadcasts (an ARP reply would do): the sender learns where `a` is.
      sim.capture(owner, { src: a, dst: BROADCAST_MAC }, 0);
      equal(sim.fwd(sender).macs.lookup(a, 0), owner);
      // Every other peer forgets all it learned: the relays know no MAC at all.
      for (const p of names) if (p !== owner && p !== sender) sim.reset(p);

      const d = sim.capture(sender, { src: b, dst: a }, 10);
      equal(d.captured.sends.length, 1, 'one copy leaves the sender');
      deepStrictEqual(d.captured.sends[0]!.dstPeer, owner);
      deepStrictEqual([...d.injected], [[owner, 1]], 'only the owner injects it, once');
      const relays = d.hops.filter((h) => h.at !== owner);
      ok(relays.every((h) => !h.decision.inject && h.decision.sends.length === 1 && h.decision.events.length === 0));
      for (const h of relays) equal(sim.fwd(h.at).macs.size, 0, `${h.at} relayed without learning anything`);
      equal(d.hops.at(-1)?.at, owner, 'the owner is the last hop');
      equal(d.hops.at(-1)?.decision.sends.length, 0, 'the owner does not flood a frame for its own MAC');
      equal(sim.fwd(owner).macs.lookup(b, 10), sender, 'the owner learned where the reply goes');
      // The path is the route's: as many hops as the sender's routes are long.
      let hops = 0;
      for (let cur = sender; cur !== owner; cur = sim.fwd(cur).routes.unicast.get(owner)!) hops++;
      equal(d.hops.length, hops);
    }),
  );
  t.pass('checked');
});

t.test('a MAC that moves to another peer is relearned everywhere and unicasts follow it', async (t) => {
  fc.assert(
    fc.property(graphArb(12), fc.nat(), fc.nat(), fc.nat(), (g, i, j, k) => {
      const sim = new MeshSim(g, { maxAgeMs: MAX_AGE, localTakeoverMs: TAKEOVER, maxEntries: 64 });
      const names = sim.names;
      const first = names[i % g.n]!;
      const second = names[(i + 1 + (j % (g.n - 1))) % g.n]!;
      const sender = names[k % g.n]!;
      const m = podMac(7);
      sim.capture(first, { src: m, dst: BROADCAST_MAC }, 0);
      for (const p of names) equal(sim.fwd(p).macs.lookup(m, 0), first);

      // Right away, a frame from the same MAC on another bridge is a conflict: dropped, reported.
      const early = sim.capture(second, { src: m, dst: BROADCAST_MAC }, TAKEOVER - 1);
      equal(early.captured.dropped, 'mac-conflict');
      deepStrictEqual(early.captured.events, [{ kind: 'mac-conflict', mac: m, peer: first }]);
      equal(early.injected.size, 0);

      // Once the old place has been quiet for a while, the MAC has moved.
      const moved = sim.capture(second, { src: m, dst: BROADCAST_MAC }, TAKEOVER + 1);
      deepStrictEqual(moved.captured.events, [{ kind: 'local-mac-moved', mac: m, from: first }]);
      expectEveryoneElseOnce(sim, second, moved);
      for (const p of names) {
        if (p === second) continue;
        equal(sim.fwd(p).macs.lookup(m, TAKEOVER + 1), second, `${p} relearned it`);
        const events = moved.hops.filter((h) => h.at === p).flatMap((h) => h.decision.events);
        deepStrictEqual(events, [{ kind: 'remote-mac', mac: m, peer: second, was: first }]);
      }
      // A unicast to it now lands at its new peer (or stays on the sender's bridge).
      const u = sim.capture(sender, { src: podMac(8), dst: m }, TAKEOVER + 2);
      if (sender === second) {
        equal(u.captured.dropped, 'local-destination');
      } else {
        deepStrictEqual([...u.injected], [[second, 1]]);
      }
    }),
  );
  t.pass('checked');
});

t.test('expired MACs flood again, and reach their peer once more', async (t) => {
  fc.assert(
    fc.property(graphArb(10), fc.nat(), (g, i) => {
      const sim = new MeshSim(g, { maxAgeMs: MAX_AGE, localTakeoverMs: TAKEOVER, maxEntries: 64 });
      const names = sim.names;
      const owner = names[i % g.n]!;
      const sender = names[(i + 1) % g.n]!;
      sim.capture(owner, { src: podMac(1), dst: BROADCAST_MAC }, 0);
      const fresh = sim.capture(sender, { src: podMac(2), dst: podMac(1) }, MAX_AGE);
      equal(fresh.captured.sends.length, 1, 'known: a single unicast');
      const stale = sim.capture(sender, { src: podMac(2), dst: podMac(1) }, MAX_AGE + 1);
      equal(stale.captured.sends[0]?.dstPeer, stale.captured.sends[0]?.nextHop, 'expired: flooded, each copy to its hop');
      equal(stale.injected.get(owner), 1, 'the owner still gets it, once');
      ok([...stale.injected.values()].every((n) => n === 1), 'nobody twice');
    }),
  );
  t.pass('checked');
});
