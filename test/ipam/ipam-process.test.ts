// IPAM through real daemons on loopback addresses: consensus, the even split, the API, rmpeer,
// restarts and kill -9.
import t from 'tap';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Weaver, waitFor, nameForIp } from '../lib/weaver.js';

const ip = (n: number): string => `127.0.13.${n}`;
const FAST = ['--heartbeat-interval', '1', '--gossip-interval', '1'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function ready(w: Weaver): Promise<void> {
  await waitFor(`${w.options.nickname} ready`, async () => (/\n {9}Status: ready\n/.test((await w.get('/status')).body) ? true : undefined), 30_000);
}

/** `weave status ipam` without our own "(N active)" and unreachable markers: the same on every peer. */
function ranges(text: string): string[] {
  return text.split('\n').filter((l) => l !== '').map((l) => l.replace(/ \(\d+ active\)| - unreachable!/, '').trimEnd()).sort();
}

for (const [n, base, quorum, share, percent] of [[3, 0, 2, /34952[56]/, '33.3'], [5, 100, 3, /20971[56]/, '20.0']] as const) {
  t.test(`${n} peers with consensus=${n} start at different moments and agree on an even split`, async (t) => {
    const peers: Weaver[] = [];
    for (let i = 1; i <= n; i++) {
      const init = ['--ipalloc-init', `consensus=${n}`];
      peers.push(await Weaver.start(t, { ip: ip(base + i), nickname: `p${i}`, args: [...FAST, ...init], peers: i === 1 ? [] : [ip(base + 1)] }));
      if (i < n) {
        await sleep(700);
        t.match((await peers[0]!.get('/status')).body, new RegExp(`Status: awaiting consensus \\(quorum: ${quorum}, known: \\d\\)`), `status answers while waiting (${i} up)`);
      }
    }
    await Promise.all(peers.map(ready));
    const views = await Promise.all(peers.map(async (w) => ranges((await w.get('/status/ipam')).body)));
    for (const v of views) t.same(v, views[0], 'every peer shows the same ring');
    t.equal(views[0]!.length, n);
    for (const line of views[0]!) {
      t.match(line, new RegExp(`^[0-9a-f:]{17}\\(p\\d\\) +${share.source} IPs \\(${percent.replace('.', '\\.')}% of total\\)$`), line);
    }
  });
}

t.test('the allocation API: idempotent, lookup, claim, release, first and last never given', async (t) => {
  const a = await Weaver.start(t, { ip: ip(11), nickname: 'a', args: [...FAST, '--ipalloc-range', '10.9.0.0/29', '--ipalloc-init', `seed=${nameForIp(ip(11))}`, '--ipam-request-timeout', '1'] });
  await ready(a);
  const first = await a.call('POST', '/ip/c1');
  t.same(first, { status: 200, body: '10.9.0.1/29' }, 'lowest free address, not the network address');
  t.same(await a.call('POST', '/ip/c1'), first, 'idempotent');
  t.same(await a.get('/ip/c1'), { status: 200, body: '10.9.0.1/29' });
  t.equal((await a.call('PUT', '/ip/c2/10.9.0.5')).status, 204, 'claim');
  t.equal((await a.call('PUT', '/ip/c3/10.9.0.5')).status, 409, 'claim of a held address refused');
  t.equal((await a.call('PUT', '/ip/c3/10.9.0.7')).status, 409, 'the last address is never given');
  const got = [];
  for (const id of ['c3', 'c4', 'c5', 'c6']) got.push((await a.call('POST', `/ip/${id}`)).body);
  t.same(got, ['10.9.0.2/29', '10.9.0.3/29', '10.9.0.4/29', '10.9.0.6/29']);
  const full = await a.call('POST', '/ip/c7');
  t.equal(full.status, 503, 'no space left: fails after the timeout');
  t.match(full.body, /waiting for IP\(s\) to become available|all IP ranges/);
  t.equal((await a.call('DELETE', '/ip/c3')).status, 204);
  t.same(await a.call('POST', '/ip/c7'), { status: 200, body: '10.9.0.2/29' }, 'released addresses are reused');
  const unknown = await a.call('DELETE', '/ip/nobody');
  t.equal(unknown.status, 404);
  t.equal(unknown.body, 'no IP address allocated to nobody\n');
  t.equal((await a.get('/ip/nobody')).status, 404);
  const owned = JSON.parse((await a.get('/ip')).body) as { owned: { containerid: string; addrs: string[] }[] };
  t.equal(owned.owned.length, 6);
  t.ok(owned.owned.some((o) => o.containerid === 'c2' && o.addrs[0] === '10.9.0.5/29'));
  const report = JSON.parse((await a.get('/report')).body) as { IPAM: { Range: string; ActiveIPs: number } };
  t.equal(report.IPAM.Range, '10.9.0.0/29');
  t.equal(report.IPAM.ActiveIPs, 6);
  t.equal((await a.cli(['report', '-f', '.IPAM.Range'])).stdout, '10.9.0.0/29\n');
});

t.test('an allocation while consensus is pending fails in bounded time with the status', async (t) => {
  const a = await Weaver.start(t, { ip: ip(21), nickname: 'lonely', args: [...FAST, '--ipalloc-init', 'consensus=3', '--ipam-request-timeout', '1.5'] });
  const started = Date.now();
  const r = await a.call('POST', '/ip/x');
  const took = Date.now() - started;
  t.equal(r.status, 503);
  t.equal(r.body, 'awaiting consensus (quorum: 2, known: 1)\n');
  t.ok(took >= 1000 && took < 6000, `failed after ${took} ms`);
  t.match((await a.cli(['status'])).stdout, /\n {9}Status: awaiting consensus \(quorum: 2, known: 1\)\n/);
});

t.test('a peer joining later gets space from the peer with the most free', async (t) => {
  const init = ['--ipalloc-init', 'consensus=2'];
  const a = await Weaver.start(t, { ip: ip(31), nickname: 'a', args: [...FAST, ...init] });
  const b = await Weaver.start(t, { ip: ip(32), nickname: 'b', args: [...FAST, ...init], peers: [a.address] });
  await Promise.all([ready(a), ready(b)]);
  const versionsOfA = async (w: Weaver): Promise<number> => {
    const entries = (JSON.parse((await w.get('/report')).body) as { IPAM: { Entries: { Peer: string; Version: number }[] } }).IPAM.Entries;
    return entries.filter((e) => e.Peer === nameForIp(ip(31))).reduce((n, e) => n + e.Version, 0);
  };
  const before = await versionsOfA(b);
  for (let i = 0; i < 3; i++) t.equal((await a.call('POST', `/ip/a${i}`)).status, 200);
  // a publishes its free counts on its next tick; once b has them, so will c (it gets the ring
  // from a), and "the most free" is decided on the counts after the allocations.
  await waitFor('a\'s free counts gossiped', async () => ((await versionsOfA(b)) > before ? true : undefined));
  const c = await Weaver.start(t, { ip: ip(33), nickname: 'c', args: [...FAST, '--ipalloc-init', 'consensus=3'], peers: [a.address] });
  await ready(c);
  const r = await c.call('POST', '/ip/c0');
  t.equal(r.status, 200, 'the late peer allocates');
  const view = (await c.get('/status/ipam')).body;
  // b had the most free space (a had handed out three): half of b's 524287 free addresses.
  t.match(view, /\(c\) +262143 IPs \(25\.0% of total\) \(1 active\)/, 'half of b\'s free space');
  t.match(view, /\(b\) +262145 IPs \(25\.0% of total\)/);
  t.match(view, /\(a\) +524288 IPs \(50\.0% of total\)/);
});

t.test('an observer never votes: it waits for the voters\' ring, then allocates with donated space', async (t) => {
  const o = await Weaver.start(t, { ip: ip(71), nickname: 'obs', args: [...FAST, '--ipalloc-init', 'observer'] });
  await sleep(1500);
  t.match((await o.get('/status')).body, /Status: (priming|idle)/, 'alone, the observer makes no ring');
  const init = ['--ipalloc-init', 'consensus=2'];
  const a = await Weaver.start(t, { ip: ip(72), nickname: 'a', args: [...FAST, ...init], peers: [o.address] });
  const b = await Weaver.start(t, { ip: ip(73), nickname: 'b', args: [...FAST, ...init], peers: [o.address] });
  await Promise.all([a, b, o].map(ready));
  const view = (await o.get('/status/ipam')).body;
  t.notMatch(view, /\(obs\)/, 'the observer is not a member');
  t.equal((await o.call('POST', '/ip/x')).status, 200, 'but it can allocate, with space it is given');
  t.match((await o.get('/status/ipam')).body, /\(obs\) +\d+ IPs/);
});

t.test('rmpeer takes a dead peer\'s ranges, refuses a live one', async (t) => {
  const names = [ip(41), ip(42), ip(43)].map(nameForIp);
  const init = ['--ipalloc-init', `seed=${names.join(',')}`];
  const a = await Weaver.start(t, { ip: ip(41), nickname: 'a', args: [...FAST, ...init] });
  const b = await Weaver.start(t, { ip: ip(42), nickname: 'b', args: [...FAST, ...init], peers: [a.address] });
  const c = await Weaver.start(t, { ip: ip(43), nickname: 'c', args: [...FAST, ...init], peers: [a.address] });
  await Promise.all([a, b, c].map(ready));
  await waitFor('a knows c', async () => (/\(c\)/.test((await a.get('/status/peers')).body) ? true : undefined));
  const live = await a.cli(['rmpeer', 'b']);
  t.equal(live.code, 1);
  t.match(live.stderr, /is reachable; rmpeer is only for peers that are dead/);
  await c.kill();
  await waitFor('c unreachable', async () => (/- unreachable!/.test((await a.get('/status/ipam')).body) ? true : undefined));
  const r = await a.cli(['rmpeer', 'c']);
  t.equal(r.code, 0);
  t.equal(r.stdout, '349525 IPs taken over from c\n');
  t.match((await a.get('/status/ipam')).body, /\(a\) +699051 IPs \(66\.7% of total\)/);
  await waitFor('b learns it', async () => (/\(a\) +699051 IPs/.test((await b.get('/status/ipam')).body) ? true : undefined));
});

t.test('kill -9 during an allocation storm: after a restart nothing acknowledged is lost or doubled', async (t) => {
  const args = [...FAST, '--ipalloc-init', `seed=${nameForIp(ip(51))}`];
  const a = await Weaver.start(t, { ip: ip(51), nickname: 'storm', args });
  await ready(a);
  const acked = new Map<string, string>();
  let stop = false;
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const id = `w${w}-${i}`;
      try {
        const r = await a.call('POST', `/ip/${id}`);
        if (r.status === 200) acked.set(id, r.body);
      } catch {
        return; // the daemon is gone
      }
    }
  };
  const workers = Array.from({ length: 16 }, (_, w) => worker(w));
  await waitFor('some allocations', () => (acked.size >= 300 ? true : undefined));
  await a.kill('SIGKILL');
  stop = true;
  await Promise.all(workers);
  await a.launch();
  await ready(a);
  const owned = JSON.parse((await a.get('/ip')).body) as { owned: { containerid: string; addrs: string[] }[] };
  const after = new Map(owned.owned.map((o) => [o.containerid, o.addrs[0]!]));
  let lost = 0;
  for (const [id, addr] of acked) if (after.get(id) !== addr) lost++;
  t.equal(lost, 0, `all ${acked.size} acknowledged allocations survived`);
  t.equal(new Set(after.values()).size, after.size, 'no address held twice');
  const fresh = await a.call('POST', '/ip/after-restart');
  t.notOk([...after.values()].includes(fresh.body), 'a new allocation does not reuse a held address');
});

t.test('a state file of another range or a corrupt one is set aside, never reused', async (t) => {
  const args = [...FAST, '--ipalloc-init', `seed=${nameForIp(ip(61))}`];
  const a = await Weaver.start(t, { ip: ip(61), nickname: 'a', args });
  await ready(a);
  t.equal((await a.call('POST', '/ip/keep')).status, 200);
  await a.kill();
  const file = join(a.stateDir, 'weave-netdata.json');
  t.match(readFileSync(`${file}.journal`, 'utf8'), /"keep"/, 'the allocation is in the journal beside the snapshot');

  const other = await Weaver.start(t, { ip: ip(61), nickname: 'a', stateDir: a.stateDir, args: [...args, '--ipalloc-range', '10.40.0.0/16'] });
  await other.waitForLog((l) => l.msg.startsWith('IPAM state set aside') && /range/.test(l.msg));
  t.equal((await other.get('/ip/keep')).status, 404, 'allocations of the other range not reused');
  await other.kill();
  t.ok(readdirSync(a.stateDir).some((f) => f.startsWith('weave-netdata.json.other-range-')), 'kept for inspection');

  writeFileSync(file, '{"format":"weft-ipam", garbage');
  const again = await Weaver.start(t, { ip: ip(61), nickname: 'a', stateDir: a.stateDir, args });
  await again.waitForLog((l) => l.msg.startsWith('IPAM state set aside') && l.reason === 'corrupt');
  await ready(again);
  t.ok(again.running, 'the daemon runs on');
});
