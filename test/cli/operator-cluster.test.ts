// The operator's view of a live 3-node cluster (nodes as network namespaces, real daemons with
// bridge, TAP and sleeve, pods from IPAM): the text of `weave status`, `status connections`,
// `status peers`, `status ipam` and `weave ps` against Weave's layout (reference §4.2-4.5), line
// by line; the metrics endpoint through a Prometheus text-format parser; the JSON log lines an
// operator reads; `weave expose`; and `weave reset` taking a node out cleanly.
import t from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { OverlayCluster, nodePeerName, podIp } from '../../src/cluster/overlay-cluster.js';
import type { ClusterNode } from '../../src/cluster/index.js';
import { waitFor } from '../lib/weaver.js';

const WEAVE_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const UDP_SEND = fileURLToPath(new URL('../lib/udp-send.js', import.meta.url));
const NET = 80;
const MAC = '[0-9a-f]{2}(?::[0-9a-f]{2}){5}';
const POD_CIDR = '10\\.(?:3[2-9]|4[0-7])\\.\\d{1,3}\\.\\d{1,3}/12';

/** `Label: value` lines of `weave status`: the label right-aligned to 15 columns. */
function labelled(line: string): { label: string; value: string } | undefined {
  const m = /^( *)([A-Za-z]+): (.*)$/.exec(line);
  if (!m || m[1]!.length + m[2]!.length !== 15) return undefined;
  return { label: m[2]!, value: m[3]! };
}

function jsonLogs(text: string): Record<string, unknown>[] {
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function linkMac(node: { exec: ClusterNode['exec'] }, dev: string): Promise<string> {
  const r = await node.exec(['ip', '-j', 'link', 'show', 'dev', dev]);
  return (JSON.parse(r.stdout) as { address: string }[])[0]!.address;
}

t.test('weave status, connections, peers, ipam, ps, metrics and logs on a 3-node cluster; expose; reset', async (t) => {
  // Sleeve only: its connection lines (mtu verified by heartbeats) and per-path counters are what
  // this test reads; the fast path's lines are checked in test/dataplane/fastdp-network.test.ts.
  const oc = await OverlayCluster.start({ prefix: 'wq1', nodes: 3, net: NET, argsFor: () => ['--no-fastdp'] }, (c) => t.teardown(() => c.destroy()));
  const [n1, n2, n3] = oc.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const name = (n: ClusterNode): string => nodePeerName(NET, n.index);
  await oc.established();
  const p1 = await oc.addPod(n1, 'a');
  const p2 = await oc.addPod(n2, 'a');
  // Host to pod and pod to pod: the bridge's neighbour table learns the pods' MACs, the sleeve carries frames.
  t.equal((await n1.ping(podIp(p1), { count: 2, intervalS: 0.2 })).received, 2);
  t.ok((await p1.ping(podIp(p2), { count: 3, intervalS: 0.2, waitS: 2 })).received >= 2, 'pods reach each other');
  // Peers count every connection from both ends: wait until all three records list both links.
  await waitFor('topology complete', async () =>
    /Peers: 3 \(with 6 established connections\)/.test(await oc.weave(n1, 'status')) ? true : undefined);

  // ---- weave status (reference §4.2) ----
  const status = (await oc.weave(n1, 'status')).split('\n');
  t.equal(status[0], '', 'a blank line first, as the weave script printed');
  const body = status.slice(1, -2);
  t.same(status.slice(-2), ['', ''], 'and one after');
  const labels = body.map((l) => (l === '' ? '' : labelled(l)?.label ?? `BAD LINE: ${l}`));
  t.same(labels, ['Version', '', 'Service', 'Protocol', 'Name', 'Encryption', 'PeerDiscovery', 'Targets', 'Connections', 'Peers', 'TrustedSubnets',
    '', 'Service', 'Status', 'Range', 'DefaultSubnet'], 'labels in Weave order, right-aligned to 15 columns');
  const values = new Map(body.map(labelled).filter((x) => x !== undefined).map((x) => [x.label, x.value] as const));
  t.match(values.get('Version'), /^\d+\.\d+\.\d+ \(version check update disabled\)$/);
  t.match(values.get('Protocol'), /^weft \d+(\.\.\d+)?$/);
  t.equal(values.get('Name'), `${name(n1)}(${n1.name})`);
  t.equal(values.get('Encryption'), 'disabled');
  t.equal(values.get('PeerDiscovery'), 'enabled');
  t.equal(values.get('Targets'), '0', 'node 1 was given no peers');
  t.equal(values.get('Connections'), '2 (2 established)');
  t.equal(values.get('Peers'), '3 (with 6 established connections)');
  t.equal(values.get('TrustedSubnets'), 'none');
  t.equal(values.get('Status'), 'ready');
  t.equal(values.get('Range'), '10.32.0.0/12');
  t.equal(values.get('DefaultSubnet'), '10.32.0.0/12');
  t.match(await oc.weave(n2, 'status'), /\n {8}Targets: 1\n/, 'node 2 has node 1 as its target');

  // ---- weave status connections (§4.3): -> addr(21) state(11) overlay(6) name(nick) attrs ----
  const conns = (await oc.weave(n1, 'status', 'connections')).split('\n').filter((l) => l !== '');
  t.equal(conns.length, 2);
  const connRe = new RegExp(`^(->|<-) (.{21}) (.{11}) (.{6}) (${MAC})\\((\\S+)\\) mtu=(\\d+)$`);
  const seen = new Set<string>();
  for (const line of conns) {
    const m = connRe.exec(line);
    t.ok(m, `connection line in Weave's columns: ${JSON.stringify(line)}`);
    if (!m) continue;
    t.match(m[2]!.trimEnd(), /^172\.31\.80\.\d+:\d+$/, 'address column, padded to 21');
    t.equal(m[3]!.trimEnd(), 'established', 'state column, padded to 11');
    t.equal(m[4]!.trimEnd(), 'sleeve', 'overlay, padded to 6');
    t.equal(m[7], '1412', 'mtu verified by heartbeats');
    seen.add(`${m[5]}(${m[6]})`);
  }
  t.same([...seen].sort(), [`${name(n2)}(${n2.name})`, `${name(n3)}(${n3.name})`]);

  // ---- weave status peers: every peer, then its connections as gossiped ----
  const peers = (await oc.weave(n1, 'status', 'peers')).split('\n').filter((l) => l !== '');
  const peerLine = new RegExp(`^(${MAC})\\((\\S+)\\)$`);
  const peerConn = new RegExp(`^   (->|<-) (.{21}) (.{37}) (established|pending)$`);
  const listed: string[] = [];
  let under = 0;
  for (const line of peers) {
    const p = peerLine.exec(line);
    if (p) {
      listed.push(p[1]!);
      continue;
    }
    const c = peerConn.exec(line);
    t.ok(c, `peer connection line in Weave's columns: ${JSON.stringify(line)}`);
    if (c) {
      t.match(c[2]!.trimEnd(), /^172\.31\.80\.\d+:\d+$/);
      t.match(c[3]!.trimEnd(), new RegExp(`^${MAC}\\(n\\d\\)$`), 'peer column padded to 37');
      t.equal(c[4], 'established');
      under++;
    }
  }
  t.same(listed, [name(n1), name(n2), name(n3)], 'every peer, ourselves included, in name order');
  t.equal(under, 6, 'two connections under each peer');

  // ---- weave status ipam (§3.8): %-37v %8d IPs (%04.1f%% of total) info ----
  const ipam = (await oc.weave(n1, 'status', 'ipam')).split('\n').filter((l) => l !== '');
  const ipamRe = /^(.{37}) ([ \d]{8}) IPs \((\d\d\.\d)% of total\) (.*)$/;
  t.equal(ipam.length, 3);
  ipam.forEach((line, i) => {
    const m = ipamRe.exec(line);
    t.ok(m, `ipam line in Weave's columns: ${JSON.stringify(line)}`);
    if (!m) return;
    t.match(m[1]!.trimEnd(), new RegExp(`^${MAC}\\(n\\d\\)$`));
    t.ok(Number(m[2]) >= 349_525 && Number(m[2]) <= 349_526, 'an even third each');
    t.equal(m[3], '33.3');
    if (i === 0) {
      t.equal(m[1]!.trimEnd(), `${name(n1)}(${n1.name})`, 'ourselves first');
      t.equal(m[4], '(2 active)', 'the bridge and one pod');
    } else {
      t.equal(m[4], '', 'others reachable: nothing after the share but Weave\'s trailing blank');
    }
  });

  // ---- weave ps (§4.5): weave:expose first, then <id(12)> <mac> <cidr> ----
  t.equal((await oc.call(n1, 'POST', '/ip/leaked-by-a-script')).status, 200);
  const ps = (await oc.weave(n1, 'ps')).split('\n').filter((l) => l !== '');
  const expose = (await oc.call(n1, 'GET', '/ip/weave:expose')).body;
  t.equal(ps[0], `weave:expose ${await linkMac(n1, 'weave')} ${expose}`, 'the bridge first, with its MAC and address');
  const psRe = new RegExp(`^(\\S{1,12}) (${MAC}|-) (${POD_CIDR})$`);
  for (const line of ps.slice(1)) t.match(line, psRe, `ps line: ${JSON.stringify(line)}`);
  t.same(ps.slice(1), [
    `leaked-by-a- - ${(await oc.call(n1, 'GET', '/ip/leaked-by-a-script')).body}`,
    `${n1.name}-a ${await linkMac(p1, 'eth0')} ${p1.ip}/12`,
  ], 'the pod with its MAC; an address with no pod behind it shows "-"; ids cut to 12');
  t.same((await oc.weave(n1, 'ps', `${n1.name}-a`)).split('\n').filter((l) => l !== ''), [ps[2]], 'weave ps <id>');

  // ---- weave expose: the bridge address, idempotent ----
  t.equal(await oc.weave(n1, 'expose'), `${expose}\n`);
  t.equal(await oc.weave(n1, 'expose'), `${expose}\n`, 'twice, the same address');

  // ---- metrics, parsed as Prometheus does ----
  const metrics = new Map(parsePrometheusTextFormat((await oc.call(n1, 'GET', '/metrics')).body)
    .map((f) => [f.name, f.metrics.map((m) => ({ value: Number(m.value), labels: { ...m.labels } }))]));
  const one = (metric: string, labels: Record<string, string> = {}): number | undefined =>
    metrics.get(metric)?.find((m) => Object.entries(labels).every(([k, v]) => m.labels[k] === v))?.value;
  t.equal(one('weave_connections', { state: 'established', type: 'sleeve', encryption: '' }), 2);
  t.equal(one('weave_ips', { state: 'local-used' }), 3, 'bridge, pod and the leaked address');
  t.equal(one('weave_max_ips'), 1_048_576);
  t.equal(one('weave_ipam_pending_allocates'), 0);
  t.equal(one('weave_ipam_unreachable_count'), 0);
  t.equal(one('weave_ipam_unreachable_percentage'), 0);
  for (const what of ['captured', 'injected', 'sent', 'received']) {
    t.ok((one('weave_sleeve_packets_total', { what }) ?? 0) > 0, `packets ${what}`);
    t.ok((one('weave_sleeve_bytes_total', { what }) ?? 0) > (one('weave_sleeve_packets_total', { what }) ?? 0) * 28, `bytes ${what}`);
  }
  t.ok(metrics.has('weave_sleeve_dropped_total'), 'drops by reason');
  t.ok((one('process_cpu_seconds_total') ?? 0) > 0 && (one('nodejs_heap_size_used_bytes') ?? 0) > 0, 'process metrics');

  // ---- logs: state changes once, with the peer/connection and the reason ----
  const logs1 = jsonLogs(oc.daemons.get(n1)!.stdout);
  const established = logs1.filter((r) => r['msg'] === 'connection fully established');
  t.equal(established.length, 2, 'one line per connection that became established');
  for (const r of established) {
    t.match(r['peer'], new RegExp(`^${MAC}\\(n[23]\\)$`));
    t.match(r['conn'], /^(->|<-)\[172\.31\.80\.\d+:\d+\]$/);
    t.equal(r['component'], 'mesh');
    t.type(r['reason'], 'string');
  }
  const ipamStatus = logs1.filter((r) => typeof r['msg'] === 'string' && (r['msg'] as string).startsWith('IPAM status: '));
  t.same(ipamStatus.map((r) => r['status']).slice(-1), ['ready'], 'IPAM status changes logged, the last one ready');
  t.ok(ipamStatus.every((r, i) => i === 0 || r['status'] !== ipamStatus[i - 1]!['status']), 'each status logged once');
  t.ok(ipamStatus.every((r) => r['component'] === 'ipam' && typeof r['reason'] === 'string'), 'with the reason');
  t.notOk(logs1.some((r) => r['level'] === 'debug'), 'nothing at debug at the default level');

  // A dropped-input counter crossing its threshold: one log line for the reason, however many follow.
  await n2.run([process.execPath, UDP_SEND, n1.underlayIp, '6783', ...Array.from({ length: 250 }, () => '00ff')]);
  const dropLine = (r: Record<string, unknown>): boolean => /^sleeve dropped 100 frames or datagrams for reason malformed-/.test(String(r['msg']));
  await waitFor('drop threshold logged', async () => (jsonLogs(oc.daemons.get(n1)!.stdout).some(dropLine) ? true : undefined));
  await waitFor('all 250 counted', async () => {
    const family = parsePrometheusTextFormat((await oc.call(n1, 'GET', '/metrics')).body).find((f) => f.name === 'weave_sleeve_dropped_total');
    return (family?.metrics ?? []).some((m) => /^malformed-/.test(m.labels?.['reason'] ?? '') && Number(m.value) >= 250) ? true : undefined;
  });
  const drops = jsonLogs(oc.daemons.get(n1)!.stdout).filter(dropLine);
  t.equal(drops.length, 1, 'the drop threshold is logged once');
  t.equal(drops[0]!['level'], 'warn');
  t.match(drops[0]!['reason'], /^malformed-/);

  // ---- weave reset on node 3: its share to a live peer; bridge, TAP, rules, state gone; daemon stops ----
  const reset = await n3.exec([process.execPath, WEAVE_CLI, 'reset'], { timeoutMs: 60_000 });
  t.equal(reset.code, 0, reset.stderr);
  const lines = reset.stdout.split('\n');
  t.match(lines[0], new RegExp(`^3495\\d\\d IPs handed over to ${MAC.replace('(?:', '(?:')}\\(n[12]\\)$`));
  t.match(lines[1], /^removed: TAP vethwe-tap, bridge weave, iptables chains, \/\S+data\.json(, \/\S+data\.json\.journal)?$/);
  t.equal(lines[2], 'weaver is stopping');
  const exit = await oc.daemons.get(n3)!.exited;
  t.equal(exit.code, 0, 'the daemon exits cleanly');
  t.not((await n3.exec(['ip', 'link', 'show', 'weave'])).code, 0, 'bridge gone');
  t.not((await n3.exec(['ip', 'link', 'show', 'vethwe-tap'])).code, 0, 'TAP gone');
  t.notMatch((await n3.exec(['iptables-save'])).stdout, /WEAVE/, 'no chain of ours left');
  t.notOk(existsSync(/(\/\S+data\.json)/.exec(lines[1]!)![1]!), 'state file gone');
  const logs3 = jsonLogs(oc.daemons.get(n3)!.stdout);
  t.ok(logs3.some((r) => r['component'] === 'ipam' && /^IPAM shut down: \d+ IPs handed to /.test(String(r['msg'])) && r['reason'] === 'weave reset'), 'reset logged with its reason');

  // Node 1 sees node 3's share change hands and its connection go, with the reason.
  const after = await waitFor('node 3 ranges handed over', async () => {
    const text = await oc.weave(n1, 'status', 'ipam');
    return text.includes(`(${n3.name})`) ? undefined : text;
  });
  t.equal(after.split('\n').filter((l) => l !== '').length, 2, 'two owners left');
  t.match(after, /66\.7% of total/, 'the heir holds two thirds');
  await waitFor('node 1 logs the lost connection', async () =>
    jsonLogs(oc.daemons.get(n1)!.stdout).some((r) => String(r['msg']).startsWith('connection shutting down') && r['peer'] === `${name(n3)}(${n3.name})` && typeof r['reason'] === 'string') ? true : undefined);
  t.pass('node 1 logged the lost connection with peer and reason');
});
