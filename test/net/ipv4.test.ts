import t from 'tap';
import fc from 'fast-check';
import {
  cidrContains,
  cidrEnd,
  cidrLast,
  cidrSize,
  formatAddressInRange,
  formatCidr,
  formatIpv4,
  networkOf,
  parseCidr,
  parseIpv4,
  parseIpv4WithPrefix,
} from '../../src/net/ipv4.js';

const address = fc.integer({ min: 0, max: 2 ** 32 - 1 });

t.test('addresses round-trip through text', async (t) => {
  fc.assert(
    fc.property(address, (a) => {
      const text = formatIpv4(a);
      t.match(text, /^\d{1,3}(\.\d{1,3}){3}$/);
      return parseIpv4(text) === a;
    }),
  );
  t.equal(parseIpv4('10.32.0.1'), 10 * 2 ** 24 + 32 * 2 ** 16 + 1);
  t.equal(formatIpv4(2 ** 32 - 1), '255.255.255.255');
  t.equal(formatIpv4(0), '0.0.0.0');
});

t.test('malformed addresses are refused with the bad text in the message', async (t) => {
  for (const bad of ['', '10.32.0', '10.32.0.0.1', '256.0.0.1', '10.032.0.1', '1.2.3.-1', 'a.b.c.d', ' 10.0.0.1', '10..0.1']) {
    t.throws(() => parseIpv4(bad), { name: 'RangeError', message: new RegExp(`"${bad.replace(/\./g, '\\.')}"`) }, bad);
  }
  t.throws(() => formatIpv4(2 ** 32));
  t.throws(() => formatIpv4(-1));
  t.throws(() => formatIpv4(1.5));
});

t.test('parseCidr accepts subnets of at least /30', async (t) => {
  const r = parseCidr('10.32.0.0/12');
  t.same(r, { start: parseIpv4('10.32.0.0'), prefixLength: 12 });
  t.equal(cidrSize(r), 1048576);
  t.equal(formatIpv4(cidrLast(r)), '10.47.255.255');
  t.equal(cidrEnd(r), parseIpv4('10.48.0.0'));
  t.equal(formatCidr(r), '10.32.0.0/12');
  t.equal(cidrSize(parseCidr('192.168.1.4/30')), 4);
  t.same(parseCidr('0.0.0.0/0'), { start: 0, prefixLength: 0 });
  t.equal(cidrEnd(parseCidr('0.0.0.0/0')), 2 ** 32);
  fc.assert(
    fc.property(address, fc.integer({ min: 0, max: 30 }), (a, len) => {
      const start = networkOf(a, len);
      const c = parseCidr(`${formatIpv4(start)}/${len}`);
      return c.start === start && c.prefixLength === len && cidrContains(c, a) && formatCidr(c) === `${formatIpv4(start)}/${len}`;
    }),
  );
});

t.test('parseCidr refuses bad ranges with a one-line message naming the value', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['10.32.0.1/12', /"10\.32\.0\.1\/12".*host bits set.*did you mean 10\.32\.0\.0\/12/],
    ['10.32.0.0/31', /"10\.32\.0\.0\/31".*too small/],
    ['10.32.0.0/32', /too small/],
    ['10.32.0.0', /"10\.32\.0\.0".*prefix length/],
    ['10.32.0.0/33', /"10\.32\.0\.0\/33"/],
    ['10.32.0.0/012', /"10\.32\.0\.0\/012"/],
    ['10.320.0.0/12', /"10\.320\.0\.0\/12".*not an IPv4 address/],
    ['banana', /"banana"/],
  ];
  for (const [text, message] of cases) {
    t.throws(() => parseCidr(text), { name: 'RangeError', message }, text);
    try {
      parseCidr(text);
    } catch (err) {
      t.notMatch((err as Error).message, /\n/, 'one line');
    }
  }
});

t.test('containment, interface addresses and answers in range form', async (t) => {
  const r = parseCidr('10.32.0.0/12');
  t.ok(cidrContains(r, parseIpv4('10.32.0.0')));
  t.ok(cidrContains(r, parseIpv4('10.47.255.255')));
  t.notOk(cidrContains(r, parseIpv4('10.48.0.0')));
  t.notOk(cidrContains(r, parseIpv4('10.31.255.255')));
  t.equal(formatAddressInRange(parseIpv4('10.32.0.5'), r), '10.32.0.5/12');
  t.same(parseIpv4WithPrefix('10.32.0.5/12'), { address: parseIpv4('10.32.0.5'), prefixLength: 12 });
  t.throws(() => parseIpv4WithPrefix('10.32.0.5'), RangeError);
});
