// The data path end to end: nodes as network namespaces, a real daemon in each with its bridge,
// TAP and sleeve, pods attached to the bridges with addresses from IPAM, real traffic.
import t from 'tap';
import { OverlayCluster, podIp } from '../../src/cluster/overlay-cluster.js';
import { repliesBySource } from '../../src/cluster/ping.js';
import { waitFor } from '../lib/weaver.js';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { udpPayloads } from '../lib/pcap.js';

const UDP_SEND = fileURLToPath(new URL('../lib/udp-send.js', import.meta.url));

t.test('pods on three nodes reach each other across the overlay; broadcast once; hosts reach pods; kill -9 and back', async (t) => {
  // --no-fastdp: this is the sleeve's test (fastdp-network.test.ts has the fast path's).
  const oc = await OverlayCluster.start({ prefix: 'wtd', nodes: 3, net: 12, argsFor: () => ['--no-fastdp'] }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2, n3] = oc.nodes as [typeof oc.nodes[0], typeof oc.nodes[0], typeof oc.nodes[0]];
  await oc.established();
  const text = await oc.weave(n1, 'status', 'connections');
  t.match(text, /^(->|<-) 172\.31\.12\.\d+:\d+ +established sleeve +[0-9a-f:]{17}\(\S+\) mtu=1412$/m, 'status shows sleeve and mtu');

  const p1 = await oc.addPod(n1, 'a');
  const p1b = await oc.addPod(n1, 'b');
  const p2 = await oc.addPod(n2, 'a');
  const p3 = await oc.addPod(n3, 'a');
  for (const [from, to] of [[p1, p2], [p2, p3], [p3, p1], [p1, p1b]] as const) {
    const stats = await from.ping(podIp(to), { count: 5, intervalS: 0.2, waitS: 2 });
    t.ok(stats.received >= 4, `${from.ns} -> ${to.ns}: ${stats.received}/5 replies`);
  }
  for (const [node, pod] of [[n1, p1], [n2, p2], [n3, p3]] as const) {
    t.equal((await node.ping(podIp(pod), { count: 3 })).received, 3, `${node.name} reaches its pod through the bridge address`);
  }
  const transfer = await p1.tcpTransferTo(p3, podIp(p3), 8 * 1024 * 1024);
  t.ok(transfer.intact, `TCP across the overlay arrives intact (${transfer.mbitPerSecond.toFixed(0)} Mbit/s)`);

  // A broadcast ping: every other pod answers each request exactly once (no loops, no copies).
  for (const p of [p1b, p2, p3]) {
    await p.sysctl('net.ipv4.icmp_echo_ignore_broadcasts', '0');
    await p.ping(podIp(p1), { count: 1 }); // so the replies need no ARP first
  }
  // ping -b stops once it has a reply to its last request, often before the remote pods' replies
  // to that one arrive: so every pod must answer all but possibly the last, and none twice.
  const bcast = await p1.ping('10.47.255.255', { count: 5, intervalS: 0.3, waitS: 2, broadcast: true });
  t.comment(`broadcast replies: ${JSON.stringify(bcast.replies.map((r) => [r.from, r.seq]))}`);
  const pairs = bcast.replies.map((r) => `${r.from}#${r.seq}`);
  t.equal(new Set(pairs).size, pairs.length, 'no pod answered a broadcast twice');
  const bySource = repliesBySource(bcast);
  for (const p of [p1b, p2, p3]) t.ok((bySource.get(podIp(p)) ?? 0) >= 4, `${p.ns} answered the broadcasts (${bySource.get(podIp(p)) ?? 0}/5)`);

  // kill -9 the daemon of node 2; restarted, it rebuilds its TAP and traffic flows again.
  oc.daemons.get(n2)!.kill('SIGKILL');
  await waitFor('daemon gone', async () => ((await oc.call(n2, 'GET', '/status')).status === 0 ? true : undefined));
  t.equal((await p1.ping(podIp(p2), { count: 2, waitS: 1 })).received, 0, 'no traffic while the daemon is down');
  oc.startDaemon(n2);
  await oc.established(undefined, 40_000);
  await waitFor('traffic resumes', async () => ((await p1.ping(podIp(p2), { count: 2, intervalS: 0.2, waitS: 1 })).received > 0 ? true : undefined), 30_000);
  t.pass('traffic resumed after the restart');
});

t.test('a line with --conn-limit 1 at the ends: pods at the ends talk through the middle node', async (t) => {
  const oc = await OverlayCluster.start({
    prefix: 'wtl', nodes: 3, net: 13,
    // node 2 is the middle: 1 and 3 are told only about it, and may hold one connection each.
    argsFor: (i) => (i === 2 ? [] : ['--conn-limit', '1']),
    peersFor: (i, c) => (i === 2 ? [] : [c.nodes[1]!.underlayIp]),
  }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2, n3] = oc.nodes as [typeof oc.nodes[0], typeof oc.nodes[0], typeof oc.nodes[0]];
  await oc.established((n) => (n === n2 ? 2 : 1));
  const p1 = await oc.addPod(n1, 'a');
  const p3 = await oc.addPod(n3, 'a');
  const stats = await p1.ping(podIp(p3), { count: 5, intervalS: 0.2, waitS: 2 });
  t.ok(stats.received >= 4, `end to end through the middle: ${stats.received}/5`);
  t.notMatch(await oc.weave(n1, 'status', 'connections'), /n3/, 'no direct connection between the ends');
});

t.test('an encrypted mesh carries traffic and refuses replayed and altered datagrams', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wte', nodes: 2, net: 14, password: 'correct horse battery staple' }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2] = oc.nodes as [typeof oc.nodes[0], typeof oc.nodes[0]];
  await oc.established();
  t.match(await oc.weave(n1, 'status', 'connections'), /established encrypted +sleeve .* mtu=1396$/m, 'encrypted sleeve, smaller mtu');
  const p1 = await oc.addPod(n1, 'a');
  const p2 = await oc.addPod(n2, 'a');
  t.ok((await p1.ping(podIp(p2), { count: 5, intervalS: 0.2, waitS: 2 })).received >= 4, 'ping through the encrypted sleeve');
  const transfer = await p1.tcpTransferTo(p2, podIp(p2), 8 * 1024 * 1024);
  t.ok(transfer.intact, `TCP through the encrypted sleeve arrives intact (${transfer.mbitPerSecond.toFixed(0)} Mbit/s)`);

  // Capture sleeve datagrams n1 -> n2 on the underlay while the pods talk, then send them again
  // (and a copy with one bit flipped) from n1's namespace: n2 must drop and count them.
  const dir = mkdtempSync(join(tmpdir(), 'weft-capture-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pcap = join(dir, 'sleeve.pcap');
  const capture = oc.cluster.underlay.spawn(['tcpdump', '-i', oc.cluster.underlay.ns.replace(/-u$/, '-n1'), '-U', '-c', '5', '-w', pcap,
    'udp', 'and', 'dst', 'port', '6783', 'and', 'dst', 'host', n2.underlayIp]);
  await new Promise((r) => setTimeout(r, 1000));
  await p1.ping(podIp(p2), { count: 5, intervalS: 0.1 });
  await capture.exited;
  const captured = udpPayloads(readFileSync(pcap));
  t.ok(captured.length > 0, `captured ${captured.length} sleeve datagrams`);
  const replayed = captured.map((c) => c.payload.toString('hex'));
  // A forgery must not pass as new: a one-chunk message moved to a sequence number never used
  // (header bytes 24..31), so it passes the replay check and must fail authentication.
  const single = captured.find((c) => c.payload[32] === 1) ?? captured[0]!;
  const altered = Buffer.from(single.payload);
  altered.writeBigUInt64BE(altered.readBigUInt64BE(24) + 1_000_000n, 24);
  await n1.run([process.execPath, UDP_SEND, n2.underlayIp, '6783', ...replayed, altered.toString('hex')]);
  let lastSeen = '';
  const drops = await waitFor('drops counted', async () => {
    const r = await oc.call(n2, 'GET', '/metrics');
    const family = parsePrometheusTextFormat(r.body).find((f) => f.name === 'weave_sleeve_dropped_total');
    const byReason = new Map((family?.metrics ?? []).map((m) => [m.labels?.reason ?? '', Number(m.value)]));
    lastSeen = JSON.stringify([...byReason]);
    return (byReason.get('replay') ?? 0) >= captured.length && (byReason.get('authentication') ?? 0) >= 1 ? byReason : undefined;
  }, 10_000).catch((err: Error) => {
    throw new Error(`${err.message}; drops seen: ${lastSeen}`);
  });
  t.ok((drops.get('replay') ?? 0) >= captured.length, `replays dropped and counted: ${drops.get('replay')}`);
  t.ok((drops.get('authentication') ?? 0) >= 1, `the altered datagram failed authentication: ${drops.get('authentication')}`);
  t.ok((await p1.ping(podIp(p2), { count: 3, intervalS: 0.2 })).received >= 2, 'traffic still flows');
});

t.test('pod traffic leaving the range is masqueraded as the node', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wtm', nodes: 2, net: 15 }, (c) => t.teardown(() => c.destroy()));
  const [n1] = oc.nodes as [typeof oc.nodes[0]];
  await oc.established();
  const p1 = await oc.addPod(n1, 'a');
  // An address outside the range, on the underlay bridge: it has no route back to pods, so only
  // replies to the node's own address (the masquerade) can return.
  await oc.cluster.underlay.iproute(['addr', 'add', '172.31.15.254/24', 'dev', `${oc.cluster.prefix}-br`]);
  t.equal((await p1.ping('172.31.15.254', { count: 3, intervalS: 0.2 })).received, 3, 'pod reaches an address outside the range');
  const nat = await n1.run(['iptables', '-t', 'nat', '-S', 'WEAVE']);
  t.match(nat, /-A WEAVE -s 10\.32\.0\.0\/12 ! -d 10\.32\.0\.0\/12 -j MASQUERADE/);
  // Behind its back: flush the nat chain; the daemon's periodic check is 10 s; the rule comes back.
  await n1.run(['iptables', '-t', 'nat', '-F', 'WEAVE']);
  t.equal((await p1.ping('172.31.15.254', { count: 2, intervalS: 0.2, waitS: 1 })).received, 0, 'without the rule no reply comes back');
  await waitFor('rules repaired', async () => (/MASQUERADE/.test(await n1.run(['iptables', '-t', 'nat', '-S', 'WEAVE'])) ? true : undefined), 20_000);
  t.equal((await p1.ping('172.31.15.254', { count: 3, intervalS: 0.2 })).received, 3, 'masquerade back after the repair');
});

t.test('a node whose TAP has no offloads still exchanges TCP with one that has them', async (t) => {
  const oc = await OverlayCluster.start({ prefix: 'wto', nodes: 2, net: 16, argsFor: (i) => ['--no-fastdp', ...(i === 2 ? ['--no-offloads'] : [])] }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2] = oc.nodes as [typeof oc.nodes[0], typeof oc.nodes[0]];
  await oc.established();
  const p1 = await oc.addPod(n1, 'a');
  const p2 = await oc.addPod(n2, 'a');
  for (const [from, to] of [[p1, p2], [p2, p1]] as const) {
    const r = await from.tcpTransferTo(to, podIp(to), 8 * 1024 * 1024);
    t.ok(r.intact, `${from.ns} -> ${to.ns}: TCP intact (${r.mbitPerSecond.toFixed(0)} Mbit/s)`);
  }

  // Garbage on UDP 6783: short, wrong magic, a valid-looking header of an unknown connection.
  const header = Buffer.alloc(40);
  header.set([0xf7, 1, 1, 0], 0);
  header[32] = 1;
  header.writeUInt16BE(4, 34);
  const junk = ['00', 'ff'.repeat(100), Buffer.from('hello weft, this is not a sleeve datagram').toString('hex'), header.toString('hex')];
  await n2.run([process.execPath, UDP_SEND, n1.underlayIp, '6783', ...junk]);
  const drops = await waitFor('garbage counted', async () => {
    const family = parsePrometheusTextFormat((await oc.call(n1, 'GET', '/metrics')).body).find((f) => f.name === 'weave_sleeve_dropped_total');
    const total = (family?.metrics ?? []).filter((m) => /^malformed|unknown-connection/.test(m.labels?.reason ?? '')).reduce((a, m) => a + Number(m.value), 0);
    return total >= junk.length ? total : undefined;
  });
  t.ok(drops >= junk.length, `malformed datagrams dropped and counted (${drops})`);
  t.equal((await oc.call(n1, 'GET', '/status')).status, 200, 'the daemon carries on');
  t.ok((await p1.ping(podIp(p2), { count: 3, intervalS: 0.2 })).received >= 2, 'and traffic still flows');
});
