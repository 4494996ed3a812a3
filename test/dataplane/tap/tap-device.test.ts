// TapDevice on the real kernel, in namespaces of a local cluster: a pod pings an address that only
// this test's userspace responder answers (reads and writes, with and without virtio_net_hdr),
// frames arrive complete and in order, the reader's overruns are counted, close() is prompt even
// while the reader is blocked, and the kernel's refusals are counted rather than thrown.
import t from 'tap';
import type { LocalCluster, ClusterNode } from '../../../src/cluster/cluster.js';
import type { TapDevice } from '../../../src/dataplane/tap/tap-device.js';
import { VIRTIO_NET_HDR_LEN, parseVirtioNetHdr, isGso, needsChecksum } from '../../../src/dataplane/tap/virtio-net-hdr.js';
import {
  BROADCAST_MAC,
  ETH_P_ARP,
  ETH_P_IP,
  IPPROTO_ICMP,
  arpReplyFrame,
  ethernet,
  icmpEchoReply,
  ipv4Packet,
  isArpRequestFor,
  parseArp,
  parseEthernet,
  parseIpv4Packet,
  sequenceFrame,
  sequenceOf,
} from '../lib/packets.js';
import { addQuietBridge, destroyChecked, eventually, openNodeTap, quietTapNode, sleep } from '../lib/tap-node.js';

const PREFIX = 'wtt2';
const BRIDGE = 'wtt2-br0';
const MTU = 1376;
const RESPONDER_IP = '10.32.0.99';
const RESPONDER_MAC = '02:00:0a:20:00:63';

let cluster: LocalCluster;
let node: ClusterNode;

t.before(async () => {
  ({ cluster, node } = await quietTapNode(PREFIX, BRIDGE, MTU));
});

t.teardown(() => destroyChecked(cluster, PREFIX));

interface Responder {
  readonly arpRequests: number;
  readonly echoRequests: number;
  /** Packets whose leading virtio_net_hdr did not parse, or asked for offload work on ICMP/ARP. */
  readonly badHeaders: number;
}

/** Answers ARP and ICMP echo for RESPONDER_IP from userspace, reading and writing the TAP. */
function respond(tap: TapDevice): Responder {
  const seen = { arpRequests: 0, echoRequests: 0, badHeaders: 0 };
  tap.onFrames((packet) => {
    if (tap.vnetHdr) {
      const hdr = parseVirtioNetHdr(packet);
      // Nothing here is TCP: the kernel must hand every frame over complete.
      if (isGso(hdr) || needsChecksum(hdr)) seen.badHeaders++;
    }
    const eth = parseEthernet(packet.subarray(tap.headerLength));
    if (eth === undefined) return;
    if (eth.type === ETH_P_ARP) {
      const arp = parseArp(eth.payload);
      if (isArpRequestFor(arp, RESPONDER_IP)) {
        seen.arpRequests++;
        tap.writeFrame(arpReplyFrame(arp, RESPONDER_MAC, RESPONDER_IP));
      }
    } else if (eth.type === ETH_P_IP) {
      const ip = parseIpv4Packet(eth.payload);
      if (ip === undefined || ip.dst !== RESPONDER_IP || ip.protocol !== IPPROTO_ICMP || !ip.headerChecksumOk) return;
      const reply = icmpEchoReply(ip.payload);
      if (reply === undefined) return;
      seen.echoRequests++;
      tap.writeFrame(ethernet(eth.src, RESPONDER_MAC, ETH_P_IP, ipv4Packet(RESPONDER_IP, ip.src, IPPROTO_ICMP, reply)));
    }
  });
  return seen;
}

t.test('a pod pings an address that only the userspace responder on the TAP answers', async (t) => {
  const pod = await cluster.addPod(node, { name: 'p1', ip: '10.32.0.5/12', bridge: BRIDGE, mtu: MTU });
  t.teardown(() => cluster.removePod(pod));
  for (const vnetHdr of [true, false]) {
    await t.test(`virtio_net_hdr ${vnetHdr ? 'on, offloads on' : 'off'}`, async (t) => {
      const tap = await openNodeTap(node, { name: 'wtt2-tap', bridge: BRIDGE, mtu: MTU, vnetHdr });
      t.teardown(() => tap.close());
      const seen = respond(tap);
      await pod.iproute(['neigh', 'flush', 'dev', 'eth0']);

      const ping = await pod.ping(RESPONDER_IP, { count: 3, intervalS: 0.05 });
      t.equal(ping.received, 3, 'every echo answered');
      t.ok(ping.replies.every((r) => r.from === RESPONDER_IP));
      t.equal(seen.arpRequests >= 1, true, 'the ARP request came out of the TAP');
      t.equal(seen.echoRequests, 3, 'so did each echo request');
      t.equal(seen.badHeaders, 0, 'every header parsed and asked for nothing on ARP/ICMP');
      t.match(await pod.iproute(['neigh', 'show', RESPONDER_IP]), new RegExp(`lladdr ${RESPONDER_MAC}`), 'the pod learnt our ARP reply');

      if (vnetHdr) {
        // An address the responder does not own gets no answer: the replies above were ours.
        const silent = await pod.ping('10.32.0.98', { count: 1, waitS: 0.3 });
        t.equal(silent.received, 0);
      }

      const stats = tap.stats;
      t.ok(stats.framesWritten >= 4, `wrote ${stats.framesWritten} frames (ARP reply + 3 echo replies)`);
      t.ok(stats.framesRead >= 4, `read ${stats.framesRead} frames (ARP request + 3 echo requests at least)`);
      t.same([stats.writeDrops, stats.writeErrors, stats.readDrops], [0, 0, 0]);
    });
  }
});

const SRC_MAC = '02:00:00:00:00:01';

t.test('frames written to one TAP come out of another in order, every one, whatever their size', async (t) => {
  const bridge = 'wtt2-br1';
  await addQuietBridge(node, bridge);
  t.teardown(() => node.ipBatch([`link delete ${bridge}`]));
  const writer = await openNodeTap(node, { name: 'wtt2-ta', bridge });
  t.teardown(() => writer.close());
  const reader = await openNodeTap(node, { name: 'wtt2-tb', bridge });
  t.teardown(() => reader.close());

  const count = 20_000;
  const seqs: number[] = [];
  const foreign: string[] = [];
  reader.onFrames((packet) => {
    const seq = sequenceOf(packet.subarray(VIRTIO_NET_HDR_LEN));
    if (seq === undefined) foreign.push(Buffer.from(packet.subarray(0, 64)).toString('hex'));
    else seqs.push(seq);
  });
  const started = performance.now();
  let sent = 0;
  while (sent < count) {
    // At most 256 in flight: the reader's TAP queue (1000 frames) never overflows.
    while (sent < count && sent - seqs.length < 256) {
      if (!writer.writeFrame(sequenceFrame(BROADCAST_MAC, SRC_MAC, sent, 60 + (sent % 1300)))) break;
      sent++;
    }
    await new Promise((r) => setImmediate(r));
  }
  t.ok(await eventually(() => seqs.length >= count), `all ${count} arrived (got ${seqs.length})`);
  const ms = performance.now() - started;
  t.ok(seqs.every((s, i) => s === i), 'in the order written, none lost or repeated');
  t.same(foreign, [], 'and nothing else');
  t.same([writer.stats.framesWritten, writer.stats.writeDrops, writer.stats.writeErrors], [count, 0, 0]);
  t.same([reader.stats.framesRead, reader.stats.readDrops], [count, 0]);
  t.comment(`${count} frames TAP -> bridge -> TAP in ${ms.toFixed(0)} ms: ${((count / ms) * 1000).toFixed(0)} frames/s`);
});

t.test('a reader whose handler is not draining drops after fullWaitMs, counts it, and keeps the order', async (t) => {
  const bridge = 'wtt2-br2';
  await addQuietBridge(node, bridge);
  t.teardown(() => node.ipBatch([`link delete ${bridge}`]));
  const writer = await openNodeTap(node, { name: 'wtt2-tc', bridge });
  t.teardown(() => writer.close());
  const reader = await openNodeTap(node, { name: 'wtt2-td', bridge, ringSlots: 4, fullWaitMs: 5 });
  t.teardown(() => reader.close());
  for (let seq = 0; seq < 30; seq++) t.ok(writer.writeFrame(sequenceFrame(BROADCAST_MAC, SRC_MAC, seq)), `frame ${seq} written`);
  // 4 fit in the ring; each of the other 26 is read and dropped after 5 ms with the ring still full.
  t.ok(await eventually(() => reader.stats.readDrops >= 26), `dropped ${reader.stats.readDrops}`);
  await sleep(50);
  t.equal(reader.stats.readDrops, 26, 'exactly the frames that did not fit');
  const seqs: number[] = [];
  reader.onFrames((packet) => seqs.push(sequenceOf(packet.subarray(VIRTIO_NET_HDR_LEN)) ?? -1));
  t.ok(await eventually(() => seqs.length >= 4));
  t.same(seqs, [0, 1, 2, 3], 'the first four, in order');
});

t.test('close() returns within 1 s while the reader sleeps, or waits on a full ring, and deletes the device', async (t) => {
  const idle = await openNodeTap(node, { name: 'wtt2-idle', bridge: BRIDGE });
  idle.onFrames(() => undefined);
  await sleep(300); // the reader is asleep in poll() on the TAP by now
  let started = performance.now();
  await idle.close();
  let ms = performance.now() - started;
  t.ok(ms < 1000, `closed an idle TAP in ${ms.toFixed(1)} ms`);
  t.equal(await node.link('wtt2-idle'), undefined, 'the device is gone');

  const bridge = 'wtt2-br3';
  await addQuietBridge(node, bridge);
  t.teardown(() => node.ipBatch([`link delete ${bridge}`]));
  const writer = await openNodeTap(node, { name: 'wtt2-te', bridge });
  t.teardown(() => writer.close());
  // No handler and a minute's patience: the reader fills the ring and then waits on it.
  const stuck = await openNodeTap(node, { name: 'wtt2-full', bridge, ringSlots: 2, fullWaitMs: 60_000 });
  for (let seq = 0; seq < 10; seq++) writer.writeFrame(sequenceFrame(BROADCAST_MAC, SRC_MAC, seq));
  await sleep(200);
  started = performance.now();
  await stuck.close();
  ms = performance.now() - started;
  t.ok(ms < 1000, `closed a TAP whose reader waited on a full ring in ${ms.toFixed(1)} ms`);
  t.equal(stuck.stats.readDrops, 0, 'it was waiting, not dropping');
  t.equal(await node.link('wtt2-full'), undefined);
  t.notOk(stuck.write(new Uint8Array(64)), 'a write after close is refused');
  t.equal(stuck.stats.lastWriteError, 'closed');
});

t.test('writes the kernel refuses are counted, never thrown', async (t) => {
  const tap = await openNodeTap(node, { name: 'wtt2-w', bridge: BRIDGE });
  t.teardown(() => tap.close());
  const frame = sequenceFrame(BROADCAST_MAC, SRC_MAC, 1);
  t.notOk(tap.write(new Uint8Array(5)), 'shorter than the virtio_net_hdr');
  t.equal(tap.stats.lastWriteError, 'EINVAL');
  t.notOk(tap.writeFrame(frame, { flags: 0, gsoType: 1, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }), 'GSO with no segment size');
  t.notOk(tap.writeFrame(frame, { flags: 1, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 100, csumOffset: 16 }), 'a checksum beyond the frame');
  await node.ipBatch(['link set wtt2-w down']);
  t.notOk(tap.writeFrame(frame), 'link down');
  t.equal(tap.stats.lastWriteError, 'EIO');
  await node.ipBatch(['link set wtt2-w up']);
  t.ok(tap.writeFrame(frame), 'up again: a good frame goes');
  t.same([tap.stats.writeErrors, tap.stats.writeDrops, tap.stats.framesWritten, tap.stats.bytesWritten], [4, 0, 1, VIRTIO_NET_HDR_LEN + frame.length]);
});

t.test('the device deleted under the reader: onError says so, close() still works', async (t) => {
  const tap = await openNodeTap(node, { name: 'wtt2-gone', bridge: BRIDGE });
  const errors: Error[] = [];
  tap.onError((err) => errors.push(err));
  tap.onFrames(() => undefined);
  await node.ipBatch(['link delete wtt2-gone']);
  t.ok(await eventually(() => errors.length > 0), 'the reader reported');
  t.match(errors[0]?.message, /^TAP wtt2-gone: read\(\) from the TAP failed: EBADFD/);
  t.notOk(tap.writeFrame(sequenceFrame(BROADCAST_MAC, SRC_MAC, 1)));
  const started = performance.now();
  await tap.close();
  t.ok(performance.now() - started < 1000);
});

t.test('a throwing handler goes to onError and delivery goes on', async (t) => {
  const bridge = 'wtt2-br4';
  await addQuietBridge(node, bridge);
  t.teardown(() => node.ipBatch([`link delete ${bridge}`]));
  const writer = await openNodeTap(node, { name: 'wtt2-tf', bridge });
  t.teardown(() => writer.close());
  const reader = await openNodeTap(node, { name: 'wtt2-tg', bridge });
  t.teardown(() => reader.close());
  const errors: string[] = [];
  const seqs: number[] = [];
  let flushes = 0;
  reader.onError((err) => errors.push(err.message));
  reader.onFrames(
    (packet) => {
      const seq = sequenceOf(packet.subarray(VIRTIO_NET_HDR_LEN)) ?? -1;
      seqs.push(seq);
      if (seq === 1) throw new Error('handler bug');
    },
    () => flushes++,
  );
  t.throws(() => reader.onFrames(() => undefined), /has a frame handler already/);
  for (let seq = 0; seq < 3; seq++) writer.writeFrame(sequenceFrame(BROADCAST_MAC, SRC_MAC, seq));
  t.ok(await eventually(() => seqs.length >= 3));
  t.same(seqs, [0, 1, 2]);
  t.same(errors, ['handler bug']);
  t.ok(flushes >= 1, 'flush is called after a batch');
});
