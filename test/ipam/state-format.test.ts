import t from 'tap';
import fc from 'fast-check';
import { parseCidr } from '../../src/net/ipv4.js';
import { type PeerName, peerNameFromNumber } from '../../src/net/peer-name.js';
import { Ipam } from '../../src/ipam/allocator.js';
import { checkRing, ownerOf } from '../../src/ipam/ring.js';
import {
  type IpamPersistentState,
  encodeState,
  parseState,
  parseStateText,
  stateToText,
} from '../../src/ipam/state-format.js';
import { Cluster } from './cluster-sim.js';

const RANGE = parseCidr('10.32.0.0/12');
const [A, B, C] = [1, 2, 3].map((n) => peerNameFromNumber(0x0a0000000000 + n)) as [PeerName, PeerName, PeerName];

/** A state with some history: donations, allocations, a claim. */
function busyState(): IpamPersistentState {
  const cluster = new Cluster({ range: RANGE });
  for (const p of [A, B]) cluster.start(p, { kind: 'seed', members: [A, B] });
  cluster.start(C, { kind: 'seed', members: [A, B] });
  for (let i = 0; i < 5; i++) cluster.act(C, (ipam) => ipam.allocate(`c${i}`, 0));
  cluster.act(C, (ipam) => ipam.claim('claimed', RANGE.start + 77, 0));
  cluster.tick(100);
  return (cluster.live.get(C) as Ipam).persistentState();
}

t.test('a state survives the trip through text unchanged', async (t) => {
  const state = busyState();
  t.ok(state.allocations.length === 6 && state.ring && state.ring.tokens.length > 3, 'a state worth checking');
  const back = parseStateText(stateToText(state), { peer: C, range: RANGE });
  t.ok(back.ok);
  if (back.ok) t.same(back.state, state);
  const consensus = Ipam.create({ self: A, range: RANGE, mode: { kind: 'consensus', peers: 2 } });
  consensus.prime(0);
  const claims = parseState(JSON.parse(stateToText(consensus.persistentState())), { peer: A, range: RANGE });
  t.ok(claims.ok && claims.state.ring === undefined && claims.state.claims.size === 1);
});

t.test('the text is readable JSON with addresses written as addresses', async (t) => {
  const json = encodeState(busyState());
  t.equal(json.format, 'weft-ipam');
  t.equal(json.version, 1);
  t.equal(json.range, '10.32.0.0/12');
  t.same(json.allocations[0], { id: 'claimed', address: '10.32.0.77' }, 'sorted by address; the claim came from A');
  t.match(json.ring?.tokens[0], { start: '10.32.0.0', owner: A, version: Number, free: Number });
});

t.test('state of another peer or range is refused with a clear message', async (t) => {
  const text = stateToText(busyState());
  t.same(parseStateText(text, { peer: A, range: RANGE }), {
    ok: false,
    reason: 'other-peer',
    message: `persisted IPAM data is for peer ${C}, we are ${A}`,
  });
  t.same(parseStateText(text, { peer: C, range: parseCidr('10.0.0.0/16') }), {
    ok: false,
    reason: 'other-range',
    message: 'persisted IPAM data is for range 10.32.0.0/12, our range is 10.0.0.0/16',
  });
});

t.test('corrupt states are refused, never thrown', async (t) => {
  const good = encodeState(busyState());
  const expect = { peer: C, range: RANGE };
  const cases: Array<[string, unknown, RegExp]> = [
    ['not JSON', undefined, /not JSON/],
    ['array', [], /not a JSON object/],
    ['other format', { ...good, format: 'weave' }, /not a weft-ipam state/],
    ['newer version', { ...good, version: 2 }, /unknown format version 2/],
    ['bad peer', { ...good, peer: 'zz' }, /peer "zz" is not a peer name/],
    ['short peer', { ...good, peer: '::3' }, /not a canonical peer name/],
    ['bad range', { ...good, range: '10.32.0.1/12' }, /range "10\.32\.0\.1\/12" is not a valid range/],
    ['unsorted tokens', { ...good, ring: { ...good.ring, tokens: [...(good.ring?.tokens ?? [])].reverse() } }, /ring: /],
    ['missing field', { ...good, allocations: undefined }, /allocations is not a list/],
    ['missing key', Object.fromEntries(Object.entries(good).filter(([k]) => k !== 'ring')), /missing "ring"/],
    ['two ids, one address', { ...good, allocations: [...good.allocations, { id: 'dup', address: good.allocations[0]?.address }] }, /held by two ids/],
    ['one id twice', { ...good, allocations: [...good.allocations, { id: 'c0', address: '10.40.0.1' }] }, /holds two addresses/],
    ['reserved', { ...good, allocations: [{ id: 'x', address: '10.32.0.0' }] }, /reserved/],
    ['not ours', { ...good, allocations: [{ id: 'x', address: '10.32.0.5' }] }, /not owned by/],
    ['allocations without ring', { ...good, ring: null }, /not owned by/],
    ['negative version', { ...good, ring: { ...good.ring, tokens: good.ring?.tokens.map((tk) => ({ ...tk, version: -1 })) } }, /version is not a whole number/],
    ['bad claim', { ...good, consensus: [{ voter: A, promise: { round: 0, proposer: A }, accepted: null }] }, /round is 0/],
  ];
  for (const [what, value, message] of cases) {
    const r = value === undefined ? parseStateText('{"format": "weft-ipam", trunc', expect) : parseState(value, expect);
    t.match(r, { ok: false, reason: 'corrupt', message }, what);
  }
});

t.test('any damage to a good state is either refused or still a sound state', async (t) => {
  const good = encodeState(busyState());
  const text = JSON.stringify(good);
  fc.assert(
    fc.property(fc.nat(text.length - 1), fc.nat(text.length), fc.string({ maxLength: 8 }), (at, len, insert) => {
      const damaged = text.slice(0, at) + insert + text.slice(at + (len % 12));
      const r = parseStateText(damaged, { peer: C, range: RANGE });
      if (!r.ok) return r.message.length > 0;
      const ring = r.state.ring;
      return (
        ring !== undefined &&
        checkRing(ring) === undefined &&
        r.state.allocations.every((a) => ownerOf(ring, a.address) === C) &&
        new Set(r.state.allocations.map((a) => a.address)).size === r.state.allocations.length
      );
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
