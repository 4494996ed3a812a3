// The MAC table: expiry on the caller's clock (no sleeping), a size bound, local and remote
// learning with conflicts and moves; and, against a plain model, any sequence of operations.
import t from 'tap';
import fc from 'fast-check';
import { peerNameFromNumber, type PeerName } from '../../../src/net/peer-name.js';
import { macFromNumber, type Mac } from '../../../src/dataplane/forwarder/mac.js';
import { DEFAULT_MAC_MAX_AGE_MS, MacTable } from '../../../src/dataplane/forwarder/mac-table.js';

const US = peerNameFromNumber(0x0200_0000_0001);
const P = peerNameFromNumber(0x0200_0000_0002);
const Q = peerNameFromNumber(0x0200_0000_0003);
const mac = (i: number): Mac => macFromNumber(0x0a58_0000_0000 + i);

t.test('entries expire after maxAge without a refresh, whatever the clock starts at', async (t) => {
  for (const start of [0, 5_000_000]) {
    const table = new MacTable(US, { maxAgeMs: 1000 });
    t.same(table.learnRemote(mac(1), P, start), { kind: 'new' });
    t.equal(table.lookup(mac(1), start + 1000), P, 'still there at exactly maxAge');
    t.equal(table.lookup(mac(1), start + 1001), undefined, 'gone just after');
    t.same(table.learnRemote(mac(1), P, start + 1002), { kind: 'new' }, 'new again after expiry');
  }
  t.equal(new MacTable(US).maxAgeMs, DEFAULT_MAC_MAX_AGE_MS, "Weave's 10 minutes by default");
});

t.test('a refresh restarts the clock; a lookup does not', async (t) => {
  const table = new MacTable(US, { maxAgeMs: 1000 });
  table.learnLocal(mac(1), 0);
  t.same(table.learnLocal(mac(1), 800), { kind: 'known' });
  t.equal(table.lookup(mac(1), 1700), US, 'refreshed at 800');
  t.equal(table.lookup(mac(1), 1801), undefined, 'lookups at 1700 did not refresh it');
  t.same(table.entries(1801), []);
});

t.test('the size bound drops the least recently refreshed entry', async (t) => {
  const table = new MacTable(US, { maxEntries: 3 });
  table.learnRemote(mac(1), P, 0);
  table.learnRemote(mac(2), P, 1);
  table.learnRemote(mac(3), P, 2);
  table.learnRemote(mac(1), P, 3); // refreshed: now the newest
  table.learnRemote(mac(4), Q, 4);
  t.equal(table.size, 3);
  t.equal(table.lookup(mac(2), 5), undefined, 'the oldest went');
  t.same(table.entries(5).map((e) => [e.mac, e.peer, e.ageMs]), [[mac(4), Q, 1], [mac(1), P, 2], [mac(3), P, 3]]);
});

t.test('local learning: new, known, conflict while the other peer is fresh, then moved', async (t) => {
  const table = new MacTable(US, { maxAgeMs: 60_000, localTakeoverMs: 2000 });
  t.same(table.learnLocal(mac(1), 0), { kind: 'new' });
  t.same(table.learnLocal(mac(1), 10), { kind: 'known' });
  table.learnRemote(mac(2), P, 100);
  t.same(table.learnLocal(mac(2), 2099), { kind: 'conflict', peer: P });
  t.equal(table.lookup(mac(2), 2099), P, 'a conflict changes nothing');
  t.same(table.learnLocal(mac(2), 2100), { kind: 'moved', from: P });
  t.equal(table.lookup(mac(2), 2100), US);

  const weave = new MacTable(US, { maxAgeMs: 60_000, localTakeoverMs: Infinity });
  weave.learnRemote(mac(3), P, 0);
  t.same(weave.learnLocal(mac(3), 59_999), { kind: 'conflict', peer: P }, 'Infinity: a conflict for as long as the entry lives');
  t.same(weave.learnLocal(mac(3), 60_001), { kind: 'new' });
});

t.test('remote learning: a newer sighting always wins', async (t) => {
  const table = new MacTable(US);
  table.learnLocal(mac(1), 0);
  t.same(table.learnRemote(mac(1), P, 1), { kind: 'moved', from: US });
  t.same(table.learnRemote(mac(1), P, 2), { kind: 'known' });
  t.same(table.learnRemote(mac(1), Q, 3), { kind: 'moved', from: P });
  t.equal(table.lookup(mac(1), 3), Q);
});

t.test('forgetPeer and purgeStale', async (t) => {
  const table = new MacTable(US, { maxAgeMs: 100 });
  table.learnRemote(mac(1), P, 0);
  table.learnRemote(mac(2), Q, 0);
  table.learnRemote(mac(3), P, 50);
  t.same(table.forgetPeer(P).sort(), [mac(1), mac(3)]);
  t.equal(table.lookup(mac(1), 60), undefined);
  t.equal(table.lookup(mac(2), 60), Q);
  table.learnLocal(mac(4), 150);
  t.equal(table.size, 2);
  t.equal(table.purgeStale(150), 1, 'mac(2), learned at 0, is gone');
  t.equal(table.size, 1);
});

t.test('invalid options and times are refused', async (t) => {
  t.throws(() => new MacTable(US, { maxAgeMs: 0 }), RangeError);
  t.throws(() => new MacTable(US, { maxEntries: 1.5 }), RangeError);
  t.throws(() => new MacTable(US, { localTakeoverMs: -1 }), RangeError);
  t.throws(() => new MacTable(US).lookup(mac(1), NaN), RangeError);
});

// ---- against a model: a Map of mac -> {peer, lastRefresh}, big enough that nothing is evicted ----

type Op =
  | { op: 'local'; mac: number; dt: number }
  | { op: 'remote'; mac: number; peer: number; dt: number }
  | { op: 'lookup'; mac: number; dt: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('local' as const), mac: fc.nat(5), dt: fc.nat(700) }),
  fc.record({ op: fc.constant('remote' as const), mac: fc.nat(5), peer: fc.nat(2), dt: fc.nat(700) }),
  fc.record({ op: fc.constant('lookup' as const), mac: fc.nat(5), dt: fc.nat(700) }),
);

t.test('any sequence of operations matches a plain model', async (t) => {
  const MAX_AGE = 1000;
  const TAKEOVER = 300;
  const peers: PeerName[] = [US, P, Q];
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      const table = new MacTable(US, { maxAgeMs: MAX_AGE, localTakeoverMs: TAKEOVER, maxEntries: 64 });
      const model = new Map<number, { peer: PeerName; at: number }>();
      const live = (m: number, now: number) => {
        const e = model.get(m);
        return e !== undefined && now - e.at <= MAX_AGE ? e : undefined;
      };
      let now = 0;
      for (const o of ops) {
        now += o.dt;
        const m = mac(o.mac);
        const held = live(o.mac, now);
        if (o.op === 'lookup') {
          if (table.lookup(m, now) !== held?.peer) return false;
        } else if (o.op === 'remote') {
          const peer = peers[o.peer]!;
          const got = table.learnRemote(m, peer, now);
          const want = held === undefined ? { kind: 'new' } : held.peer === peer ? { kind: 'known' } : { kind: 'moved', from: held.peer };
          if (JSON.stringify(got) !== JSON.stringify(want)) return false;
          model.set(o.mac, { peer, at: now });
        } else {
          const got = table.learnLocal(m, now);
          let want: object;
          if (held === undefined) want = { kind: 'new' };
          else if (held.peer === US) want = { kind: 'known' };
          else if (now - held.at < TAKEOVER) want = { kind: 'conflict', peer: held.peer };
          else want = { kind: 'moved', from: held.peer };
          if (JSON.stringify(got) !== JSON.stringify(want)) return false;
          if (!('peer' in want)) model.set(o.mac, { peer: US, at: now });
        }
      }
      return true;
    }),
  );
  t.pass('checked');
});
