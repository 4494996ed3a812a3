// The TAP reader's send path when the socket's send buffer is full, on the real kernel: a sleeve
// socket in a node namespace sends through a veth whose qdisc (tbf at 8 kbit/s) holds what it is
// given, so its datagrams stay charged to the socket and sendto() soon says EAGAIN. Each such
// frame is handled (dropped and counted as send-buffer-full, as the kernel drops further on), is
// never reported as a send error, and the reader goes on; once the queue drains, sends succeed again.
import t from 'tap';
import { LocalCluster, type ClusterNode } from '../../../src/cluster/cluster.js';
import { sweep } from '../../../src/cluster/netns.js';
import { chunkStride } from '../../../src/dataplane/sleeve/header.js';
import { closeFd, getSockOptInt } from '../../../src/dataplane/tap/libc.js';
import { createOffloadUdpFd } from '../../../src/dataplane/tap/udp-offload.js';
import { withNetworkNamespace } from '../../../src/dataplane/tap/netns-enter.js';
import { destroyChecked } from '../lib/tap-node.js';
import { LOCAL, REMOTE, frame, oneLinkSender } from './one-link-sender.js';

const PREFIX = 'wtt7';
const FRAMES = 200;

let cluster: LocalCluster;
let node: ClusterNode;

t.before(async () => {
  await sweep(PREFIX);
  cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1 });
  node = cluster.node(1);
  await node.ipBatch([
    'link add wtt7a type veth peer name wtt7b',
    'addr add 192.168.77.1/24 dev wtt7a',
    'link set wtt7a up',
    'link set wtt7b up',
    // Resolved: a datagram waiting for ARP would sit in the neighbour's queue, not the qdisc.
    'neigh replace 192.168.77.2 lladdr 02:00:00:00:77:02 dev wtt7a nud permanent',
  ]);
  // 8 kbit/s and room for megabytes: what is sent stays queued, charged to the socket.
  await node.run(['tc', 'qdisc', 'add', 'dev', 'wtt7a', 'root', 'tbf', 'rate', '8kbit', 'burst', '1600', 'limit', '4000000']);
});

t.teardown(() => destroyChecked(cluster, PREFIX));

t.test('a full send buffer drops and counts the frame, reports no error, and sending resumes once it drains', async (t) => {
  const fd = withNetworkNamespace(node.path, () => createOffloadUdpFd({ address: '192.168.77.1', port: 0, sendBufferSize: 16 * 1024, segmentSize: chunkStride(1500) }));
  t.teardown(() => closeFd(fd));
  const { sender, control, notes, sequence, publish } = oneLinkSender(t, fd, '192.168.77.2', 6783);
  publish();

  let handled = 0;
  for (let i = 0; i < FRAMES; i++) if (sender.trySend(frame(REMOTE, LOCAL, 1000), 1000)) handled++;
  t.equal(handled, FRAMES, 'every frame handled: none thrown, none left to the main thread');
  const full = control.read();
  t.ok(full.stats.sent >= 1 && full.stats.sent < FRAMES / 2, `a few fit the buffer (${full.stats.sent} sent, buffer ${getSockOptInt(fd, 1, 7, 'SO_SNDBUF')} B)`);
  t.equal(full.drops.get('send-buffer-full'), FRAMES - full.stats.sent, 'the rest dropped as send-buffer-full');
  t.equal(full.stats.sendErrors, FRAMES - full.stats.sent);
  t.same(notes.filter((n) => n.type === 'send-error'), [], 'a full buffer is not reported as a send error');

  // Taking the qdisc away frees what it held; the socket's buffer with it.
  await node.run(['tc', 'qdisc', 'del', 'dev', 'wtt7a', 'root']);
  t.equal(sender.trySend(frame(REMOTE, LOCAL, 1000), 1000), true);
  const after = control.read();
  t.equal(after.stats.sent, full.stats.sent + 1, 'the next frame is sent');
  t.equal(after.drops.get('send-buffer-full'), full.drops.get('send-buffer-full'), 'and nothing more dropped');
  t.equal(sequence.next, FRAMES + 1, 'every frame took its number, dropped or not');
});
