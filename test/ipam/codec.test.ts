import t from 'tap';
import fc from 'fast-check';
import { parseCidr } from '../../src/net/ipv4.js';
import { type PeerName, peerNameFromNumber } from '../../src/net/peer-name.js';
import { weft } from '../../src/proto.js';
import { Ipam, type Step } from '../../src/ipam/allocator.js';
import { decodeIpamMessage, encodeIpamMessage } from '../../src/ipam/codec.js';
import { type IpamMessage } from '../../src/ipam/messages.js';
import { Cluster } from './cluster-sim.js';

const RANGE = parseCidr('10.32.0.0/12');
const [A, B, C] = [1, 2, 3].map((n) => peerNameFromNumber(0x0a0000000000 + n)) as [PeerName, PeerName, PeerName];

/** decode(encode(m)), to compare with m. */
function roundTrip(m: IpamMessage): unknown {
  return decodeIpamMessage(encodeIpamMessage(m));
}

t.test('every message the core sends survives encoding', async (t) => {
  const cluster = new Cluster({ range: RANGE });
  const sent: IpamMessage[] = [];
  const record = (step: Step): Step => {
    for (const o of step.out) sent.push(o.message);
    return step;
  };
  for (const p of [A, B]) cluster.start(p, { kind: 'seed', members: [A, B] });
  cluster.start(C, { kind: 'seed', members: [A, B] });
  cluster.act(C, (ipam) => record(ipam.allocate('x', 0)));
  cluster.act(C, (ipam) => record(ipam.claim('y', RANGE.start + 5, 0)));
  const voter = Ipam.create({ self: A, range: RANGE, mode: { kind: 'consensus', peers: 2 } });
  record(voter.prime(0));
  record(Ipam.create({ self: B, range: RANGE, mode: { kind: 'observer' } }).allocate('z', 0));
  t.ok(sent.some((m) => m.kind === 'gossip' && m.consensus && m.consensus.size === 0), 'an observer\'s wake-up');
  t.ok(sent.some((m) => m.kind === 'gossip' && m.consensus && m.consensus.size === 1), 'a voter\'s claim');
  const claimed = new Map([[A, { promise: { round: 3, proposer: B }, accepted: { ballot: { round: 2, proposer: A }, value: [A, B] } }]]);
  const ringC = cluster.live.get(C)?.ring;
  t.ok(ringC && ringC.tokens.length > 2, 'a ring with donations');
  const more: IpamMessage[] = [
    ...(ringC ? [{ kind: 'gossip', ring: ringC } as const] : []),
    { kind: 'gossip', consensus: claimed },
    { kind: 'space-request' },
    { kind: 'space-denied' },
    { kind: 'address-request', address: RANGE.start + 9 },
    { kind: 'address-denied', address: RANGE.start + 9, reason: 'address 10.32.0.9 is already in use' },
  ];
  for (const m of [...sent, ...more]) t.same(roundTrip(m), { ok: true, message: m }, m.kind);
});

t.test('malformed messages are refused as results, never thrown', async (t) => {
  const bad = (props: weft.IpamMessage.$Properties): ReturnType<typeof decodeIpamMessage> =>
    decodeIpamMessage(weft.IpamMessage.encode(props).finish());
  t.match(bad({}), { ok: false, error: /no body/ });
  t.match(bad({ gossip: { ring: { rangeStart: 5, prefixLength: 12, members: [1], tokens: [] } } }), { ok: false, error: /invalid ring/ });
  t.match(bad({ gossip: { ring: { rangeStart: 0, prefixLength: 8, members: [2, 1], tokens: [{ start: 0, owner: 1, version: 1 }] } } }), {
    ok: false,
    error: /not sorted/,
  });
  t.match(bad({ gossip: { hasConsensus: true, claims: [{ voter: 1 }, { voter: 1 }] } }), { ok: false, error: /two claims/ });
  t.match(bad({ gossip: { hasConsensus: true, claims: [{ voter: 2 ** 49 }] } }), { ok: false, error: /not a peer name/ });
  t.match(bad({ gossip: { hasConsensus: true, claims: [{ voter: 1, acceptedBallot: { round: 1, proposer: 1 } }] } }), {
    ok: false,
    error: /accepted no members/,
  });
  t.match(bad({ addressDenied: { address: 1, reason: 'two\nlines' } }), { ok: true, message: { reason: 'two lines' } });
  t.match(decodeIpamMessage(Uint8Array.from([0x0a, 0xff, 0xff])), { ok: false, error: /undecodable/ });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const r = decodeIpamMessage(bytes);
      return r.ok || r.error.length > 0;
    }),
    { numRuns: 2000 },
  );
});
