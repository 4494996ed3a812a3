// The sleeve receive path in the TAP reader Worker on the real kernel: datagrams sent to the
// sleeve socket on loopback are opened in the Worker and their frames written into a TAP in a node
// namespace by the Worker itself (the pod behind the bridge answers the echo requests they carry, and the Worker's
// counters say it injected them; nothing is handed to the main thread). A replayed datagram is
// refused (counted, no second answer), garbage is counted as malformed, and the Worker goes on.
import t from 'tap';
import dgram from 'node:dgram';
import type { LocalCluster, ClusterNode } from '../../../src/cluster/cluster.js';
import { createOffloadUdpFd } from '../../../src/dataplane/tap/udp-offload.js';
import { closeFd } from '../../../src/dataplane/tap/libc.js';
import type { ReceiverNote } from '../../../src/dataplane/receiver/sleeve-receiver.js';
import type { ReceiverCounterValues } from '../../../src/dataplane/receiver/counters.js';
import { OutboundLink } from '../../../src/dataplane/sleeve/outbound.js';
import { FrameSealer, deriveFrameKeys } from '../../../src/dataplane/sleeve/frame-crypto.js';
import { SequenceCounter } from '../../../src/dataplane/sleeve/sequence-counter.js';
import { MessageKind, chunkStride } from '../../../src/dataplane/sleeve/header.js';
import { parseMac } from '../../../src/dataplane/forwarder/mac.js';
import { VIRTIO_NET_HDR_LEN } from '../../../src/dataplane/tap/virtio-net-hdr.js';
import { ETH_P_IP, IPPROTO_ICMP, ethernet, internetChecksum, ipv4Packet, parseEthernet, parseIpv4Packet } from '../lib/packets.js';
import { destroyChecked, eventually, openNodeTap, quietTapNode } from '../lib/tap-node.js';

const PREFIX = 'wtt6';
const BRIDGE = 'wtt6-br0';
const MTU = 1376;
const POD_IP = '10.32.0.5';
const POD_MAC = '02:00:0a:20:00:05';
/** A pod at the peer: the sender of the echo requests. */
const REMOTE_IP = '10.32.0.99';
const REMOTE_MAC = '02:00:0a:20:00:63';
const UID = 0x0123456789abcdefn;
const SELF = 0x0277_6200_0001;
const PEER = 0x0277_6200_0002;
const STRIDE = chunkStride(1500);

let cluster: LocalCluster;
let node: ClusterNode;

t.before(async () => {
  ({ cluster, node } = await quietTapNode(PREFIX, BRIDGE, MTU));
});

t.teardown(() => destroyChecked(cluster, PREFIX));

/** [virtio_net_hdr (nothing to finish)][Ethernet: echo request from the remote pod to ours, ICMP sequence `seq`]. */
function echoRequest(seq: number): Uint8Array {
  const icmp = new Uint8Array(8 + 32);
  icmp[0] = 8; // echo request
  new DataView(icmp.buffer).setUint16(4, 0x7777);
  new DataView(icmp.buffer).setUint16(6, seq);
  new DataView(icmp.buffer).setUint16(2, internetChecksum(icmp));
  const frame = ethernet(POD_MAC, REMOTE_MAC, ETH_P_IP, ipv4Packet(REMOTE_IP, POD_IP, IPPROTO_ICMP, icmp));
  const packet = new Uint8Array(VIRTIO_NET_HDR_LEN + frame.length);
  packet.set(frame, VIRTIO_NET_HDR_LEN);
  return packet;
}

/** A free UDP port on loopback (asked of the kernel, then released for the native socket). */
async function freePort(): Promise<number> {
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(resolve));
  return port;
}

t.test('encrypted: the TAP reader Worker injects frames for our MAC itself, refuses a replay, counts garbage, goes on', async (t) => {
  const pod = await cluster.addPod(node, { name: 'rp', ip: `${POD_IP}/12`, bridge: BRIDGE, mtu: MTU, mac: POD_MAC });
  t.teardown(() => cluster.removePod(pod));
  await pod.iproute(['neigh', 'replace', REMOTE_IP, 'lladdr', REMOTE_MAC, 'dev', 'eth0', 'nud', 'permanent']);

  const port = await freePort();
  const udpFd = createOffloadUdpFd({ address: '127.0.0.1', port, gro: true });
  t.teardown(() => closeFd(udpFd)); // teardowns run last-in first-out: after the Worker and the TAP
  const tap = await openNodeTap(node, { name: 'wtt6-tap', bridge: BRIDGE, mtu: MTU, receiver: { udpFd } });
  t.teardown(() => tap.close());
  // The pod's answers come back out of the TAP: their ICMP sequence numbers.
  const replies: number[] = [];
  tap.onFrames((packet) => {
    const ip = parseIpv4Packet(parseEthernet(packet.subarray(tap.headerLength))?.payload ?? new Uint8Array(0));
    if (ip?.dst === REMOTE_IP && ip.protocol === IPPROTO_ICMP && ip.payload[0] === 0) replies.push(new DataView(ip.payload.buffer, ip.payload.byteOffset).getUint16(6));
  });
  const notes: ReceiverNote[] = [];
  const errors: Error[] = [];
  tap.onReceiverNote((n) => notes.push(n));
  tap.onError((e) => errors.push(e));
  const counters = (): ReceiverCounterValues => {
    const c = tap.receiverCounters();
    if (c === undefined) throw new Error('the TAP was opened without a receiver');
    return c;
  };

  const session = new Uint8Array(32).fill(5);
  tap.updateReceiver({
    self: SELF, locals: [parseMac(POD_MAC)], handAllFrames: false,
    links: [{ key: UID.toString(), connectionUid: UID, weDialled: false, receiveKey: deriveFrameKeys(session, UID, false).receive }],
  });
  // The peer, which dialled.
  const sequence = SequenceCounter.create();
  const peerOut = new OutboundLink({ connectionUid: UID, weDialled: true, stride: STRIDE, sealer: new FrameSealer(deriveFrameKeys(session, UID, true).send, true, { sequence }) });
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve));
  t.teardown(() => peer.close());
  const send = (b: Uint8Array): Promise<void> => new Promise((resolve, reject) => peer.send(b, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  const datagram = (seq: number): Buffer => Buffer.concat(peerOut.pack({ kind: MessageKind.Frame, srcPeer: PEER, dstPeer: SELF, vnetHdr: true, body: echoRequest(seq) }));

  const first = datagram(1);
  await send(first);
  t.ok(await eventually(() => replies.includes(1), 5_000), 'the pod answered the echo request the Worker injected');
  t.equal(counters().stats.injected, 1, 'the Worker counted it as injected');
  t.equal(counters().stats.received, 1);
  t.same(notes.filter((n) => n.type === 'message'), [], 'nothing was handed to the main thread');
  t.same(notes.filter((n) => n.type === 'seen'), [{ type: 'seen', mac: parseMac(REMOTE_MAC), peer: PEER }], 'the sender\'s MAC was noted');

  await send(first); // replayed
  await send(datagram(2));
  t.ok(await eventually(() => replies.includes(2), 5_000), 'the next frame was answered');
  t.equal(counters().drops.get('replay'), 1, 'the replay was refused and counted');
  t.same(replies, [1, 2], 'the replay never reached the pod');

  for (const junk of [Buffer.alloc(4), Buffer.from('garbage garbage garbage garbage garbage')]) await send(junk);
  await send(datagram(3));
  t.ok(await eventually(() => replies.includes(3), 5_000), 'after garbage the Worker still injects');
  t.equal(counters().stats.malformed, 2, 'the garbage was counted as malformed');
  t.match(notes.filter((n) => n.type === 'malformed'), [{ type: 'malformed', from: '127.0.0.1:' + peer.address().port, total: 1 }], 'its first one noted for the log, with the sender');
  t.equal(counters().stats.injected, 3);
  t.same(errors, []);
});
