// The per-peer fast path state machine, driven with a fake clock.
import t from 'tap';
import { FastdpHealth, RECOVER_STREAK } from '../../../src/dataplane/fastdp/health.js';

const OPTIONS = { timeoutMs: 4000, intervalMs: 500, fastIntervalMs: 200, mtu: 1376, port: 6784 };

t.test('probing: the first full-size answer makes it healthy; small answers alone do not', async (t) => {
  const h = new FastdpHealth(OPTIONS, 0);
  t.equal(h.state, 'probing');
  t.equal(h.delayMs, 200, 'heartbeats quickly while probing');
  const seq = h.nextSeq();
  t.equal(h.answered(seq, false, 100), undefined, 'a small answer changes nothing');
  t.equal(h.state, 'probing');
  t.same(h.answered(seq, true, 120), { from: 'probing', to: 'healthy', reason: 'heartbeat answered through VXLAN' });
  t.ok(h.healthy);
  t.equal(h.delayMs, 500, 'slower once healthy');
});

t.test('probing without answers: unhealthy after the timeout, with the likely cause', async (t) => {
  const h = new FastdpHealth(OPTIONS, 1000);
  t.equal(h.check(4999), undefined, 'not before the timeout');
  const c = h.check(5000);
  t.equal(c?.to, 'unhealthy');
  t.match(c?.reason, /no heartbeat answered through VXLAN for 4 s \(is UDP 6784 blocked/);
  t.equal(h.check(60_000), undefined, 'said once');
});

t.test('only small heartbeats answered: the reason names the MTU', async (t) => {
  const h = new FastdpHealth(OPTIONS, 0);
  h.answered(h.nextSeq(), true, 100);
  h.answered(h.nextSeq(), false, 3000);
  const c = h.check(4100);
  t.equal(c?.from, 'healthy');
  t.equal(c?.to, 'unhealthy');
  t.match(c?.reason, /full-size heartbeats \(mtu 1376\) unanswered .* path MTU is below 1426/);
});

t.test('healthy stays healthy while answers keep coming; silence makes it unhealthy', async (t) => {
  const h = new FastdpHealth(OPTIONS, 0);
  let now = 0;
  for (let i = 0; i < 20; i++) {
    now += 500;
    const seq = h.nextSeq();
    h.answered(seq, true, now + 1);
    t.equal(h.check(now + 2), undefined);
  }
  t.ok(h.healthy);
  t.equal(h.check(now + 3999), undefined, 'one tick short of the timeout');
  t.equal(h.check(now + 4001)?.to, 'unhealthy');
  t.equal(h.delayMs, 200, 'quick heartbeats again while unhealthy');
});

t.test('unhealthy: back to healthy only after answers to consecutive heartbeats', async (t) => {
  const h = new FastdpHealth(OPTIONS, 0);
  h.check(5000);
  t.equal(h.state, 'unhealthy');
  const s1 = h.nextSeq();
  const s2 = h.nextSeq();
  const s3 = h.nextSeq();
  const s4 = h.nextSeq();
  const s5 = h.nextSeq();
  t.equal(h.answered(s1, true, 5100), undefined);
  t.equal(h.answered(s3, true, 5300), undefined, 'a gap (s2 lost) restarts the streak');
  t.equal(h.answered(s4, true, 5400), undefined);
  const c = h.answered(s5, true, 5500);
  t.same(c, { from: 'unhealthy', to: 'healthy', reason: `${RECOVER_STREAK} heartbeats in a row answered through VXLAN again` });
  void s2;
});

t.test('heartbeats are numbered from 1 up', async (t) => {
  const h = new FastdpHealth(OPTIONS, 0);
  const seen = new Set<number>();
  for (let i = 0; i < 5; i++) seen.add(h.nextSeq());
  t.same([...seen], [1, 2, 3, 4, 5]);
});
