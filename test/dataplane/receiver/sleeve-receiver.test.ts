// The receive path's per-datagram work without the threads and fds (SleeveReceiver with a fake
// TAP write): which messages it injects itself and which it hands over decoded, that the replay
// window and authentication refuse what they must, that malformed input is counted and never
// throws, and that a snapshot keeps a link's replay window.
import t from 'tap';
import { SleeveReceiver, type ReceiverNote } from '../../../src/dataplane/receiver/sleeve-receiver.js';
import { ReceiverControl } from '../../../src/dataplane/receiver/counters.js';
import type { ReceiverSnapshot } from '../../../src/dataplane/receiver/plan.js';
import { OutboundLink } from '../../../src/dataplane/sleeve/outbound.js';
import { FrameSealer, deriveFrameKeys } from '../../../src/dataplane/sleeve/frame-crypto.js';
import { SequenceCounter } from '../../../src/dataplane/sleeve/sequence-counter.js';
import { MessageKind, chunkStride } from '../../../src/dataplane/sleeve/header.js';
import { parseMac } from '../../../src/dataplane/forwarder/mac.js';
import { VIRTIO_NET_HDR_LEN } from '../../../src/dataplane/tap/virtio-net-hdr.js';
import { ETH_P_IP, IPPROTO_TCP, ethernet, ipv4Packet, sequenceFrame, sequenceOf } from '../lib/packets.js';

const UID = 0x1234_5678_9abc_def0n;
const SELF = 0x0277_6200_0001;
const PEER = 0x0277_6200_0002;
const LOCAL = '0a:00:00:00:00:01';
const REMOTE = '0a:00:00:00:00:02';
const UNKNOWN = '0a:00:00:00:00:09';
const STRIDE = chunkStride(1500);
const session = new Uint8Array(32).fill(9);

function setup(encrypted: boolean, injectOk = true, congested?: () => boolean) {
  const control = ReceiverControl.create();
  const injected: Uint8Array[] = [];
  const notes: ReceiverNote[] = [];
  const receiver = new SleeveReceiver({
    control, tapVnetHdr: true, now: () => 0,
    inject: (p) => {
      injected.push(Uint8Array.from(p)); // the Worker's buffer is reused: keep a copy
      return injectOk;
    },
    notify: (n) => notes.push(n),
    ...(congested ? { congested } : {}),
  });
  // The peer dialled: it sends in the dialler's direction.
  const sequence = SequenceCounter.create();
  const sealer = encrypted ? new FrameSealer(deriveFrameKeys(session, UID, true).send, true, { sequence }) : undefined;
  const peerOut = new OutboundLink({ connectionUid: UID, weDialled: true, stride: STRIDE, ...(sealer ? { sealer } : { sequence }) });
  const snapshot: ReceiverSnapshot = {
    self: SELF, locals: [parseMac(LOCAL)], handAllFrames: false,
    links: [{ key: UID.toString(), connectionUid: UID, weDialled: false, ...(encrypted ? { receiveKey: deriveFrameKeys(session, UID, false).receive } : {}) }],
  };
  const pack = (dst: string, seq: number, o: { kind?: MessageKind; dstPeer?: number; length?: number; frame?: Uint8Array } = {}): Buffer => {
    const frame = o.frame ?? sequenceFrame(dst, REMOTE, seq, o.length ?? 100);
    const body = new Uint8Array(VIRTIO_NET_HDR_LEN + frame.length);
    body.set(frame, VIRTIO_NET_HDR_LEN);
    return Buffer.concat(peerOut.pack({ kind: o.kind ?? MessageKind.Frame, srcPeer: PEER, dstPeer: o.dstPeer ?? SELF, vnetHdr: true, body }));
  };
  const from = (): string => '172.31.9.2:6783';
  return { control, injected, notes, receiver, snapshot, pack, from };
}

const seqOf = (p: Uint8Array): number | undefined => sequenceOf(p.subarray(VIRTIO_NET_HDR_LEN));

for (const encrypted of [false, true]) {
  t.test(`${encrypted ? 'encrypted' : 'plain'}: injects local and group frames, hands the rest over decoded`, async (t) => {
    const { control, injected, notes, receiver, snapshot, pack, from } = setup(encrypted);
    receiver.onDatagram(pack(LOCAL, 1), from);
    t.same(control.read().drops, new Map([['unknown-connection', 1]]), 'before the snapshot the link is unknown');
    t.equal(control.read().stats.unknownConnection, 1);
    receiver.apply(snapshot);

    const first = pack(LOCAL, 2);
    receiver.onDatagram(first, from);
    receiver.onDatagram(pack(LOCAL, 3), from);
    t.same(injected.map(seqOf), [2, 3], 'frames to our MAC written into the TAP, in order');
    t.same(notes, [{ type: 'seen', mac: parseMac(REMOTE), peer: PEER }], 'the sender\'s MAC noted once, nothing handed over');
    receiver.onDatagram(first, from);
    t.equal(injected.length, 2, 'a replayed datagram is not injected');
    t.equal(control.read().drops.get('replay'), 1, 'it is counted as a replay');

    receiver.onDatagram(pack('ff:ff:ff:ff:ff:ff', 4), from);
    t.same(injected.map(seqOf), [2, 3, 4], 'a broadcast is injected here');
    const handed = notes.filter((n) => n.type === 'message');
    t.equal(handed.length, 1);
    t.match(handed[0], { type: 'message', link: UID.toString(), kind: MessageKind.Frame, srcPeer: PEER, dstPeer: SELF, injected: true }, 'and handed over to flood on');
    t.equal(seqOf(handed[0]!.type === 'message' ? handed[0]!.body : new Uint8Array()), 4, 'with the opened frame');

    receiver.onDatagram(pack(UNKNOWN, 5), from);
    receiver.onDatagram(pack(LOCAL, 6, { dstPeer: 0x0277_6200_0003 }), from);
    receiver.onDatagram(pack(LOCAL, 7, { kind: MessageKind.Heartbeat }), from);
    t.equal(injected.length, 3, 'unknown unicasts, relays and heartbeats are not injected here');
    t.match(notes.filter((n) => n.type === 'message').slice(1), [
      { kind: MessageKind.Frame, injected: false }, { kind: MessageKind.Frame, dstPeer: 0x0277_6200_0003, injected: false }, { kind: MessageKind.Heartbeat, injected: false },
    ], 'they are handed over, decoded');

    const big = pack(LOCAL, 8, { length: 20_000 });
    t.ok(big.length > STRIDE * 10, 'a super-frame in many chunks');
    receiver.onDatagram(big, from);
    t.equal(seqOf(injected[3]!), 8, 'reassembled and injected whole');
    t.equal(injected[3]!.length, VIRTIO_NET_HDR_LEN + 20_000);

    const stats = control.read().stats;
    t.equal(stats.injected, 4);
    t.equal(stats.received, 7, 'every message opened counted (not the unknown one, not the replay)');
  });
}

t.test('malformed and forged input is counted and dropped; the receiver goes on', async (t) => {
  const { control, injected, notes, receiver, snapshot, pack, from } = setup(true);
  receiver.apply(snapshot);
  receiver.onDatagram(new Uint8Array(3), from);
  receiver.onDatagram(Buffer.from('not a sleeve datagram at all, not at all'), from);
  const altered = pack(LOCAL, 1);
  altered[altered.length - 1]! ^= 1;
  receiver.onDatagram(altered, from);
  t.equal(control.read().stats.malformed, 2);
  t.ok([...control.read().drops.keys()].every((r) => /^malformed-|^authentication$/.test(r)), `reasons ${[...control.read().drops.keys()]}`);
  t.equal(control.read().drops.get('authentication'), 1, 'the altered seal did not open');
  t.match(notes.filter((n) => n.type === 'malformed'), [{ from: '172.31.9.2:6783', total: 1 }], 'one log note for the first (then once per power of ten)');
  receiver.onDatagram(pack(LOCAL, 2), from);
  t.same(injected.map(seqOf), [2], 'good traffic still flows');
});

t.test('a failed TAP write is counted; a new snapshot keeps the replay window; a removed link is forgotten', async (t) => {
  const { control, receiver, snapshot, pack, from, injected } = setup(false, false);
  receiver.apply(snapshot);
  const d = pack(LOCAL, 1);
  receiver.onDatagram(d, from);
  t.equal(control.read().drops.get('tap-write'), 1);
  t.equal(control.read().stats.injected, 0);
  receiver.apply({ ...snapshot, locals: [] });
  receiver.onDatagram(d, from);
  t.equal(control.read().drops.get('replay'), 1, 'the same link after a snapshot change still refuses the replay');
  receiver.apply({ ...snapshot, links: [] });
  receiver.onDatagram(pack(LOCAL, 2), from);
  t.equal(control.read().drops.get('unknown-connection'), 1, 'a link no longer in the snapshot is unknown');
  t.equal(injected.length, 1);
});

t.test('congestion: a frame that negotiated ECN is marked CE and injected, any other unicast frame is dropped and counted', async (t) => {
  let congested = true;
  const asked: number[] = [];
  const { control, injected, receiver, snapshot, pack, from } = setup(false, true, () => {
    asked.push(injected.length);
    return congested;
  });
  receiver.apply(snapshot);
  const tcp = (tos: number, dst = LOCAL): Uint8Array => ethernet(dst, REMOTE, ETH_P_IP, ipv4Packet('10.32.0.2', '10.40.0.1', IPPROTO_TCP, new Uint8Array(20), 64, tos));
  receiver.onDatagram(pack(LOCAL, 1, { frame: tcp(0b10) }), from);
  t.equal(injected.length, 1, 'the ECT(0) frame is delivered');
  t.equal(injected[0]![VIRTIO_NET_HDR_LEN + 14 + 1]! & 0b11, 0b11, 'marked Congestion Experienced');
  t.equal(control.read().stats.ecnMarked, 1);
  receiver.onDatagram(pack(LOCAL, 2, { frame: tcp(0) }), from);
  t.equal(injected.length, 1, 'a frame that did not negotiate ECN is not delivered');
  t.equal(control.read().drops.get('queue-delay'), 1, 'it is counted as a queue-delay drop');
  receiver.onDatagram(pack('ff:ff:ff:ff:ff:ff', 3, { frame: tcp(0, 'ff:ff:ff:ff:ff:ff') }), from);
  t.equal(injected.length, 2, 'a broadcast is not subject to it (it is flooded on, not queued here)');
  congested = false;
  receiver.onDatagram(pack(LOCAL, 4, { frame: tcp(0) }), from);
  t.equal(injected.length, 3, 'without congestion the frame goes through');
  t.equal(injected[2]![VIRTIO_NET_HDR_LEN + 14 + 1], 0, 'unmarked');
  t.same(asked, [0, 1, 2], 'asked once per unicast frame to a local MAC, never for the broadcast');
});
