import t from 'tap';
import { ConnectionMakerCore, type PlanInput } from '../../src/mesh/connection-maker.js';
import type { PeerName } from '../../src/net/peer-name.js';

const A = '02:00:00:00:00:0a' as PeerName;
const B = '02:00:00:00:00:0b' as PeerName;

function input(now: number, over: Partial<PlanInput> = {}): PlanInput {
  return { now, connectedPeers: new Set(), discovered: new Map(), connectionCount: 0, connLimit: 200, ...over };
}

t.test('dials direct targets once, backs off with jitter after failures', async (t) => {
  const m = new ConnectionMakerCore(() => 0.5); // jitter factor 1.0
  m.connect(['10.0.0.1:6783']);
  t.same(m.plan(input(0)).dial, ['10.0.0.1:6783']);
  t.same(m.plan(input(1)).dial, [], 'not twice while the attempt runs');
  t.equal(m.status(new Set())[0]?.state, 'connecting');
  m.attemptFailed('10.0.0.1:6783', 'connection refused', 1000);
  const s = m.status(new Set())[0]!;
  t.equal(s.state, 'failed');
  t.equal(s.lastError, 'connection refused');
  t.equal(s.tryAfter, 3000, 'first retry after ~2 s');
  const p = m.plan(input(2000));
  t.same(p.dial, []);
  t.equal(p.wakeAt, 3000);
  t.same(m.plan(input(3000)).dial, ['10.0.0.1:6783']);
  t.equal(m.status(new Set())[0]?.state, 'retrying');
  m.attemptFailed('10.0.0.1:6783', 'refused', 3000);
  t.equal(m.status(new Set())[0]?.tryAfter, 3000 + 3000, 'interval grew x1.5');
});

t.test('jitter stays within [i/2, 3i/2) and the back-off is capped', async (t) => {
  for (const r of [0, 0.999]) {
    const m = new ConnectionMakerCore(() => r);
    m.connect(['h:1']);
    let now = 0;
    let last = 0;
    for (let i = 0; i < 40; i++) {
      m.plan(input(now));
      m.attemptFailed('h:1', 'x', now);
      const wait = m.status(new Set())[0]!.tryAfter! - now;
      t.ok(wait <= 6 * 60_000 * 1.5, `wait ${wait} capped`);
      last = wait;
      now += wait;
    }
    t.ok(last >= 6 * 60_000 * 0.5, 'reaches the cap');
  }
});

t.test('connect-to-self is never retried', async (t) => {
  const m = new ConnectionMakerCore(() => 0.5);
  m.connect(['127.0.0.1:6783']);
  m.plan(input(0));
  m.attemptFailed('127.0.0.1:6783', 'cannot connect to ourself', 10, false);
  t.same(m.plan(input(1e9)).dial, []);
  const s = m.status(new Set())[0]!;
  t.equal(s.tryAfter, undefined, 'retry: never');
  t.equal(s.lastError, 'cannot connect to ourself');
});

t.test('does not dial a peer it is already connected to, nor beyond the limit', async (t) => {
  const m = new ConnectionMakerCore(() => 0.5);
  m.connect(['10.0.0.1:6783', '10.0.0.2:6783']);
  t.same(m.plan(input(0, { connLimit: 1 })).dial, ['10.0.0.1:6783'], 'one slot');
  m.connected('10.0.0.1:6783', A, 5);
  const p = m.plan(input(10, { connLimit: 1, connectionCount: 1, connectedPeers: new Set([A]) }));
  t.same(p.dial, [], 'limit reached');
  t.match(m.status(new Set([A]))[0], { address: '10.0.0.2:6783', lastError: 'Connection limit reached (1)' });
  m.disconnected('10.0.0.1:6783', 20, 'EOF');
  // A is still connected (inbound, say): its address must not be dialled again.
  t.same(m.plan(input(1e6, { connectedPeers: new Set([A]), connectionCount: 1 })).dial, ['10.0.0.2:6783']);
});

t.test('discovered targets come and go with the topology; direct ones stay', async (t) => {
  const m = new ConnectionMakerCore(() => 0.5);
  const first = m.plan(input(0, { discovered: new Map([['10.0.0.5:6783', B]]) }));
  t.same(first.dial, [], 'first dials to discovered peers are spread out');
  t.equal(first.wakeAt, 500, 'by a random share of a second');
  t.same(m.plan(input(500, { discovered: new Map([['10.0.0.5:6783', B]]) })).dial, ['10.0.0.5:6783']);
  m.attemptFailed('10.0.0.5:6783', 'no route', 501);
  m.plan(input(502, { discovered: new Map() }));
  t.same(m.status(new Set()), [], 'stale discovered target dropped');
  m.connect(['10.0.0.6:6783']);
  m.forget(['10.0.0.6:6783']);
  t.same(m.directTargets(), []);
  m.connect(['10.0.0.7:6783', '10.0.0.8:6783']);
  m.connect(['10.0.0.8:6783'], true);
  t.same(m.directTargets(), ['10.0.0.8:6783'], 'replace');
});

t.test('of two peers that discover each other, the lower-named dials first', async (t) => {
  const low = new ConnectionMakerCore(() => 0, undefined, A);
  const high = new ConnectionMakerCore(() => 0, undefined, B);
  t.same(low.plan(input(0, { discovered: new Map([['10.0.0.11:6783', B]]) })).dial, ['10.0.0.11:6783'], 'A dials B at once');
  const h = high.plan(input(0, { discovered: new Map([['10.0.0.10:6783', A]]) }));
  t.same(h.dial, [], 'B waits for A');
  t.equal(h.wakeAt, 5000, 'and dials itself if A has not connected by then');
  t.same(high.plan(input(5000, { discovered: new Map([['10.0.0.10:6783', A]]) })).dial, ['10.0.0.10:6783']);
  t.same(high.plan(input(6000, { connectedPeers: new Set([A]), discovered: new Map() })).dial, [], 'nothing once connected');
});

t.test('a dial that lost a duplicate tie-break is not retried while the peer is connected', async (t) => {
  const m = new ConnectionMakerCore(() => 0.5);
  m.connect(['10.0.0.1:6783']);
  m.plan(input(0));
  m.attemptFailed('10.0.0.1:6783', 'Multiple connections to a added to b', 10, true, A);
  t.same(m.plan(input(1e6, { connectedPeers: new Set([A]), connectionCount: 1 })).dial, [], 'A is connected (inbound)');
  t.same(m.status(new Set([A])), [], 'and the target is not shown as failing');
  t.same(m.plan(input(2e6)).dial, ['10.0.0.1:6783'], 'once A is gone, the target is dialled again');
});

t.test('a long-lived connection that breaks is retried at once', async (t) => {
  const m = new ConnectionMakerCore(() => 0.5);
  m.connect(['h:1']);
  m.plan(input(0));
  m.connected('h:1', A, 0);
  m.disconnected('h:1', 120_000, 'EOF');
  t.same(m.plan(input(120_000)).dial, ['h:1']);
  m.attemptFailed('h:1', 'x', 120_000);
  m.plan(input(200_000));
  m.connected('h:1', A, 200_000);
  m.disconnected('h:1', 200_500, 'EOF');
  t.ok(m.plan(input(200_500)).dial.length === 0, 'a short-lived one backs off');
});
