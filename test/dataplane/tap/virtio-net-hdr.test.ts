import t from 'tap';
import fc from 'fast-check';
import {
  VIRTIO_NET_HDR_LEN,
  VIRTIO_NET_HDR_NONE,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_F_DATA_VALID,
  describeVirtioNetHdr,
  formatVirtioNetHdr,
  isGso,
  needsChecksum,
  parseVirtioNetHdr,
  type VirtioNetHdr,
} from '../../../src/dataplane/tap/virtio-net-hdr.js';

const hdr: fc.Arbitrary<VirtioNetHdr> = fc.record({
  flags: fc.integer({ min: 0, max: 0xff }),
  gsoType: fc.integer({ min: 0, max: 0xff }),
  hdrLen: fc.integer({ min: 0, max: 0xffff }),
  gsoSize: fc.integer({ min: 0, max: 0xffff }),
  csumStart: fc.integer({ min: 0, max: 0xffff }),
  csumOffset: fc.integer({ min: 0, max: 0xffff }),
});

t.test('a TCPv4 super-frame header as the kernel writes it (little-endian fields)', async (t) => {
  // flags NEEDS_CSUM, gso TCPV4, hdr_len 66, gso_size 1324, csum_start 34, csum_offset 16
  const bytes = Uint8Array.of(0x01, 0x01, 0x42, 0x00, 0x2c, 0x05, 0x22, 0x00, 0x10, 0x00);
  const parsed = parseVirtioNetHdr(bytes);
  t.same(parsed, { flags: 1, gsoType: 1, hdrLen: 66, gsoSize: 1324, csumStart: 34, csumOffset: 16 });
  t.ok(isGso(parsed));
  t.ok(needsChecksum(parsed));
  t.equal(describeVirtioNetHdr(parsed), 'gso=tcpv4 mss=1324 hdr=66 csum=34+16');
  t.same(formatVirtioNetHdr(parsed), bytes, 'formats back to the same bytes');
});

t.test('parse and format are inverse, at any offset', async (t) => {
  fc.assert(
    fc.property(hdr, fc.integer({ min: 0, max: 20 }), (h, offset) => {
      const out = new Uint8Array(offset + VIRTIO_NET_HDR_LEN + 3).fill(0xee);
      formatVirtioNetHdr(h, out, offset);
      // Writes exactly its 10 bytes: nothing before or after is touched.
      if (out.subarray(0, offset).some((b) => b !== 0xee) || out.subarray(offset + VIRTIO_NET_HDR_LEN).some((b) => b !== 0xee)) return false;
      const back = parseVirtioNetHdr(out, offset);
      return JSON.stringify(back) === JSON.stringify(h);
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: VIRTIO_NET_HDR_LEN, maxLength: VIRTIO_NET_HDR_LEN }), (bytes) => {
      const out = formatVirtioNetHdr(parseVirtioNetHdr(bytes));
      return out.every((b, i) => b === bytes[i]);
    }),
  );
});

t.test('the all-zero header means nothing to finish', async (t) => {
  t.same(formatVirtioNetHdr(VIRTIO_NET_HDR_NONE), new Uint8Array(10));
  t.notOk(isGso(VIRTIO_NET_HDR_NONE));
  t.notOk(needsChecksum(VIRTIO_NET_HDR_NONE));
  t.equal(describeVirtioNetHdr(VIRTIO_NET_HDR_NONE), 'none');
  t.ok(Object.isFrozen(VIRTIO_NET_HDR_NONE));
});

t.test('flag and type helpers', async (t) => {
  const base = { ...VIRTIO_NET_HDR_NONE };
  t.notOk(isGso({ ...base, gsoType: VIRTIO_NET_HDR_GSO_ECN }), 'the ECN bit alone is not GSO');
  t.ok(isGso({ ...base, gsoType: VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN }));
  t.equal(describeVirtioNetHdr({ ...base, gsoType: VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN, gsoSize: 1400, hdrLen: 86 }), 'gso=tcpv6+ecn mss=1400 hdr=86');
  t.equal(describeVirtioNetHdr({ ...base, flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 34, csumOffset: 6 }), 'csum=34+6');
  t.equal(describeVirtioNetHdr({ ...base, flags: VIRTIO_NET_HDR_F_DATA_VALID }), 'data-valid');
  t.equal(describeVirtioNetHdr({ ...base, gsoType: 9 }), 'gso=type9 mss=0 hdr=0');
  t.notOk(needsChecksum({ ...base, flags: VIRTIO_NET_HDR_F_DATA_VALID }));
  t.ok(isGso({ ...base, gsoType: VIRTIO_NET_HDR_GSO_TCPV4 }));
});

t.test('short buffers and out-of-range fields are refused', async (t) => {
  t.throws(() => parseVirtioNetHdr(new Uint8Array(9)), { name: 'RangeError', message: /needs 10 bytes at offset 0, have 9/ });
  t.throws(() => parseVirtioNetHdr(new Uint8Array(12), 3), { name: 'RangeError', message: /have 9/ });
  t.throws(() => parseVirtioNetHdr(new Uint8Array(12), -1), RangeError);
  t.throws(() => formatVirtioNetHdr(VIRTIO_NET_HDR_NONE, new Uint8Array(15), 6), { name: 'RangeError', message: /have 9/ });
  t.throws(() => formatVirtioNetHdr({ ...VIRTIO_NET_HDR_NONE, flags: 256 }), { name: 'RangeError', message: /flags 256 out of range 0-255/ });
  t.throws(() => formatVirtioNetHdr({ ...VIRTIO_NET_HDR_NONE, gsoSize: 65536 }), { message: /gsoSize/ });
  t.throws(() => formatVirtioNetHdr({ ...VIRTIO_NET_HDR_NONE, csumStart: -1 }), { message: /csumStart/ });
  t.throws(() => formatVirtioNetHdr({ ...VIRTIO_NET_HDR_NONE, hdrLen: 1.5 }), { message: /hdrLen/ });
});
