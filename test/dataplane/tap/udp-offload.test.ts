// UDP_SEGMENT and UDP_GRO on natively made sockets wrapped in dgram, over loopback: one send of
// 1000 bytes with a 100-byte segment size arrives as ten datagrams, or as one buffer with GRO.
import t from 'tap';
import type dgram from 'node:dgram';
import {
  createOffloadUdpSocket,
  encodeSockaddr,
  getUdpGro,
  getUdpSegment,
  setUdpGro,
  setUdpSegment,
  type OffloadUdpSocket,
} from '../../../src/dataplane/tap/udp-offload.js';
import { eventually } from '../lib/tap-node.js';

/** What open() needs of a test: somewhere to register the socket's close. */
interface Teardowns {
  teardown(fn: () => unknown): void;
}

async function open(t: Teardowns, options: Parameters<typeof createOffloadUdpSocket>[0]): Promise<OffloadUdpSocket> {
  const s = await createOffloadUdpSocket(options);
  t.teardown(() => new Promise<void>((resolve) => s.socket.close(() => resolve())));
  return s;
}

function collect(socket: dgram.Socket): Buffer[] {
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  return got;
}

function portOf(s: OffloadUdpSocket): number {
  return s.socket.address().port;
}

t.test('struct sockaddr_in and sockaddr_in6: family in host order, port in network order', async (t) => {
  t.same([...encodeSockaddr('172.31.0.1', 6783)], [2, 0, 0x1a, 0x7f, 172, 31, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const v6 = encodeSockaddr('fd00::1', 6783);
  t.equal(v6.length, 28);
  t.same([...v6.subarray(0, 4)], [10, 0, 0x1a, 0x7f]);
  t.same([...v6.subarray(8, 24)], [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  t.throws(() => encodeSockaddr('localhost', 1), { name: 'RangeError', message: /never a name/ });
  t.throws(() => encodeSockaddr('127.0.0.1', 65536), RangeError);
});

t.test('a native socket handed to dgram: bound where asked, options readable back', async (t) => {
  const s = await open(t, { address: '127.0.0.1', port: 0, segmentSize: 1472, gro: true, reuseAddr: true, recvBufferSize: 1 << 20 });
  t.equal(s.socket.address().address, '127.0.0.1');
  t.ok(portOf(s) > 0, 'an ephemeral port');
  t.equal(getUdpSegment(s.fd), 1472);
  t.equal(getUdpGro(s.fd), true);
  setUdpSegment(s.fd, 0);
  setUdpGro(s.fd, false);
  t.same([getUdpSegment(s.fd), getUdpGro(s.fd)], [0, false]);
  t.throws(() => setUdpSegment(s.fd, 70_000), RangeError);
  const v6 = await open(t, { address: '::1', port: 0 });
  t.equal(v6.socket.address().family, 'IPv6');
});

t.test('UDP_SEGMENT: one send leaves as datagrams of the segment size; UDP_GRO: they come back as one', async (t) => {
  const plain = await open(t, { address: '127.0.0.1', port: 0 });
  const gro = await open(t, { address: '127.0.0.1', port: 0, gro: true });
  const sender = await open(t, { address: '127.0.0.1', port: 0, segmentSize: 100 });
  const toPlain = collect(plain.socket);
  const toGro = collect(gro.socket);
  const payload = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));
  sender.socket.send(payload, portOf(plain), '127.0.0.1');
  sender.socket.send(payload, portOf(gro), '127.0.0.1');
  t.ok(await eventually(() => toPlain.length >= 10 && toGro.length >= 1));
  t.same(toPlain.map((m) => m.length), new Array(10).fill(100), 'ten 100-byte datagrams');
  t.same(Buffer.concat(toPlain), payload, 'in order');
  t.same(toGro.map((m) => m.length), [1000], 'coalesced again by the receiving kernel');
  t.same(toGro[0], payload);

  // A send smaller than the segment size is one ordinary datagram.
  sender.socket.send(payload.subarray(0, 60), portOf(plain), '127.0.0.1');
  t.ok(await eventually(() => toPlain.length >= 11));
  t.equal(toPlain[10]?.length, 60);
});

t.test('failures name the option or the address', async (t) => {
  const held = await open(t, { address: '127.0.0.1', port: 0 });
  await t.rejects(createOffloadUdpSocket({ address: '127.0.0.1', port: portOf(held) }), {
    name: 'SysError',
    code: 'EADDRINUSE',
    message: new RegExp(`^cannot bind UDP 127\\.0\\.0\\.1:${portOf(held)}: EADDRINUSE \\(Address already in use; another socket has this port\\)`),
  });
  await t.rejects(createOffloadUdpSocket({ address: '192.0.2.1', port: 0 }), { code: 'EADDRNOTAVAIL' });
  t.throws(() => setUdpSegment(0, 100), { name: 'SysError', code: 'ENOTSOCK', message: /^cannot set UDP_SEGMENT 100 on fd 0: ENOTSOCK/ });
});
