import t from 'tap';
import fc from 'fast-check';
import { parsePing, repliesBySource } from '../../src/cluster/ping.js';

// Captured from iputils-ping 20221126 (Debian 12) between network namespaces.
const THREE_REPLIES = `PING 10.9.0.3 (10.9.0.3) 56(84) bytes of data.
64 bytes from 10.9.0.3: icmp_seq=1 ttl=64 time=0.372 ms
64 bytes from 10.9.0.3: icmp_seq=2 ttl=64 time=0.060 ms
64 bytes from 10.9.0.3: icmp_seq=3 ttl=64 time=0.060 ms

--- 10.9.0.3 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 411ms
rtt min/avg/max/mdev = 0.060/0.164/0.372/0.147 ms
`;

const BROADCAST = `PING 10.9.0.255 (10.9.0.255) 56(84) bytes of data.
64 bytes from 10.9.0.1: icmp_seq=1 ttl=64 time=0.036 ms
64 bytes from 10.9.0.3: icmp_seq=1 ttl=64 time=0.045 ms
64 bytes from 10.9.0.1: icmp_seq=2 ttl=64 time=0.052 ms
64 bytes from 10.9.0.3: icmp_seq=2 ttl=64 time=0.062 ms
64 bytes from 10.9.0.1: icmp_seq=3 ttl=64 time=0.065 ms

--- 10.9.0.255 ping statistics ---
3 packets transmitted, 3 received, +2 duplicates, 0% packet loss, time 406ms
rtt min/avg/max/mdev = 0.036/0.052/0.065/0.010 ms
`;

const ALL_LOST = `PING 10.9.0.77 (10.9.0.77) 56(84) bytes of data.

--- 10.9.0.77 ping statistics ---
5 packets transmitted, 0 received, 100% packet loss, time 812ms

`;

const UNREACHABLE = `PING 10.9.0.77 (10.9.0.77) 56(84) bytes of data.
From 10.9.0.2 icmp_seq=1 Destination Host Unreachable
From 10.9.0.2 icmp_seq=2 Destination Host Unreachable
From 10.9.0.2 icmp_seq=3 Destination Host Unreachable

--- 10.9.0.77 ping statistics ---
4 packets transmitted, 0 received, +3 errors, 100% packet loss, time 3060ms
pipe 3
`;

const PARTIAL = `PING 10.32.0.6 (10.32.0.6) 1348(1376) bytes of data.
1356 bytes from 10.32.0.6: icmp_seq=1 ttl=64 time=1.21 ms
1356 bytes from 10.32.0.6: icmp_seq=3 ttl=64 time=0.98 ms
1356 bytes from 10.32.0.6: icmp_seq=3 ttl=64 time=1.02 ms (DUP!)

--- 10.32.0.6 ping statistics ---
3 packets transmitted, 2 received, +1 duplicates, 33.3333% packet loss, time 402ms
rtt min/avg/max/mdev = 0.980/1.070/1.210/0.100 ms
`;

const BUSYBOX = `PING 10.32.0.6 (10.32.0.6): 56 data bytes
64 bytes from 10.32.0.6: seq=0 ttl=64 time=0.101 ms
64 bytes from 10.32.0.6: seq=1 ttl=64 time=0.087 ms

--- 10.32.0.6 ping statistics ---
2 packets transmitted, 2 packets received, 0% packet loss
round-trip min/avg/max = 0.087/0.094/0.101 ms
`;

t.test('a clean run: counts, loss, RTT and every reply', async (t) => {
  const s = parsePing(THREE_REPLIES);
  t.same(s, {
    transmitted: 3,
    received: 3,
    duplicates: 0,
    errors: 0,
    lossPercent: 0,
    rtt: { minMs: 0.06, avgMs: 0.164, maxMs: 0.372, mdevMs: 0.147 },
    replies: [
      { from: '10.9.0.3', seq: 1, ttl: 64, timeMs: 0.372, duplicate: false },
      { from: '10.9.0.3', seq: 2, ttl: 64, timeMs: 0.06, duplicate: false },
      { from: '10.9.0.3', seq: 3, ttl: 64, timeMs: 0.06, duplicate: false },
    ],
  });
});

t.test('a broadcast ping: duplicates counted, replies grouped by source', async (t) => {
  const s = parsePing(BROADCAST);
  t.ok(s);
  t.equal(s!.received, 3);
  t.equal(s!.duplicates, 2);
  // iputils does not mark these (DUP!); a repeated sequence number still makes them duplicates.
  t.same(s!.replies.map((r) => r.duplicate), [false, true, false, true, false]);
  t.same([...repliesBySource(s!)].sort(), [['10.9.0.1', 3], ['10.9.0.3', 2]]);
});

t.test('everything lost: 100% and no RTT', async (t) => {
  const s = parsePing(ALL_LOST);
  t.same(s, { transmitted: 5, received: 0, duplicates: 0, errors: 0, lossPercent: 100, replies: [] });
  t.equal(s!.rtt, undefined);
});

t.test('ICMP errors are counted, not taken for replies', async (t) => {
  const s = parsePing(UNREACHABLE);
  t.equal(s!.errors, 3);
  t.equal(s!.received, 0);
  t.equal(s!.replies.length, 0);
  t.equal(s!.lossPercent, 100);
});

t.test('partial loss with a fractional percentage and a marked duplicate', async (t) => {
  const s = parsePing(PARTIAL);
  t.equal(s!.lossPercent, 33.3333);
  t.equal(s!.received, 2);
  t.equal(s!.duplicates, 1);
  t.same(s!.replies.map((r) => [r.seq, r.duplicate]), [[1, false], [3, false], [3, true]]);
  t.equal(s!.rtt?.maxMs, 1.21);
});

t.test('busybox output: summary without mdev, seq= without icmp_', async (t) => {
  const s = parsePing(BUSYBOX);
  t.same(s?.rtt, { minMs: 0.087, avgMs: 0.094, maxMs: 0.101 });
  t.equal(s?.received, 2);
  t.same(s?.replies.map((r) => r.seq), [0, 1]);
});

t.test('a reply line with a host name keeps the address in parentheses', async (t) => {
  const s = parsePing(`64 bytes from node-2 (172.31.0.2): icmp_seq=1 ttl=64 time=0.1 ms\n\n1 packets transmitted, 1 received, 0% packet loss, time 0ms\n`);
  t.equal(s?.replies[0]?.from, '172.31.0.2');
});

t.test('no statistics: undefined (ping could not send, or was killed)', async (t) => {
  t.equal(parsePing(''), undefined);
  t.equal(parsePing('ping: connect: Network is unreachable\n'), undefined);
  t.equal(parsePing('PING 10.9.0.3 (10.9.0.3) 56(84) bytes of data.\n64 bytes from 10.9.0.3: icmp_seq=1 ttl=64 time=0.1 ms\n'), undefined);
});

t.test('property: whatever iputils could print, the numbers come back', async (t) => {
  const ms = fc.integer({ min: 0, max: 10_000_000 }).map((n) => n / 1000);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1000 }),
      fc.array(fc.record({ seq: fc.integer({ min: 1, max: 1000 }), ttl: fc.integer({ min: 1, max: 255 }), time: ms, last: fc.integer({ min: 0, max: 255 }) }), { maxLength: 20 }),
      fc.nat(50),
      (transmitted, replies, errors) => {
        const lines = replies.map((r) => `64 bytes from 10.32.0.${r.last}: icmp_seq=${r.seq} ttl=${r.ttl} time=${r.time} ms`);
        const received = Math.min(transmitted, new Set(replies.map((r) => r.seq)).size);
        const loss = ((transmitted - received) / transmitted) * 100;
        const extras = errors > 0 ? `, +${errors} errors` : '';
        const text = [...lines, '', `${transmitted} packets transmitted, ${received} received${extras}, ${loss}% packet loss, time 5ms`, ''].join('\n');
        const s = parsePing(text);
        return (
          s !== undefined &&
          s.transmitted === transmitted &&
          s.received === received &&
          s.errors === errors &&
          s.lossPercent === loss &&
          s.replies.length === replies.length &&
          s.replies.every((p, i) => p.seq === replies[i]!.seq && p.ttl === replies[i]!.ttl && p.timeMs === replies[i]!.time && p.from === `10.32.0.${replies[i]!.last}`) &&
          s.replies.filter((p) => !p.duplicate).length === new Set(replies.map((r) => r.seq)).size
        );
      },
    ),
  );
});
