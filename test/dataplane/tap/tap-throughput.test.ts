// The real data-path shape without the UDP hop: pod A -> bridge -> TAP A -> JS -> TAP B ->
// bridge -> pod B (and back), the TAPs in two node namespaces, this process forwarding every frame
// between them with its virtio_net_hdr unchanged. TCP must arrive intact with offloads on (64 KB
// super-frames with partial checksums, finished by the receiving TAP) and off (MTU-sized frames);
// iperf3 measures both (3 short runs each: min/median/max as diagnostics, not asserted).
import t from 'tap';
import { LocalCluster, type Pod } from '../../../src/cluster/cluster.js';
import { listNetns, sweep } from '../../../src/cluster/netns.js';
import type { TapDevice } from '../../../src/dataplane/tap/tap-device.js';
import { isGso, needsChecksum, parseVirtioNetHdr } from '../../../src/dataplane/tap/virtio-net-hdr.js';
import { ETH_HEADER_LEN } from '../lib/packets.js';
import { addQuietBridge, linkDrops, openNodeTap, spread } from '../lib/tap-node.js';
import { haveIperf3, iperfRun, startIperfServer } from '../lib/iperf.js';

const PREFIX = 'wtt3';
const BRIDGE = 'wtt3-br';
const TAP = 'wtt3-tap';
const MTU = 1376;
const RUNS = 3;
const RUN_SECONDS = 2;

let cluster: LocalCluster;
let podA: Pod;
let podB: Pod;

t.before(async () => {
  await sweep(PREFIX);
  cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 2 });
  for (const node of cluster.nodes) await addQuietBridge(node, BRIDGE, MTU);
  podA = await cluster.addPod(cluster.node(1), { name: 'a', ip: '10.32.0.1/12', bridge: BRIDGE, mtu: MTU });
  podB = await cluster.addPod(cluster.node(2), { name: 'b', ip: '10.32.0.2/12', bridge: BRIDGE, mtu: MTU });
});

t.teardown(async () => {
  await cluster.destroy();
  const left = (await listNetns()).filter((ns) => ns.startsWith(PREFIX));
  if (left.length > 0) throw new Error(`namespaces left: ${left.join(', ')}`);
});

/** Frames carried one way, the largest, and how many were GSO super-frames or had a partial checksum. */
interface Carried {
  frames: number;
  largest: number;
  gso: number;
  partialCsum: number;
  /** Headers whose checksum position lies outside their frame. */
  badHeaders: number;
}

/** Forwards every frame read from `from` to `to` unchanged, counting what it sees. */
function forward(from: TapDevice, to: TapDevice): Carried {
  const counts = { frames: 0, largest: 0, gso: 0, partialCsum: 0, badHeaders: 0 };
  from.onFrames((packet) => {
    counts.frames++;
    const frameLength = packet.length - from.headerLength;
    if (frameLength > counts.largest) counts.largest = frameLength;
    if (from.vnetHdr) {
      const hdr = parseVirtioNetHdr(packet);
      if (isGso(hdr)) counts.gso++;
      if (needsChecksum(hdr)) counts.partialCsum++;
      if (hdr.csumStart + hdr.csumOffset + 2 > frameLength) counts.badHeaders++;
    }
    to.write(packet);
  });
  return counts;
}

for (const offloads of [true, false]) {
  t.test(`pod to pod through two TAPs and JS, offloads ${offloads ? 'on (virtio_net_hdr, TSO, checksum)' : 'off'}`, async (t) => {
    const tapA = await openNodeTap(cluster.node(1), { name: TAP, bridge: BRIDGE, mtu: MTU, vnetHdr: offloads, offloads });
    t.teardown(() => tapA.close());
    const tapB = await openNodeTap(cluster.node(2), { name: TAP, bridge: BRIDGE, mtu: MTU, vnetHdr: offloads, offloads });
    t.teardown(() => tapB.close());
    const ab = forward(tapA, tapB);
    const ba = forward(tapB, tapA);

    const ping = await podA.ping('10.32.0.2', { count: 3, intervalS: 0.05 });
    t.equal(ping.received, 3, 'ping crosses (ARP too)');

    const transfer = await podA.tcpTransferTo(podB, '10.32.0.2', 32 << 20);
    t.ok(transfer.intact, `32 MB arrived intact (${transfer.mbitPerSecond.toFixed(0)} Mbit/s with SHA-256 at both ends)`);
    if (offloads) {
      t.ok(ab.gso > 0, `the kernel handed over super-frames (${ab.gso} of ${ab.frames}, largest ${ab.largest} B)`);
      t.ok(ab.largest > MTU + ETH_HEADER_LEN, 'larger than the MTU: segmented only by the receiving TAP');
      t.ok(ab.partialCsum > 0, 'with checksums left for the receiving side to finish');
      t.equal(ab.badHeaders + ba.badHeaders, 0, 'every checksum position inside its frame');
    } else {
      t.ok(ab.largest <= MTU + ETH_HEADER_LEN, `no frame above the MTU (largest ${ab.largest} B)`);
    }
    t.same([tapA.stats.writeErrors, tapB.stats.writeErrors], [0, 0], 'the kernel accepted every frame written');

    const skip = (await haveIperf3()) ? false : 'iperf3 is not installed (apt-get install iperf3): no throughput figures';
    await t.test(`iperf3: ${RUNS} runs of ${RUN_SECONDS} s`, { skip }, async (t) => {
      const server = await startIperfServer(podB, '10.32.0.2');
      t.teardown(() => server.stop(500));
      const gbits: number[] = [];
      const rates: string[] = [];
      for (let run = 0; run < RUNS; run++) {
        const before = [tapA.stats, tapB.stats] as const;
        const result = await iperfRun(podA, '10.32.0.2', RUN_SECONDS);
        const [a, b] = [tapA.stats, tapB.stats];
        const framesAB = (a.framesRead - before[0].framesRead) / result.seconds;
        const framesBA = (b.framesRead - before[1].framesRead) / result.seconds;
        const avg = (a.bytesRead - before[0].bytesRead) / Math.max(1, a.framesRead - before[0].framesRead) - tapA.headerLength;
        gbits.push(result.bitsPerSecond / 1e9);
        rates.push(`${framesAB.toFixed(0)}/${framesBA.toFixed(0)} frames/s A->B/B->A (avg ${avg.toFixed(0)} B A->B), ${result.retransmits} retransmits`);
      }
      const s = spread(gbits);
      t.comment(`offloads ${offloads ? 'on ' : 'off'}: ${gbits.map((g) => g.toFixed(2)).join(' / ')} Gbit/s; min ${s.min.toFixed(2)} median ${s.median.toFixed(2)} max ${s.max.toFixed(2)}`);
      for (const r of rates) t.comment(`  ${r}`);
      const drops = await Promise.all(cluster.nodes.map((node) => linkDrops(node, TAP)));
      // Where frames were lost, if anywhere (load on a shared 2-core machine decides, so these are
      // reported, not asserted): the kernel's TAP queue, the reader's ring, the writes.
      t.comment(
        `  drops: TAP queue ${drops.map((d) => d.tx).join(' / ')}, ring ${tapA.stats.readDrops} / ${tapB.stats.readDrops}, ` +
          `writes ${tapA.stats.writeDrops} / ${tapB.stats.writeDrops} (node 1 / node 2)`,
      );
      t.ok(s.min > 0, 'every run moved data');
      t.same([tapA.stats.writeErrors, tapB.stats.writeErrors], [0, 0], 'the kernel accepted every frame written');
    });
  });
}
