// The TAP reader's own send path on the real kernel: a pod in a node namespace pings through a
// TAP opened with a sender; frames the snapshot gives the reader leave on the UDP socket straight
// from the reader thread (the main thread never sees them), numbered from the link's shared
// counter, and open on the receiving side, encrypted or not, interleaved with messages the main
// thread sends on the same link. Frames the snapshot does not cover still reach the main thread.
import t from 'tap';
import dgram from 'node:dgram';
import type { LocalCluster, ClusterNode, Pod } from '../../../src/cluster/cluster.js';
import { createOffloadUdpSocket } from '../../../src/dataplane/tap/udp-offload.js';
import { splitDatagram } from '../../../src/dataplane/sleeve/chunker.js';
import { FrameOpener, FrameSealer, deriveFrameKeys } from '../../../src/dataplane/sleeve/frame-crypto.js';
import { MessageKind, SleeveFormatError, chunkStride } from '../../../src/dataplane/sleeve/header.js';
import { InboundLink } from '../../../src/dataplane/sleeve/inbound.js';
import { OutboundLink } from '../../../src/dataplane/sleeve/outbound.js';
import { Reassembler } from '../../../src/dataplane/sleeve/reassembler.js';
import { SequenceCounter } from '../../../src/dataplane/sleeve/sequence-counter.js';
import { parseMac, macFromBytes } from '../../../src/dataplane/forwarder/mac.js';
import type { SenderNote } from '../../../src/dataplane/sender/worker-sender.js';
import { VIRTIO_NET_HDR_LEN } from '../../../src/dataplane/tap/virtio-net-hdr.js';
import { ETH_P_IP, parseEthernet, parseIpv4Packet } from '../lib/packets.js';
import { destroyChecked, eventually, openNodeTap, quietTapNode } from '../lib/tap-node.js';

const PREFIX = 'wtt5';
const BRIDGE = 'wtt5-br0';
const MTU = 1376;
const POD_MAC = '02:00:0a:20:00:05';
/** At a "remote peer": the snapshot routes it, so frames to it are the reader's. */
const REMOTE_IP = '10.32.0.99';
const REMOTE_MAC = '02:00:0a:20:00:63';
/** Unknown to the snapshot: frames to it stay with the main thread. */
const OTHER_IP = '10.32.0.98';
const OTHER_MAC = '02:00:0a:20:00:62';
const UID = 0x0123456789abcdefn;
const SELF = 0x0277_6200_0001;
const PEER = 0x0277_6200_0002;
const STRIDE = chunkStride(1500);

let cluster: LocalCluster;

/** Exactly `n` echo requests to `ip` (nobody answers them; ping's -c without -w counts requests). */
async function echoRequests(pod: Pod, ip: string, n: number): Promise<void> {
  await pod.exec(['ping', '-n', '-q', '-c', String(n), '-i', '0.02', '-W', '0.1', ip], { timeoutMs: 10_000 });
}

let node: ClusterNode;

t.before(async () => {
  ({ cluster, node } = await quietTapNode(PREFIX, BRIDGE, MTU));
});

t.teardown(() => destroyChecked(cluster, PREFIX));

for (const encrypted of [false, true]) {
  t.test(`${encrypted ? 'encrypted' : 'plain'}: the reader sends the snapshot's frames itself; the rest reach the main thread`, async (t) => {
    const pod = await cluster.addPod(node, { name: encrypted ? 'pe' : 'pp', ip: '10.32.0.5/12', bridge: BRIDGE, mtu: MTU, mac: POD_MAC });
    t.teardown(() => cluster.removePod(pod));
    await pod.iproute(['neigh', 'replace', REMOTE_IP, 'lladdr', REMOTE_MAC, 'dev', 'eth0', 'nud', 'permanent']);
    await pod.iproute(['neigh', 'replace', OTHER_IP, 'lladdr', OTHER_MAC, 'dev', 'eth0', 'nud', 'permanent']);

    // The receiving peer: a plain socket on loopback, one datagram per chunk.
    const receiver = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    t.teardown(() => receiver.close());
    const session = new Uint8Array(32).fill(7);
    const ours = deriveFrameKeys(session, UID, true);
    const theirs = deriveFrameKeys(session, UID, false);
    const inbound = new InboundLink({
      connectionUid: UID, weDialled: false, reassembler: new Reassembler(),
      ...(encrypted ? { opener: new FrameOpener(theirs.receive, true) } : {}),
    });
    const arrived: { kind: number; sequence: number; srcPeer: number; dstPeer: number; body: Uint8Array }[] = [];
    const refused: string[] = [];
    receiver.on('message', (msg) => {
      for (const chunk of splitDatagram(msg)) {
        if (chunk instanceof SleeveFormatError) {
          refused.push(chunk.reason);
          continue;
        }
        const r = inbound.accept(chunk, 0);
        if (r.status === 'message') arrived.push({ ...r.message, body: Buffer.from(r.message.body) });
        else if (r.status === 'dropped') refused.push(r.reason);
      }
    });

    // Our side: the sleeve socket, and the TAP whose reader sends on it.
    const udp = await createOffloadUdpSocket({ address: '127.0.0.1', port: 0, segmentSize: STRIDE });
    t.teardown(() => udp.socket.close()); // after the TAP's close (teardowns run last-in first-out)
    const tap = await openNodeTap(node, { name: 'wtt5-tap', bridge: BRIDGE, mtu: MTU, sender: { udpFd: udp.fd } });
    t.teardown(() => tap.close());
    const toMain: string[] = [];
    tap.onFrames((packet) => {
      const eth = parseEthernet(packet.subarray(tap.headerLength));
      if (eth?.type === ETH_P_IP) toMain.push(parseIpv4Packet(eth.payload)?.dst ?? '?');
    });
    const notes: SenderNote[] = [];
    tap.onSenderNote((n) => notes.push(n));

    // Before any snapshot the main thread gets everything.
    await echoRequests(pod, REMOTE_IP, 2);
    t.ok(await eventually(() => toMain.filter((d) => d === REMOTE_IP).length === 2), 'without a snapshot, frames go to the main thread');

    const sequence = SequenceCounter.create();
    const sealer = encrypted ? new FrameSealer(ours.send, true, { sequence }) : undefined;
    const mainOut = new OutboundLink({ connectionUid: UID, weDialled: true, stride: STRIDE, ...(sealer ? { sealer } : { sequence }) });
    const receiverPort = receiver.address().port;
    tap.updateSender({
      self: SELF,
      links: [{
        key: UID.toString(), connectionUid: UID, weDialled: true, stride: STRIDE, remoteIp: '127.0.0.1', remotePort: receiverPort,
        sequence: sequence.buffer, ...(encrypted ? { sendKey: ours.send } : {}),
      }],
      routes: [{ mac: parseMac(REMOTE_MAC), link: UID.toString(), dstPeer: PEER }],
      locals: [parseMac(POD_MAC)],
    });

    // The main thread sends on the same link while the reader does: one counter for both.
    const heartbeats = setInterval(() => {
      for (const b of mainOut.pack({ kind: MessageKind.Heartbeat, srcPeer: SELF, dstPeer: PEER, vnetHdr: false, body: new Uint8Array(100) })) {
        udp.socket.send(b, receiverPort, '127.0.0.1');
      }
    }, 5);
    const pings = 20;
    await echoRequests(pod, REMOTE_IP, pings);
    await echoRequests(pod, OTHER_IP, 2);
    clearInterval(heartbeats);

    const frames = (): typeof arrived => arrived.filter((m) => m.kind === MessageKind.Frame);
    t.ok(await eventually(() => frames().length === pings), `the reader's ${pings} echo requests arrived (${frames().length})`);
    t.equal(toMain.filter((d) => d === REMOTE_IP).length, 2, 'none of them went through the main thread');
    t.equal(toMain.filter((d) => d === OTHER_IP).length, 2, 'frames to a MAC the snapshot does not know still do');
    for (const m of frames()) {
      const offset = VIRTIO_NET_HDR_LEN;
      t.equal(macFromBytes(m.body, offset), parseMac(REMOTE_MAC));
      t.equal(macFromBytes(m.body, offset + 6), parseMac(POD_MAC));
      const ip = parseIpv4Packet(parseEthernet(m.body.subarray(offset))?.payload ?? new Uint8Array(0));
      t.equal(ip?.dst, REMOTE_IP);
      t.same([m.srcPeer, m.dstPeer], [SELF, PEER], 'overlay header: from us to the MAC\'s peer');
    }
    const heartbeatCount = arrived.length - frames().length;
    t.ok(heartbeatCount > 0, `the main thread's ${heartbeatCount} messages on the same link arrived too`);
    t.same(refused, [], 'nothing refused: no sequence number used twice (no replay), every seal opened');
    const seqs = arrived.map((m) => m.sequence).sort((a, b) => a - b);
    t.same(seqs, seqs.map((_, i) => i), 'the two threads took every number exactly once');
    const counters = tap.senderCounters();
    t.equal(counters?.stats.captured, pings, 'the reader counted what it took');
    t.equal(counters?.stats.sent, pings, 'and what it sent (one datagram each)');
    t.equal(counters?.stats.sendErrors, 0);
    t.same(notes.filter((n) => n.type === 'seen'), [{ type: 'seen', macs: [parseMac(POD_MAC)] }], 'the pod\'s MAC reported alive once (not again within a second)');

    // A snapshot the reader cannot use (an address it cannot encode) does not end it: it says so
    // and leaves every frame to the main thread.
    tap.updateSender({
      self: SELF,
      links: [{ key: '1', connectionUid: 1n, weDialled: true, stride: STRIDE, remoteIp: 'not-an-address', remotePort: 6783, sequence: sequence.buffer }],
      routes: [{ mac: parseMac(REMOTE_MAC), link: '1', dstPeer: PEER }],
      locals: [parseMac(POD_MAC)],
    });
    await echoRequests(pod, REMOTE_IP, 2);
    t.ok(await eventually(() => toMain.filter((d) => d === REMOTE_IP).length === 4), 'the reader carries on; its frames go to the main thread');
    t.match(notes.filter((n) => n.type === 'snapshot-error'), [{ type: 'snapshot-error', message: /not-an-address/ }]);
    t.equal(tap.senderCounters()?.stats.captured, pings, 'and it took nothing more');
  });
}
