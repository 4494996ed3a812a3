// The sleeve's receive-queue AQM: CoDel's decisions (pure, with made-up clocks: when it starts
// signalling, how fast, when it stops), the CE mark it sets instead of a drop (RFC 3168, header
// checksum kept valid), when the queue delay is read (not for a datagram that came into an empty
// queue) and the delay itself, read off a real UDP socket's kernel timestamps.
import t from 'tap';
import fc from 'fast-check';
import { Codel } from '../../../src/dataplane/receiver/codel.js';
import { Sojourn } from '../../../src/dataplane/receiver/sojourn.js';
import { markCongestion } from '../../../src/dataplane/receiver/ecn.js';
import { ReceiveDelay } from '../../../src/dataplane/tap/receive-delay.js';
import { closeFd, recvFromFd, sendToFd } from '../../../src/dataplane/tap/libc.js';
import { createOffloadUdpFd, encodeSockaddr } from '../../../src/dataplane/tap/udp-offload.js';
import { ETH_P_IP, IPPROTO_TCP, ethernet, internetChecksum, ipv4Packet } from '../lib/packets.js';

const P = { targetMs: 1, intervalMs: 20 };

t.test('CoDel: below target never signals; a standing queue is signalled after one interval, then ever faster; it stops at once', async (t) => {
  const c = new Codel(P);
  let early = 0;
  for (let now = 0; now < 1000; now += 0.5) if (c.signal(0.99, now)) early++;
  t.equal(early, 0, 'a second of delay just under target: no signal');
  const signals: number[] = [];
  for (let now = 1000; now < 1200; now += 0.1) if (c.signal(5, now)) signals.push(Math.round(now * 10) / 10);
  t.equal(signals[0], 1020, 'the first signal comes one interval after the delay rose above target');
  const gaps = signals.slice(1).map((s, i) => s - signals[i]!);
  t.ok(gaps.length >= 5, `${signals.length} signals in 200 ms`);
  t.ok(Math.abs(gaps[0]! - 20) < 0.2, `then interval / sqrt(1) = 20 ms (${gaps[0]})`);
  t.ok(Math.abs(gaps[1]! - 20 / Math.SQRT2) < 0.2, `then interval / sqrt(2) (${gaps[1]})`);
  t.ok(gaps.every((g, i) => i === 0 || g <= gaps[i - 1]! + 0.11), `gaps shrink: ${gaps.map((g) => g.toFixed(1))}`);
  t.ok(c.signalling);
  t.notOk(c.signal(0.5, 1200.05), 'a datagram below target ends it');
  t.notOk(c.signalling);
  t.notOk(c.signal(5, 1200.1), 'and a new rise waits an interval again');
});

t.test('CoDel: re-entering soon after leaving resumes near the old rate (RFC 8289 §5.5)', async (t) => {
  const c = new Codel(P);
  let now = 0;
  const run = (until: number): number[] => {
    const s: number[] = [];
    for (; now < until; now += 0.1) if (c.signal(5, now)) s.push(now);
    return s;
  };
  const first = run(200);
  c.signal(0, now);
  now += 1;
  const again = run(now + 100);
  t.ok(first.length >= 5);
  t.ok(again.length >= 2);
  const gap = again[1]! - again[0]!;
  t.ok(gap < 20 / Math.sqrt(2), `the second entry's first gap (${gap.toFixed(2)} ms) is shorter than a fresh start's second gap`);
});

t.test('CoDel (property): a signal only ever follows an unbroken interval above target; unknown delays change nothing', async (t) => {
  fc.assert(fc.property(
    fc.array(fc.record({ dt: fc.double({ min: 0, max: 5, noNaN: true }), sojourn: fc.oneof(fc.double({ min: 0, max: 4, noNaN: true }), fc.constant(NaN)) }), { maxLength: 400 }),
    (steps) => {
      const c = new Codel(P);
      let now = 0;
      let aboveSince: number | undefined;
      for (const { dt, sojourn } of steps) {
        now += dt;
        const signalled = c.signal(sojourn, now);
        if (Number.isNaN(sojourn)) {
          if (signalled) return false;
          continue;
        }
        if (sojourn < P.targetMs) aboveSince = undefined;
        else aboveSince ??= now;
        if (signalled && (aboveSince === undefined || now - aboveSince < P.intervalMs)) return false;
      }
      return true;
    },
  ), { numRuns: 300 });
  t.pass('300 random runs');
});

t.test('sojourn: a datagram that came into an empty queue counts as no queue, unread; the rest are read once each', async (t) => {
  let reads = 0;
  let kernelMs = 7;
  const s = new Sojourn(() => {
    reads++;
    return kernelMs;
  });
  s.received();
  t.equal(s.lastMs(), 0, 'the first datagram ever found the queue empty');
  t.equal(reads, 0, 'and the kernel was not asked');
  s.received();
  t.equal(s.lastMs(), 7, 'back to back: the kernel says how long it waited');
  t.equal(s.lastMs(), 7, 'asked again for the same datagram (another frame of it)');
  t.equal(reads, 1, 'read once per datagram');
  kernelMs = 3;
  s.received();
  t.equal(s.lastMs(), 3);
  t.equal(reads, 2);
  s.queueEmpty();
  s.queueEmpty();
  s.received();
  t.equal(s.lastMs(), 0, 'after the queue was seen empty: no queue');
  t.equal(reads, 2);
  s.received();
  t.equal(s.lastMs(), 3, 'and the next one back to back is read again');
  t.equal(reads, 3);
});

t.test('sojourn, property: read at most once per datagram, and exactly when no empty queue was seen since the datagram before', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom('empty', 'received', 'ask'), { maxLength: 200 }), (ops) => {
      let reads = 0;
      const s = new Sojourn(() => {
        reads++;
        return 5;
      });
      let emptySince = true;
      let expectFresh: boolean | undefined;
      let readForThis = 0;
      for (const op of ops) {
        if (op === 'empty') {
          s.queueEmpty();
          emptySince = true;
        } else if (op === 'received') {
          s.received();
          expectFresh = emptySince;
          emptySince = false;
          readForThis = 0;
        } else if (expectFresh !== undefined) {
          const before = reads;
          const ms = s.lastMs();
          readForThis += reads - before;
          if (ms !== (expectFresh ? 0 : 5)) return false;
          if (readForThis > (expectFresh ? 0 : 1)) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass('300 random sequences of empty queues, datagrams and questions');
});

t.test('CE mark: IPv4 ECT(0)/ECT(1) marked with a valid header checksum; CE kept; not-ECT, non-IP and short frames refused untouched', async (t) => {
  const frame = (tos: number): Uint8Array => ethernet('0a:00:00:00:00:01', '0a:00:00:00:00:02', ETH_P_IP, ipv4Packet('10.32.0.2', '10.40.0.1', IPPROTO_TCP, new Uint8Array(40), 64, tos));
  for (const tos of [0b10, 0b01, 0xb8 | 0b10, 0xfd]) {
    const f = frame(tos);
    t.equal(internetChecksum(f.subarray(14, 34)), 0, 'valid before');
    t.ok(markCongestion(f, 0), `TOS ${tos.toString(16)} is ECN-capable`);
    t.equal(f[15], tos | 0b11, 'CE set, DSCP kept');
    t.equal(internetChecksum(f.subarray(14, 34)), 0, 'header checksum still valid');
  }
  const ce = frame(0b11);
  t.ok(markCongestion(ce, 0), 'CE already: stays, delivered');
  t.equal(internetChecksum(ce.subarray(14, 34)), 0);
  const withHeader = new Uint8Array(10 + 74);
  withHeader.set(frame(0b10), 10);
  t.ok(markCongestion(withHeader, 10), 'the frame may sit behind a virtio header');
  t.equal(withHeader[10 + 15]! & 0b11, 0b11);
  for (const [what, f] of [
    ['not ECT', frame(0xb8)],
    ['ARP', ethernet('ff:ff:ff:ff:ff:ff', '0a:00:00:00:00:02', 0x0806, new Uint8Array(28))],
    ['short', frame(0b10).subarray(0, 20)],
  ] as const) {
    const before = Uint8Array.from(f);
    t.notOk(markCongestion(f, 0), `${what}: refused`);
    t.same(f, before, `${what}: untouched`);
  }
});

t.test('CE mark: IPv6 traffic class ECN bits, which straddle the first two bytes', async (t) => {
  const ip6 = new Uint8Array(40);
  ip6[0] = 0x6b; // version 6, traffic class high nibble 0xb
  ip6[1] = 0x2f; // traffic class low nibble 0x2 (ECT(0)), flow label high nibble 0xf
  const f = ethernet('0a:00:00:00:00:01', '0a:00:00:00:00:02', 0x86dd, ip6);
  t.ok(markCongestion(f, 0));
  t.equal(f[14], 0x6b, 'version and DSCP kept');
  t.equal(f[15], 0x3f, 'CE set, flow label kept');
  const notEct = ethernet('0a:00:00:00:00:01', '0a:00:00:00:00:02', 0x86dd, Uint8Array.of(0x60, 0x0f, ...new Uint8Array(38)));
  t.notOk(markCongestion(notEct, 0));
});

t.test('queue delay of a real UDP socket: unknown before a datagram, then the time the last one waited', async (t) => {
  // A fixed port on loopback: no other test binds it.
  const port = 46_781;
  const rx = createOffloadUdpFd({ address: '127.0.0.1', port });
  t.teardown(() => closeFd(rx));
  const tx = createOffloadUdpFd({ address: '127.0.0.1', port: 0 });
  t.teardown(() => closeFd(tx));
  const delay = new ReceiveDelay(rx);
  t.ok(Number.isNaN(delay.lastMs()), 'nothing received yet: unknown');
  const to = encodeSockaddr('127.0.0.1', port);
  const buf = new Uint8Array(2048);
  const sa = new Uint8Array(28);
  const len = Buffer.alloc(4);
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  // The kernel turns stamping on for the whole machine through a deferred work: until it has run,
  // datagrams arrive unstamped and the delay reads as ~0. Wait for the first stamped one.
  let stamped = false;
  for (let i = 0; i < 20 && !stamped; i++) {
    sendToFd(tx, buf, 100, to);
    await sleep(20);
    recvFromFd(rx, buf, buf.length, sa, len);
    stamped = delay.lastMs() >= 15;
  }
  t.ok(stamped, 'the kernel stamps datagrams once asked to');
  t.equal(sendToFd(tx, buf, 100, to), 100);
  await sleep(60);
  t.equal(sendToFd(tx, buf, 100, to), 100);
  t.equal(recvFromFd(rx, buf, buf.length, sa, len), 100);
  const waited = delay.lastMs();
  t.ok(waited >= 55 && waited < 2000, `the first waited about 60 ms: ${waited.toFixed(2)}`);
  t.equal(recvFromFd(rx, buf, buf.length, sa, len), 100);
  const second = delay.lastMs();
  t.ok(second >= 0 && second < waited - 40, `the second much less: ${second.toFixed(2)}`);
});
