// The metrics endpoint of a live mesh, read with a Prometheus text-format parser.
import t from 'tap';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Weaver, waitFor, httpCall, nameForIp } from '../lib/weaver.js';

const ip = (n: number): string => `127.0.14.${n}`;
const FAST = ['--heartbeat-interval', '1', '--gossip-interval', '1'];

async function scrape(w: Weaver): Promise<Map<string, { value: number; labels: Record<string, string> }[]>> {
  const r = await httpCall(`${w.ip}:6782`, 'GET', '/metrics');
  const families = parsePrometheusTextFormat(r.body);
  return new Map(families.map((f) => [f.name, f.metrics.map((m) => ({ value: Number(m.value), labels: { ...m.labels } }))]));
}

t.test('metrics: connections, terminations, addresses, unreachable space, process metrics', async (t) => {
  const names = [ip(1), ip(2)].map(nameForIp);
  const init = ['--ipalloc-init', `seed=${names.join(',')}`, '--ipalloc-range', '10.32.0.0/16'];
  const a = await Weaver.start(t, { ip: ip(1), nickname: 'a', args: [...FAST, ...init] });
  const b = await Weaver.start(t, { ip: ip(2), nickname: 'b', args: [...FAST, ...init], peers: [a.address] });
  await waitFor('connected', async () => ((await a.report()).Router.Peers.length === 2 ? true : undefined));
  for (const id of ['x', 'y', 'z']) t.equal((await a.call('POST', `/ip/${id}`)).status, 200);

  // IPAM hears of reachability changes a moment after the topology.
  let m = await waitFor('b reachable for IPAM', async () => {
    const s = await scrape(a);
    return s.get('weave_ipam_unreachable_count')?.[0]?.value === 0 ? s : undefined;
  });
  t.same(m.get('weave_connections'), [{ value: 1, labels: { state: 'established', type: 'unknown', encryption: '' } }]);
  t.same(m.get('weave_ips'), [{ value: 3, labels: { state: 'local-used' } }]);
  t.same(m.get('weave_max_ips'), [{ value: 65536, labels: {} }]);
  t.equal(m.get('weave_connection_terminations_total')?.[0]?.value, 0);
  t.ok((m.get('process_resident_memory_bytes')?.[0]?.value ?? 0) > 0, 'process metrics');

  await b.kill();
  m = await waitFor('b gone', async () => {
    const s = await scrape(a);
    return s.get('weave_ipam_unreachable_count')?.[0]?.value === 1 ? s : undefined;
  });
  t.equal(m.get('weave_ipam_unreachable_percentage')?.[0]?.value, 50, 'b owned half');
  t.equal(m.get('weave_connection_terminations_total')?.[0]?.value, 1);

  const write = await httpCall(`${a.ip}:6782`, 'POST', '/connect');
  t.equal(write.status, 405, 'the metrics address serves nothing that changes state');
  t.equal((await httpCall(`${a.ip}:6782`, 'GET', '/status')).status, 200, 'but serves status');
});
