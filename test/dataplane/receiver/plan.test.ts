// Of what it receives, what the TAP reader Worker keeps and what it hands to the main thread (pure):
// decide() against Forwarder.onReceived's rules, the rate limit of "MAC seen" notes, and the
// snapshot signature.
import t from 'tap';
import { decide, receiverSignature, RemoteMacNotes, type OpenedMessage, type ReceiverState } from '../../../src/dataplane/receiver/plan.js';
import { parseMac, BROADCAST_MAC } from '../../../src/dataplane/forwarder/mac.js';
import { MessageKind } from '../../../src/dataplane/sleeve/header.js';

const SELF = 1;
const PEER = 2;
const OTHER = 3;
const LOCAL = parseMac('0a:00:00:00:00:01');
const UNKNOWN = parseMac('0a:00:00:00:00:09');
const REMOTE = parseMac('0a:00:00:00:00:02');
const MULTICAST = parseMac('01:00:5e:00:00:01');
const STP = parseMac('01:80:c2:00:00:00');

const state: ReceiverState = { self: SELF, locals: new Set([LOCAL]), handAllFrames: false, tapVnetHdr: true };
const frame = (o: Partial<OpenedMessage> = {}): OpenedMessage => ({
  kind: MessageKind.Frame, srcPeer: PEER, dstPeer: SELF, vnetHdr: true, dst: LOCAL, src: REMOTE, ...o,
});

t.test('the Worker injects unicasts to our MACs and group frames; it hands over the rest', async (t) => {
  t.equal(decide(frame(), state), 'inject', 'to a local MAC: inject, nothing else');
  t.equal(decide(frame({ dst: BROADCAST_MAC }), state), 'inject-and-hand', 'broadcast: inject here, flood on there');
  t.equal(decide(frame({ dst: MULTICAST }), state), 'inject-and-hand', 'multicast too');
  t.equal(decide(frame({ dst: UNKNOWN }), state), 'hand', 'an unknown unicast: the forwarder injects and floods it');
  t.equal(decide(frame({ dstPeer: OTHER }), state), 'hand', 'for another peer: a relay');
  t.equal(decide(frame({ srcPeer: SELF }), state), 'hand', 'our own frame come back: the forwarder drops it');
  t.equal(decide(frame({ src: MULTICAST }), state), 'hand', 'a group source: the forwarder drops it');
  t.equal(decide(frame({ dst: STP }), state), 'hand', 'bridge-reserved destination: the forwarder drops it');
  t.equal(decide(frame({ vnetHdr: false }), state), 'hand', 'no virtio header for an offload TAP: the main thread converts');
  t.equal(decide(frame(), { ...state, tapVnetHdr: false }), 'hand', 'a super-frame for a TAP without offloads: segmented on the main thread');
  t.equal(decide(frame(), { ...state, handAllFrames: true }), 'hand', 'with the fast path everything goes to the main thread');
  for (const kind of [MessageKind.Heartbeat, MessageKind.HeartbeatAck]) {
    t.equal(decide(frame({ kind }), state), 'hand', `kind ${kind}: heartbeats are the main thread's`);
  }
});

t.test('"seen" notes: at once for a new or moved MAC, then at most once per interval', async (t) => {
  const notes = new RemoteMacNotes(1000);
  t.ok(notes.due(REMOTE, PEER, 0), 'new');
  t.notOk(notes.due(REMOTE, PEER, 10), 'again within the interval');
  t.notOk(notes.due(REMOTE, PEER, 999));
  t.ok(notes.due(REMOTE, OTHER, 1000 - 1), 'moved to another peer: at once');
  t.ok(notes.due(UNKNOWN, PEER, 5), 'another MAC is independent');
  t.ok(notes.due(REMOTE, OTHER, 999 + 1000), 'the interval passed');
  notes.reset();
  t.ok(notes.due(UNKNOWN, PEER, 6), 'after a reset (the main thread forgot a peer\'s MACs): at once');
});

t.test('the signature changes exactly when the snapshot does', async (t) => {
  const base = { self: SELF, links: [{ key: '7', connectionUid: 7n, weDialled: true }], locals: [LOCAL], handAllFrames: false };
  const same = { ...base, links: [{ key: '7', connectionUid: 7n, weDialled: true }], locals: [LOCAL] };
  t.equal(receiverSignature(same), receiverSignature(base));
  t.not(receiverSignature({ ...base, locals: [] }), receiverSignature(base), 'local MACs');
  t.not(receiverSignature({ ...base, handAllFrames: true }), receiverSignature(base), 'fast path');
  t.not(receiverSignature({ ...base, links: [] }), receiverSignature(base), 'links');
  t.not(receiverSignature({ ...base, links: [{ ...base.links[0]!, receiveKey: new Uint8Array(32) }] }), receiverSignature(base), 'a key');
  const k1 = { ...base, links: [{ ...base.links[0]!, receiveKey: new Uint8Array(32).fill(1) }] };
  const k2 = { ...base, links: [{ ...base.links[0]!, receiveKey: new Uint8Array(32).fill(2) }] };
  t.not(receiverSignature(k1), receiverSignature(k2), 'another key');
});
