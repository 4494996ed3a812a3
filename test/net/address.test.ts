import t from 'tap';
import { unmapIpv4 } from '../../src/net/address.js';

t.test('IPv4-mapped IPv6 addresses (inbound connections on a dual-stack listener) become plain IPv4', async (t) => {
  t.equal(unmapIpv4('::ffff:10.0.0.2'), '10.0.0.2');
  t.equal(unmapIpv4('::FFFF:172.31.60.1'), '172.31.60.1');
  t.equal(unmapIpv4('10.0.0.2'), '10.0.0.2');
  t.equal(unmapIpv4('fd00::1'), 'fd00::1');
  t.equal(unmapIpv4('::ffff:1'), '::ffff:1');
});
