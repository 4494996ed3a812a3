// The topology messages on the wire: round trips, and refusal of anything malformed with a
// TopologyDecodeError (never another exception).
import t from 'tap';
import { deepStrictEqual, ok } from 'node:assert/strict';
import fc from 'fast-check';
import { weft } from '../../src/proto.js';
import { peerNameFromNumber, type PeerName } from '../../src/net/peer-name.js';
import { uidToBytes } from '../../src/net/uid.js';
import {
  TopologyDecodeError,
  decodeTopologyMessage,
  encodeTopologyMessage,
  type TopologyMessage,
} from '../../src/mesh/topology-codec.js';
import { ProtocolError } from '../../src/mesh/protocol-error.js';
import { canonicalConnections, type ConnectionSummary, type PeerDelta, type PeerRecord } from '../../src/mesh/topology.js';

/** Records with an ordinary prototype, so they compare equal to what the decoder builds. */
const record: typeof fc.record = ((model: never) => fc.record(model, { noNullPrototype: true })) as typeof fc.record;

const nameArb = fc.integer({ min: 1, max: 2 ** 48 - 1 }).map(peerNameFromNumber);
const uidArb = fc.bigInt({ min: 1n, max: 2n ** 64n - 1n });
const versionArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const textArb = fc.string({ maxLength: 40 }).filter((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s));
const connArb: fc.Arbitrary<ConnectionSummary> = record({
  name: nameArb,
  address: textArb,
  outbound: fc.boolean(),
  established: fc.boolean(),
});
const connsOf = (owner: PeerName) =>
  fc.uniqueArray(connArb, { selector: (c) => c.name, maxLength: 6 }).map((cs) => canonicalConnections(owner, cs));

const recordArb: fc.Arbitrary<PeerRecord> = nameArb.chain((name) =>
  record({
    name: fc.constant(name),
    nickname: textArb,
    uid: uidArb,
    version: versionArb,
    shortId: fc.integer({ min: 0, max: 4095 }),
    connections: connsOf(name),
  }),
);

const deltaArb: fc.Arbitrary<PeerDelta> = nameArb.chain((name) =>
  fc
    .record({
      name: fc.constant(name),
      uid: uidArb,
      fromVersion: fc.integer({ min: 1, max: 2 ** 40 }),
      step: fc.integer({ min: 1, max: 100 }),
      nickname: textArb,
      shortId: fc.integer({ min: 0, max: 4095 }),
      upserts: connsOf(name),
      removes: fc.uniqueArray(nameArb, { maxLength: 4 }),
    })
    .map(({ step, ...d }) => ({
      ...d,
      version: d.fromVersion + step,
      removes: d.removes.filter((n) => n !== name && !d.upserts.some((c) => c.name === n)),
    })),
);

const messageArb: fc.Arbitrary<TopologyMessage> = fc.oneof(
  record({
    type: fc.constant('update' as const),
    peers: fc.array(recordArb, { maxLength: 4 }),
    deltas: fc.array(deltaArb, { maxLength: 4 }),
    senderVersion: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  }),
  record({
    type: fc.constant('digest' as const),
    hash: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    full: fc.boolean(),
    reply: fc.boolean(),
    versions: fc.uniqueArray(record({ name: nameArb, uid: uidArb, version: versionArb }), { selector: (v) => v.name, maxLength: 5 }),
  }),
  record({ type: fc.constant('request' as const), names: fc.uniqueArray(nameArb, { maxLength: 6 }) }),
);

t.test('every valid message survives a round trip unchanged', async (t) => {
  fc.assert(
    fc.property(messageArb, (m) => {
      const back = decodeTopologyMessage(encodeTopologyMessage(m));
      if (back.type === 'digest' && m.type === 'digest') {
        deepStrictEqual({ ...back, hash: [...back.hash] }, { ...m, hash: [...m.hash] });
      } else {
        deepStrictEqual(back, m);
      }
    }),
  );
  t.pass('checked');
});

/** Runs decode; a TopologyDecodeError is an accepted outcome, anything else thrown fails. */
function decodeOrRefuse(bytes: Uint8Array): TopologyMessage | TopologyDecodeError {
  try {
    return decodeTopologyMessage(bytes);
  } catch (err) {
    if (err instanceof TopologyDecodeError) return err;
    throw err;
  }
}

t.test('random bytes decode or are refused with TopologyDecodeError, never anything else', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => void decodeOrRefuse(bytes)), { numRuns: 5000 });
  t.pass('checked');
});

t.test('mutated valid messages decode to valid messages or are refused', async (t) => {
  fc.assert(
    fc.property(messageArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (m, flips) => {
      const bytes = Uint8Array.from(encodeTopologyMessage(m));
      for (const [i, b] of flips) if (bytes.length > 0) bytes[i % bytes.length] = b;
      const r = decodeOrRefuse(bytes);
      // Whatever decodes must be acceptable to send again: it passed every rule.
      if (!(r instanceof TopologyDecodeError)) ok(encodeTopologyMessage(r).length >= 0);
    }),
    { numRuns: 3000 },
  );
  t.pass('checked');
});

t.test('the decode error is a ProtocolError, so the connection shell closes the link', async (t) => {
  t.ok(new TopologyDecodeError('x') instanceof ProtocolError);
});

const N1 = 0x02_00_00_00_00_01;
const N2 = 0x02_00_00_00_00_02;
const uid = uidToBytes(5n);
const wire = (m: weft.TopologyMessage.$Properties): Uint8Array => weft.TopologyMessage.encode(m).finish();
const goodPeer = { name: N1, nickname: 'a', uid, version: 3, shortId: 1, connections: [{ name: N2, address: '10.0.0.2:6783' }] };

const rejects: [string, weft.TopologyMessage.$Properties][] = [
  ['an empty message', {}],
  ['a zero peer name', { update: { peers: [{ ...goodPeer, name: 0 }] } }],
  ['a name beyond 48 bits', { update: { peers: [{ ...goodPeer, name: 2 ** 48 }] } }],
  ['a 7-byte uid', { update: { peers: [{ ...goodPeer, uid: new Uint8Array(7) }] } }],
  ['a zero uid', { update: { peers: [{ ...goodPeer, uid: new Uint8Array(8) }] } }],
  ['version 0', { update: { peers: [{ ...goodPeer, version: 0 }] } }],
  ['a version beyond 2^53', { update: { peers: [{ ...goodPeer, version: 2 ** 60 }] } }],
  ['a 13-bit short id', { update: { peers: [{ ...goodPeer, shortId: 4096 }] } }],
  ['a nickname with a newline', { update: { peers: [{ ...goodPeer, nickname: 'a\nb' }] } }],
  ['a connection to itself', { update: { peers: [{ ...goodPeer, connections: [{ name: N1 }] }] } }],
  ['a duplicate connection', { update: { peers: [{ ...goodPeer, connections: [{ name: N2 }, { name: N2 }] }] } }],
  ['a delta that does not go forward', { update: { deltas: [{ name: N1, uid, fromVersion: 4, version: 4 }] } }],
  ['a delta from version 0', { update: { deltas: [{ name: N1, uid, fromVersion: 0, version: 4 }] } }],
  ['a delta that changes and removes one connection', { update: { deltas: [{ name: N1, uid, fromVersion: 1, version: 2, upserts: [{ name: N2 }], removes: [N2] }] } }],
  ['a short hash', { digest: { hash: new Uint8Array(15) } }],
  ['a version list naming a peer twice', { digest: { hash: new Uint8Array(16), full: true, versions: [{ name: N1, uid, version: 1 }, { name: N1, uid, version: 2 }] } }],
  ['a request for name 0', { request: { names: [0] } }],
];

t.test('malformed messages are refused, naming what is wrong', async (t) => {
  for (const [what, m] of rejects) {
    t.throws(() => decodeTopologyMessage(wire(m)), TopologyDecodeError, what);
  }
  t.ok(decodeTopologyMessage(wire({ update: { peers: [goodPeer] } })).type === 'update', 'the base case is fine');
});

t.test('connection lists come out sorted by name whatever the order on the wire', async (t) => {
  const m = decodeTopologyMessage(
    wire({ update: { peers: [{ ...goodPeer, connections: [{ name: N2 + 5 }, { name: N2 }] }] } }),
  );
  t.equal(m.type, 'update');
  if (m.type === 'update') t.same(m.peers[0]!.connections.map((c) => c.name), [peerNameFromNumber(N2), peerNameFromNumber(N2 + 5)]);
});

t.test('we refuse to send what we would refuse to receive', async (t) => {
  t.throws(() => encodeTopologyMessage({ type: 'request', names: ['00:00:00:00:00:00' as PeerName] }), RangeError);
  t.throws(() => encodeTopologyMessage({ type: 'digest', hash: new Uint8Array(3), full: false, reply: false, versions: [] }), RangeError);
});
