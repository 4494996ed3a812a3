import t from 'tap';
import { parseCidr } from '../../src/net/ipv4.js';
import { type PeerName, parsePeerName } from '../../src/net/peer-name.js';
import { createRing, transferOwnership } from '../../src/ipam/ring.js';
import {
  STATUS_ALL_UNREACHABLE,
  STATUS_IDLE,
  STATUS_PRIMING,
  STATUS_READY,
  STATUS_WAITING,
  type StatusFacts,
  formatPercent,
  ipamServiceLines,
  ipamStatus,
  renderIpamRanges,
} from '../../src/ipam/status.js';

const RANGE = parseCidr('10.32.0.0/12');
const n1 = parsePeerName('ce:31:e0:06:45:1a');
const n2 = parsePeerName('7e:21:4a:70:2f:45');
const n3 = parsePeerName('ee:38:33:a7:d9:71');
const nick = new Map<PeerName, string>([
  [n1, 'node-1'],
  [n2, 'node-2'],
  [n3, 'node-3'],
]);

t.test('weave status ipam: Weave\'s columns, us first, the rest by name, unreachable marked', async (t) => {
  const ring = createRing(RANGE, [n1, n2, n3]);
  const text = renderIpamRanges(
    { self: n1, ring, activeIps: 4 },
    (p) => nick.get(p) ?? '',
    (p) => p !== n3,
  );
  t.equal(
    text,
    'ce:31:e0:06:45:1a(node-1)               349525 IPs (33.3% of total) (4 active)\n' +
      '7e:21:4a:70:2f:45(node-2)               349526 IPs (33.3% of total) \n' +
      'ee:38:33:a7:d9:71(node-3)               349525 IPs (33.3% of total) - unreachable!\n',
  );
  t.equal(renderIpamRanges({ self: n1, ring: undefined, activeIps: 0 }, () => '', () => true), '', 'no ring, no lines');
  // A peer that owns nothing is not listed, even ourselves.
  const taken = transferOwnership(ring, n1, n2, 1).ring;
  t.equal(renderIpamRanges({ self: n1, ring: taken, activeIps: 0 }, (p) => nick.get(p) ?? '', () => true).split('\n')[0], '7e:21:4a:70:2f:45(node-2)               699051 IPs (66.7% of total) ');
});

t.test('percentages as Go prints %04.1f of a float32', async (t) => {
  t.equal(formatPercent(524288, 1048576), '50.0');
  t.equal(formatPercent(8192, 1048576), '00.8');
  t.equal(formatPercent(1048576, 1048576), '100.0');
  t.equal(formatPercent(0, 1048576), '00.0');
  t.equal(formatPercent(1, 4), '25.0');
  t.equal(formatPercent(1, 3 * 1024), '00.0');
  t.equal(formatPercent(52429, 1048576), '05.0');
});

t.test('Service: ipam lines, labels right-aligned to 15 columns', async (t) => {
  t.same(ipamServiceLines(STATUS_READY, RANGE), [
    '        Service: ipam',
    '         Status: ready',
    '          Range: 10.32.0.0/12',
    '  DefaultSubnet: 10.32.0.0/12',
  ]);
  t.equal(ipamServiceLines('awaiting consensus (quorum: 3, known: 2)', RANGE)[1], '         Status: awaiting consensus (quorum: 3, known: 2)');
});

t.test('the Status: value in Weave\'s order', async (t) => {
  const base: StatusFacts = {
    self: n1,
    ring: undefined,
    isReachable: () => true,
    pending: 0,
    consensusActive: false,
    voter: true,
    quorum: 2,
    knownVoters: 1,
  };
  t.equal(ipamStatus(base), STATUS_IDLE);
  t.equal(ipamStatus({ ...base, consensusActive: true }), 'awaiting consensus (quorum: 2, known: 1)');
  t.equal(ipamStatus({ ...base, consensusActive: true, voter: false }), STATUS_PRIMING);
  const ring = createRing(RANGE, [n2, n3]);
  t.equal(ipamStatus({ ...base, ring }), STATUS_READY);
  t.equal(ipamStatus({ ...base, ring, pending: 1 }), STATUS_WAITING);
  t.equal(ipamStatus({ ...base, ring, isReachable: () => false }), STATUS_ALL_UNREACHABLE);
  t.equal(ipamStatus({ ...base, ring: createRing(RANGE, [n1, n3]), isReachable: () => false }), STATUS_READY, 'we own space');
  t.equal(STATUS_WAITING, 'waiting for IP(s) to become available');
});
