// The daemon's log as an operator reads it (`kubectl logs`): JSON lines with component, peer,
// conn and reason for every connection and IPAM state change and for a reclaim; per-decision
// detail only at --log-level debug; a human format for terminals.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Weaver, WEAVER, waitFor, nameForIp, type LogRecord } from '../lib/weaver.js';
import { NsProcess } from '../../src/cluster/ns-process.js';

const ip = (n: number): string => `127.0.82.${n}`;
const FAST = ['--heartbeat-interval', '1', '--gossip-interval', '1'];

t.test('connection, IPAM and reclaim lines carry the peer, the connection and the reason; debug adds decisions', async (t) => {
  const names = [ip(1), ip(2)].map(nameForIp);
  const init = ['--ipalloc-init', `seed=${names.join(',')}`, '--ipalloc-range', '10.42.0.0/16', ...FAST];
  const a = await Weaver.start(t, { ip: ip(1), nickname: 'alpha', args: [...init, '--log-level', 'debug'] });
  const b = await Weaver.start(t, { ip: ip(2), nickname: 'bravo', args: init, peers: [a.address] });
  const bLabel = `${names[1]}(bravo)`;
  const added = await a.waitForLog((r) => r.msg === 'connection added (new peer)');
  t.equal(added['peer'], bLabel);
  t.match(added['conn'], /^<-\[127\.0\.82\.2:\d+\]$/);
  t.equal(added['component'], 'mesh');
  const est = await a.waitForLog((r) => r.msg === 'connection fully established');
  t.equal(est['peer'], bLabel);
  t.type(est['reason'], 'string');

  const ready = await a.waitForLog((r) => r.msg.startsWith('IPAM status: ready'));
  t.equal(ready['component'], 'ipam');
  t.equal(ready['status'], 'ready');
  t.type(ready['reason'], 'string');

  // Debug: what each request got, and the mesh's decisions; never a line per packet.
  t.equal((await a.call('POST', '/ip/pod-1')).status, 200);
  const decision = await a.waitForLog((r) => r.level === 'debug' && r.msg.startsWith('IPAM allocate:pod-1: address 10.42.'));
  t.equal(decision['component'], 'ipam');
  await a.waitForLog((r) => r.level === 'debug' && r.msg === 'topology changed');
  t.notOk(b.logs.some((r: LogRecord) => r.level === 'debug'), 'the peer at info logs no debug lines');

  // Killed only once alpha has its gossip and routes to it: before that it shows as unreachable anyway.
  await waitFor('bravo reachable', async () => ((await a.get('/status/ipam')).body.includes('(bravo)') && !(await a.get('/status/ipam')).body.includes('unreachable') ? true : undefined));
  await b.kill();
  const down = await a.waitForLog((r) => r.msg.startsWith('connection shutting down due to error'));
  t.equal(down['peer'], bLabel);
  t.type(down['reason'], 'string');
  await waitFor('bravo unreachable', async () => (/- unreachable!/.test((await a.get('/status/ipam')).body) ? true : undefined));
  const rm = await a.cli(['rmpeer', 'bravo']);
  t.equal(rm.code, 0, `rmpeer: ${rm.stdout}${rm.stderr}`);
  const takeover = await a.waitForLog((r) => /^32768 IPs taken over from /.test(r.msg));
  t.equal(takeover['peer'], bLabel);
  t.equal(takeover['component'], 'ipam');
  const statusLines = a.logs.filter((r) => r.msg.startsWith('IPAM status: '));
  t.ok(statusLines.every((r, i) => i === 0 || r['status'] !== statusLines[i - 1]!['status']), 'each IPAM status logged once');
});

t.test('--log-format text: one human line per record', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-text-'));
  const proc = new NsProcess(null, [process.execPath, WEAVER, '--host', ip(3), '--http-addr', `${ip(3)}:6784`, '--metrics-addr', '',
    '--no-bridge', '--name', nameForIp(ip(3)), '--nickname', 'human', '--db-prefix', join(dir, 'w-'), '--log-format', 'text']);
  t.teardown(async () => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const [line] = await proc.waitForOutput(/^.*Listening for HTTP control messages.*$/m, 15_000);
  t.match(line, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4}\] INFO: Listening for HTTP control messages on 127\.0\.82\.3:6784$/);
  t.notOk(proc.stdout.split('\n').some((l) => l.startsWith('{')), 'no JSON in text mode');
});
