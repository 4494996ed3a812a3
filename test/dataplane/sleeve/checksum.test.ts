import t from 'tap';
import { equal } from 'node:assert/strict';
import fc from 'fast-check';
import { finishChecksum, foldSum, ipv4HeaderChecksum, sumBytes } from '../../../src/dataplane/sleeve/checksum.js';
import { referenceSum } from './packets.js';

t.test('sumBytes agrees with the byte-by-byte reference at every alignment, length and start', async () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 5000, size: 'max' }),
      fc.integer({ min: 0, max: 7 }),
      fc.nat(),
      fc.nat(),
      fc.nat({ max: 0xffff }),
      (data, shift, a, b, initial) => {
        // The same bytes at another offset of their ArrayBuffer, so that the word path meets
        // every alignment.
        const backing = new Uint8Array(data.length + 8);
        backing.set(data, shift);
        const view = backing.subarray(shift, shift + data.length);
        const start = data.length === 0 ? 0 : a % data.length;
        const end = start + (data.length === 0 ? 0 : b % (data.length - start + 1));
        equal(foldSum(sumBytes(view, start, end, initial)), referenceSum(view, start, end, initial), `[${start}, ${end}) at +${shift}`);
      },
    ),
    { numRuns: 2000 },
  );
});

t.test('all-ones and all-zero data fold as one’s complement arithmetic says', async () => {
  equal(foldSum(sumBytes(new Uint8Array(65536).fill(0xff), 0, 65536)), 0xffff);
  equal(foldSum(sumBytes(new Uint8Array(65536), 0, 65536)), 0);
  equal(finishChecksum(0xffff), 0);
  equal(finishChecksum(0x1_0000), 0xfffe);
});

t.test('IPv4 header checksum ignores what the checksum field holds', async () => {
  const ip = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
  equal(ipv4HeaderChecksum(ip, 0, 20), 0xb861);
  ip.writeUInt16BE(0xb861, 10);
  equal(ipv4HeaderChecksum(ip, 0, 20), 0xb861);
  equal(referenceSum(ip), 0xffff);
});
