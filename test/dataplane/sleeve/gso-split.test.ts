import t from 'tap';
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import { GsoSplitError, MAX_SEGMENTS, gsoOutputLength, gsoSplit, type GsoSplitErrorReason } from '../../../src/dataplane/sleeve/gso-split.js';
import { ipv4HeaderChecksum } from '../../../src/dataplane/sleeve/checksum.js';
import { parseVirtioNetHdr, formatVirtioNetHdr } from '../../../src/dataplane/tap/virtio-net-hdr.js';
import { be16, be32, buildPacket, pseudoSum, referenceSum, type PacketSpec } from './packets.js';

const REASONS: readonly GsoSplitErrorReason[] = ['short', 'unsupported', 'ip-header', 'l4-header', 'checksum-offsets', 'gso-size'];
const FIN = 0x01;
const SYN = 0x02;
const PSH = 0x08;
const ACK = 0x10;
const ECE = 0x40;
const CWR = 0x80;

const v4 = (...b: number[]) => Uint8Array.from(b);
const small: PacketSpec = {
  ipv6: false,
  udp: false,
  vlan: false,
  hopByHop: false,
  src: v4(10, 0, 0, 1),
  dst: v4(10, 0, 0, 2),
  sport: 1,
  dport: 2,
  seq: 0,
  ack: 0,
  tcpFlags: ACK | PSH,
  tcpOptions: new Uint8Array(0),
  ipId: 0,
  payload: new TextEncoder().encode('hi'),
};

function frames(r: Uint8Array[] | GsoSplitError): Uint8Array[] {
  if (r instanceof GsoSplitError) throw new Error(`refused: ${r.reason}: ${r.detail}`);
  return r;
}

t.test('known answers, computed by hand', async () => {
  // The IPv4 header example of RFC 1071 discussions (and Wikipedia): checksum 0xb861.
  const ip = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
  equal(ipv4HeaderChecksum(ip, 0, 20), 0xb861);
  // 10.0.0.1:1 -> 10.0.0.2:2, seq 0, ack 0, ACK|PSH, window 0xffff, payload "hi" (6869):
  //   pseudo header  0a00+0001+0a00+0002+0006+0016                    = 0x141f
  //   + TCP header   0001+0002+0000+0000+0000+0000+5018+ffff+0000+0000
  //                  0x141f+0001+0002 = 0x1422; +5018 = 0x643a; +ffff = 0x16439 -> 0x643a
  //   + payload      6869                                             = 0xcca3
  //   checksum       ~0xcca3                                          = 0x335c
  //   IPv4 header    4500+002a+0000+4000+4006+0a00+0001+0a00+0002 = 0xd933, ~ = 0x26cc
  const { packet } = buildPacket(small, 0);
  equal(be16(packet, 10 + 34 + 16), 0x141f, 'the partial checksum the kernel leaves');
  const [frame] = frames(gsoSplit(packet));
  equal(be16(frame!, 34 + 16), 0x335c);
  equal(be16(frame!, 14 + 10), 0x26cc);
  // The same packet as a one-segment GSO frame: the checksum computed from scratch agrees.
  const [seg] = frames(gsoSplit(buildPacket(small, 1448).packet));
  equal(be16(seg!, 34 + 16), 0x335c);
  equal(be16(seg!, 14 + 10), 0x26cc);
  deepStrictEqual(Buffer.from(seg!), Buffer.from(frame!));
});

t.test('a frame that needs nothing comes back untouched, as a view', async () => {
  const { packet } = buildPacket(small, 0);
  packet[0] = 0; // no NEEDS_CSUM
  const copy = Uint8Array.from(packet);
  const [frame] = frames(gsoSplit(packet));
  deepStrictEqual(Buffer.from(frame!), Buffer.from(copy.subarray(10)));
  equal(frame!.buffer, packet.buffer);
});

const addr = (ipv6: boolean) => fc.uint8Array({ minLength: ipv6 ? 16 : 4, maxLength: ipv6 ? 16 : 4 });
const spec = (udp: boolean, maxPayload: number): fc.Arbitrary<PacketSpec> =>
  fc.boolean().chain((ipv6) =>
    fc.record({
      ipv6: fc.constant(ipv6),
      udp: fc.constant(udp),
      vlan: fc.boolean(),
      hopByHop: ipv6 ? fc.boolean() : fc.constant(false),
      src: addr(ipv6),
      dst: addr(ipv6),
      sport: fc.integer({ min: 0, max: 0xffff }),
      dport: fc.integer({ min: 0, max: 0xffff }),
      seq: fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 2 ** 32 - 70_000, max: 2 ** 32 - 1 })),
      ack: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      tcpFlags: fc.subarray([FIN, PSH, ACK, ECE, CWR]).map((fl) => fl.reduce((a, b) => a | b, 0)),
      tcpOptions: fc.integer({ min: 0, max: 10 }).chain((n) => fc.uint8Array({ minLength: 4 * n, maxLength: 4 * n })),
      ipId: fc.integer({ min: 0, max: 0xffff }),
      payload: fc.uint8Array({ minLength: 0, maxLength: maxPayload, size: 'max' }),
    }),
  );

/** Checks one output segment against the input, the way a receiving stack would. */
function checkSegment(p: PacketSpec, l3: number, l4: number, hdrEnd: number, seg: Uint8Array, i: number, n: number, mss: number): void {
  const proto = p.udp ? 17 : 6;
  const payloadLength = seg.length - hdrEnd;
  const l4Length = seg.length - l4;
  equal(payloadLength, i < n - 1 ? mss : p.payload.length - (n - 1) * mss, `segment ${i} length`);
  if (p.ipv6) {
    equal(be16(seg, l3 + 4), seg.length - l3 - 40);
    deepStrictEqual(Buffer.from(seg.subarray(l3 + 8, l3 + 24)), Buffer.from(p.src));
  } else {
    equal(be16(seg, l3 + 2), seg.length - l3, 'IPv4 total length');
    equal(be16(seg, l3 + 4), (p.ipId + i) & 0xffff, 'IPv4 id');
    equal(be16(seg, l3 + 6), 0x4000, 'DF kept');
    equal(referenceSum(seg, l3, l4), 0xffff, 'IPv4 header checksum');
  }
  // The L4 checksum verifies: pseudo header + segment sums to 0xffff.
  equal(referenceSum(seg, l4, seg.length, pseudoSum(p.src, p.dst, proto, l4Length)), 0xffff, `L4 checksum of segment ${i}`);
  equal(be16(seg, l4), p.sport);
  equal(be16(seg, l4 + 2), p.dport);
  if (p.udp) {
    equal(be16(seg, l4 + 4), l4Length, 'UDP length');
    ok(be16(seg, l4 + 6) !== 0, 'a UDP checksum is never sent as 0');
  } else {
    equal(be32(seg, l4 + 4), (p.seq + i * mss) % 2 ** 32, 'sequence number');
    equal(be32(seg, l4 + 8), p.ack);
    let flags = p.tcpFlags;
    if (i < n - 1) flags &= ~(FIN | PSH);
    if (i > 0) flags &= ~CWR;
    equal(seg[l4 + 13], flags, `flags of segment ${i}`);
    deepStrictEqual(Buffer.from(seg.subarray(l4 + 20, hdrEnd)), Buffer.from(p.tcpOptions));
  }
}

for (const udp of [false, true]) {
  t.test(`GSO ${udp ? 'UDP_L4' : 'TCPv4/TCPv6'}: segments are wire-ready and carry the payload in order`, async () => {
    fc.assert(
      fc.property(spec(udp, 24_000), fc.integer({ min: 88, max: 9000 }), fc.boolean(), (p, mss, reuse) => {
        const { packet, l3, l4, hdrEnd } = buildPacket(p, mss);
        const n = Math.max(1, Math.ceil(p.payload.length / mss));
        const size = gsoOutputLength(packet);
        equal(size, n * hdrEnd + p.payload.length);
        const output = reuse ? new Uint8Array(size + 7) : undefined;
        const segs = frames(gsoSplit(packet, output));
        equal(segs.length, n);
        if (output) ok(segs.every((s) => s.buffer === output.buffer));
        const payload: Uint8Array[] = [];
        segs.forEach((seg, i) => {
          deepStrictEqual(Buffer.from(seg.subarray(0, l3)), Buffer.from(packet.subarray(10, 10 + l3)), 'Ethernet header kept');
          checkSegment(p, l3, l4, hdrEnd, seg, i, n, mss);
          payload.push(seg.subarray(hdrEnd));
        });
        deepStrictEqual(Buffer.concat(payload), Buffer.from(p.payload));
      }),
      { numRuns: 150 },
    );
  });
}

t.test('a full 64 KB TCPv4 super-frame at MSS 1448 (what a pod sends) splits into 45 segments', async () => {
  const p = { ...small, payload: Uint8Array.from({ length: 65_000 }, (_, i) => i * 7), tcpFlags: ACK | PSH | CWR | FIN };
  const { packet, l3, l4, hdrEnd } = buildPacket(p, 1448);
  const segs = frames(gsoSplit(packet));
  equal(segs.length, 45);
  segs.forEach((seg, i) => checkSegment(p, l3, l4, hdrEnd, seg, i, 45, 1448));
});

t.test('NEEDS_CSUM without GSO: the checksum is finished in place and verifies', async () => {
  fc.assert(
    fc.property(fc.boolean().chain((udp) => spec(udp, 3000)), (p) => {
      const { packet, l3, l4, hdrEnd } = buildPacket(p, 0);
      const [frame] = frames(gsoSplit(packet));
      equal(frame!.length, packet.length - 10);
      checkSegment(p, l3, l4, hdrEnd, frame!, 0, 1, Math.max(1, p.payload.length));
    }),
    { numRuns: 300 },
  );
});

t.test('a UDP checksum that comes out as 0 is sent as 0xffff', async () => {
  // Choose two payload bytes so that the whole sum is 0xffff, i.e. the checksum would be 0.
  const p: PacketSpec = { ...small, udp: true, payload: new Uint8Array(2) };
  const { packet, l4 } = buildPacket(p, 0);
  const frame = packet.subarray(10);
  const rest = referenceSum(frame, l4, frame.length); // pseudo sum already in the field
  const word = 0xffff - rest;
  const p2 = { ...p, payload: Uint8Array.of(word >> 8, word & 0xff) };
  const built = buildPacket(p2, 0);
  equal(referenceSum(built.packet.subarray(10), l4, built.packet.length - 10), 0xffff);
  const [out] = frames(gsoSplit(built.packet));
  equal(be16(out!, l4 + 6), 0xffff);
});

t.test('malformed frames are refused with a reason', async () => {
  const good = buildPacket({ ...small, payload: new Uint8Array(3000) }, 1000).packet;
  const variant = (edit: (b: Uint8Array) => void): Uint8Array => {
    const b = Uint8Array.from(good);
    edit(b);
    return b;
  };
  const cases: Array<[string, Uint8Array, GsoSplitErrorReason]> = [
    ['shorter than the headers', good.subarray(0, 23), 'short'],
    ['old UFO', variant((b) => (b[1] = 3)), 'unsupported'],
    ['unknown gso_type', variant((b) => (b[1] = 9)), 'unsupported'],
    ['TCPv6 on an IPv4 packet', variant((b) => (b[1] = 4)), 'ip-header'],
    ['not IP (ARP)', variant((b) => b.set([0x08, 0x06], 10 + 12)), 'ip-header'],
    ['IPv4 total length beyond the frame', variant((b) => (b[10 + 16] = 0xff)), 'ip-header'],
    ['IPv4 header length below 20', variant((b) => (b[10 + 14] = 0x44)), 'ip-header'],
    ['IPv4 fragment', variant((b) => (b[10 + 14 + 7] = 1)), 'ip-header'],
    ['UDP protocol under a TCP gso_type', variant((b) => (b[10 + 14 + 9] = 17)), 'ip-header'],
    ['TCP data offset below 20', variant((b) => (b[10 + 34 + 12] = 0x40)), 'l4-header'],
    [
      'TCP data offset beyond the packet',
      variant((b) => {
        b[10 + 34 + 12] = 0xf0; // 60-byte TCP header
        b[10 + 16] = 0; // in a 60-byte IP packet
        b[10 + 17] = 60;
      }),
      'l4-header',
    ],
    ['csum_start not at the TCP header', variant((b) => (b[6] = 30)), 'checksum-offsets'],
    ['csum_offset not at the TCP checksum', variant((b) => (b[8] = 6)), 'checksum-offsets'],
    ['gso_size 0', variant((b) => b.fill(0, 4, 6)), 'gso-size'],
    ['gso_size 1: 3000 segments', variant((b) => b.set([1, 0], 4)), 'gso-size'],
  ];
  for (const [name, packet, reason] of cases) {
    const r = gsoSplit(packet);
    ok(r instanceof GsoSplitError, name);
    equal(r.reason, reason, name);
    equal(gsoOutputLength(packet), 0, name);
  }
  // Without GSO, a checksum position outside the frame.
  const plain = buildPacket(small, 0).packet;
  plain[6] = 0xff;
  equal((gsoSplit(plain) as GsoSplitError).reason, 'checksum-offsets');
  ok(MAX_SEGMENTS >= Math.ceil(65_535 / 88));
});

t.test('random and mutated input never throws: frames, or a GsoSplitError with a known reason', async () => {
  const good = buildPacket({ ...small, ipv6: true, hopByHop: true, src: new Uint8Array(16), dst: new Uint8Array(16).fill(1), payload: new Uint8Array(2000) }, 500).packet;
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 200, size: 'max' }),
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4, size: 'max' }).map((edits) => {
          const b = Uint8Array.from(good);
          for (const { at, value } of edits) b[at % 120] = value; // headers, where parsing happens
          return b;
        }),
      ),
      (packet) => {
        const r = gsoSplit(packet);
        if (r instanceof GsoSplitError) ok(REASONS.includes(r.reason));
        else {
          let total = 0;
          for (const f of r) total += f.length;
          ok(total <= 2 * 65_536 + MAX_SEGMENTS * 200);
        }
      },
    ),
    { numRuns: 3000 },
  );
});

t.test('virtio_net_hdr: little-endian fields, read back as written', async () => {
  const b = new Uint8Array(12);
  const h = { flags: 1, gsoType: 0x81, hdrLen: 0x1234, gsoSize: 1448, csumStart: 34, csumOffset: 16 };
  formatVirtioNetHdr(h, b, 2);
  deepStrictEqual(Buffer.from(b).toString('hex'), '0000' + '0181' + '3412' + 'a805' + '2200' + '1000');
  deepStrictEqual(parseVirtioNetHdr(b, 2), h);
});

t.test('the ECN bit of gso_type does not stop segmentation', async () => {
  const { packet } = buildPacket({ ...small, payload: new Uint8Array(3000), tcpFlags: ACK | CWR | SYN }, 1000);
  packet[1] = packet[1]! | 0x80;
  equal(frames(gsoSplit(packet)).length, 3);
});
