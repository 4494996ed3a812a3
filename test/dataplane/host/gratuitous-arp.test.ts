// The pod's gratuitous ARP: the frame's bytes (pure), and on a real kernel, sent from a node's
// bridge device it reaches the pods on the bridge and teaches the bridge nothing.
import t from 'tap';
import { LocalCluster } from '../../../src/cluster/index.js';
import { sweep } from '../../../src/cluster/netns.js';
import { gratuitousArp, sendFrameOnLink, GRATUITOUS_ARP_LENGTH } from '../../../src/dataplane/host/gratuitous-arp.js';
import { withNetworkNamespace } from '../../../src/dataplane/tap/netns-enter.js';

const PREFIX = 'wn4g';

t.before(() => sweep(PREFIX));

t.test('the frame: who-has the address, tell the address, from the MAC to everyone', async (t) => {
  const f = gratuitousArp('02:aa:bb:cc:dd:0e', '10.32.0.7/12');
  t.equal(f.length, GRATUITOUS_ARP_LENGTH);
  t.equal(f.subarray(0, 6).toString('hex'), 'ffffffffffff', 'to broadcast');
  t.equal(f.subarray(6, 12).toString('hex'), '02aabbccdd0e', 'from the pod');
  t.equal(f.readUInt16BE(12), 0x0806, 'ARP');
  t.equal(f.subarray(14, 22).toString('hex'), '0001080006040001', 'Ethernet/IPv4, a request');
  t.equal(f.subarray(22, 28).toString('hex'), '02aabbccdd0e', 'sender MAC');
  t.equal(f.subarray(28, 32).toString('hex'), '0a200007', 'sender IP 10.32.0.7');
  t.equal(f.subarray(32, 38).toString('hex'), '000000000000', 'target MAC unknown');
  t.equal(f.subarray(38, 42).toString('hex'), '0a200007', 'target IP: its own');
  t.same(gratuitousArp('02:aa:bb:cc:dd:0e', '10.32.0.7'), f, 'the prefix is optional');
  t.throws(() => gratuitousArp('02:aa', '10.32.0.7'), /invalid MAC/);
  t.throws(() => gratuitousArp('02:aa:bb:cc:dd:0e', '10.32.0'), /invalid IPv4/);
});

t.test('sent on a node\'s bridge, it reaches a pod on the bridge; the bridge learns nothing from it', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1, underlaySubnet: '172.31.52.0/24' });
  t.teardown(() => cluster.destroy());
  const node = cluster.nodes[0]!;
  await node.ipBatch(['link add weave type bridge', 'link set weave up']);
  const pod = await cluster.addPodNamespace(node, 'p');
  await node.ipBatch(['link add wn4gv type veth peer name eth0 netns ' + pod.path, 'link set wn4gv master weave', 'link set wn4gv up']);
  await pod.ipBatch(['link set eth0 up']);
  const capture = pod.spawn(['tcpdump', '-l', '-n', '-e', '-i', 'eth0', '-c', '1', 'arp']);
  await capture.waitForOutput(/listening on eth0/, 10_000, 'stderr');
  const mac = '02:aa:bb:cc:dd:0f';
  // The bridge port may need a moment to forward after link-up: send until the pod sees one.
  let seen: RegExpMatchArray | undefined;
  for (let i = 0; i < 50 && seen === undefined; i++) {
    withNetworkNamespace(node.path, () => sendFrameOnLink('weave', gratuitousArp(mac, '10.32.0.9/12')));
    seen = await capture.waitForOutput(/^(\S+ )?([0-9a-f:]{17}) > ff:ff:ff:ff:ff:ff, ethertype ARP .*Request who-has 10\.32\.0\.9 tell 10\.32\.0\.9/m, 100).catch(() => undefined);
  }
  t.equal(seen?.[2], mac, 'the pod saw the gratuitous ARP from the given MAC');
  t.notMatch(await node.run(['bridge', 'fdb', 'show', 'br', 'weave']), mac, 'no forwarding entry for the MAC');
  t.throws(() => withNetworkNamespace(node.path, () => sendFrameOnLink('nosuch0', gratuitousArp(mac, '10.32.0.9'))), /cannot send a frame on nosuch0: no such interface/);
});
