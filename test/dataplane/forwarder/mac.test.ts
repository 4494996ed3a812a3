// MAC values: wire bytes, text, and the bits the forwarder decides on.
import t from 'tap';
import fc from 'fast-check';
import {
  BROADCAST_MAC, formatMac, frameMacs, isBridgeReservedMac, isGroupMac, macFromBytes, macFromNumber, parseMac,
} from '../../../src/dataplane/forwarder/mac.js';

t.test('bytes, numbers and text agree', async (t) => {
  const bytes = Uint8Array.from([0xff, 0x02, 0x42, 0xac, 0x11, 0x00, 0x02, 0xfe]);
  const mac = macFromBytes(bytes, 1);
  t.equal(mac, 0x0242ac110002);
  t.equal(formatMac(mac), '02:42:ac:11:00:02');
  t.equal(parseMac('02:42:AC:11:00:02'), mac);
  t.equal(parseMac('02-42-ac-11-00-02'), mac);
  t.equal(formatMac(macFromBytes(Uint8Array.from([0, 0, 0, 0, 0, 1]))), '00:00:00:00:00:01');
  t.equal(macFromBytes(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), BROADCAST_MAC);
  t.throws(() => macFromBytes(bytes, 3), RangeError, 'needs six bytes');
  t.throws(() => parseMac('02:42:ac:11:00'), RangeError);
  t.throws(() => parseMac('02:42:ac:11:00:0g'), RangeError);
  t.throws(() => macFromNumber(2 ** 48), RangeError);

  fc.assert(
    fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (b) => {
      const m = macFromBytes(b);
      const text = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
      return formatMac(m) === text && parseMac(text) === m && isGroupMac(m) === ((b[0]! & 1) === 1);
    }),
  );
});

t.test('frame header: destination first, then source', async (t) => {
  const frame = Uint8Array.from([...Array<number>(10).fill(0), 1, 0, 0x5e, 0, 0, 0xfb, 2, 0, 0, 0, 0, 5, 8, 0]);
  const { dst, src } = frameMacs(frame, 10);
  t.equal(formatMac(dst), '01:00:5e:00:00:fb');
  t.equal(formatMac(src), '02:00:00:00:00:05');
  t.ok(isGroupMac(dst));
  t.notOk(isGroupMac(src));
});

t.test('bridge-reserved range is exactly 01:80:c2:00:00:00-0f', async (t) => {
  t.ok(isBridgeReservedMac(parseMac('01:80:c2:00:00:00')), 'STP');
  t.ok(isBridgeReservedMac(parseMac('01:80:c2:00:00:0e')), 'LLDP');
  t.notOk(isBridgeReservedMac(parseMac('01:80:c2:00:00:10')));
  t.notOk(isBridgeReservedMac(parseMac('01:80:c1:ff:ff:ff')));
  t.notOk(isBridgeReservedMac(BROADCAST_MAC));
});
