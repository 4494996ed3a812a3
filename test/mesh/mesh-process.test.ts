// Real weaver daemons on loopback addresses forming a mesh.
import t from 'tap';
import { Weaver, waitFor, type Report } from '../lib/weaver.js';

const ip = (n: number): string => `127.0.10.${n}`;
const FAST = ['--heartbeat-interval', '1', '--gossip-interval', '1'];

function peerNames(r: Report): string[] {
  return r.Router.Peers.map((p) => p.NickName).sort();
}

async function allSee(peers: readonly Weaver[], nicknames: readonly string[], timeoutMs = 20_000): Promise<void> {
  const want = [...nicknames].sort().join(',');
  await Promise.all(peers.map((w) => waitFor(`${w.options.nickname} to see ${want}`, async () => {
    const r = await w.report();
    return peerNames(r).join(',') === want ? true : undefined;
  }, timeoutMs)));
}

t.test('three peers find each other, transitively, and agree on the topology', async (t) => {
  const a = await Weaver.start(t, { ip: ip(1), nickname: 'a', args: FAST });
  const b = await Weaver.start(t, { ip: ip(2), nickname: 'b', args: FAST, peers: [a.address] });
  const c = await Weaver.start(t, { ip: ip(3), nickname: 'c', args: FAST, peers: [b.address] });
  await allSee([a, b, c], ['a', 'b', 'c']);

  // Discovery: c was told only about b, yet connects to a directly.
  await waitFor('c connected to a', async () => {
    const r = await c.report();
    return r.Router.Connections.some((x) => x.State === 'established' && x.Info.endsWith(`(a)`)) ? true : undefined;
  });
  // Once both ends list the new link, a routes to c directly.
  await waitFor('direct routes from a', async () => {
    const routes = (await a.report()).Router.UnicastRoutes;
    return routes.length === 2 && routes.every((x) => x.Dest === x.Via) ? true : undefined;
  });
  // Every peer ends with the same view of every peer's record (same versions).
  await waitFor('identical topologies', async () => {
    const views = await Promise.all([a, b, c].map(async (w) => JSON.stringify((await w.report()).Router.Peers.map((p) => [p.Name, p.UID, p.Version]))));
    return views.every((v) => v === views[0]) ? true : undefined;
  });
  const r = await a.report();
  t.equal(r.Router.Connections.filter((x) => x.State === 'established').length, 2, 'a has two connections');
  t.equal(r.Router.UnicastRoutes.length, 2, 'a routes to b and c');
  for (const route of r.Router.UnicastRoutes) t.equal(route.Dest, route.Via, 'directly');
  t.ok(a.logs.some((l) => l.msg === 'connection added (new peer)'), 'logged the new connection');
  for (const l of a.logs) t.type(l.component, 'string', `component field on "${l.msg}"`);
  t.ok(a.logs.filter((l) => l.component === 'mesh' && l.conn !== undefined).length > 0, 'connection lines carry conn');
});

t.test('kill -9 a peer: the others forget it; restarted, it rejoins as a new incarnation', async (t) => {
  const a = await Weaver.start(t, { ip: ip(11), nickname: 'a', args: FAST });
  const b = await Weaver.start(t, { ip: ip(12), nickname: 'b', args: FAST, peers: [a.address] });
  const c = await Weaver.start(t, { ip: ip(13), nickname: 'c', args: FAST, peers: [a.address] });
  await allSee([a, b, c], ['a', 'b', 'c']);
  const oldUid = (await c.report()).Router.Peers.find((p) => p.NickName === 'c')!.UID;

  await c.kill('SIGKILL');
  await allSee([a, b], ['a', 'b']);
  await a.waitForLog((l) => l.msg.startsWith('Removed unreachable peer') && l.msg.endsWith('(c)'));
  t.notMatch((await a.cli(['status', 'connections'])).stdout, /\(c\)/, 'a no longer lists c');
  t.match((await a.cli(['status', 'peers'])).stdout, /^02:00:00:00:0a:0b\(a\)\n/, 'a lists itself first');

  await c.launch();
  await allSee([a, b, c], ['a', 'b', 'c'], 30_000);
  const seen = (await b.report()).Router.Peers.find((p) => p.NickName === 'c')!;
  t.not(seen.UID, oldUid, 'b knows c\'s new incarnation');
});

t.test('a line with --conn-limit 1 at the ends: the ends still see each other, through the middle', async (t) => {
  const mid = await Weaver.start(t, { ip: ip(21), nickname: 'mid', args: FAST });
  const left = await Weaver.start(t, { ip: ip(22), nickname: 'left', args: [...FAST, '--conn-limit', '1'], peers: [mid.address] });
  const right = await Weaver.start(t, { ip: ip(23), nickname: 'right', args: [...FAST, '--conn-limit', '1'], peers: [mid.address] });
  await allSee([left, mid, right], ['left', 'mid', 'right']);
  const r = await left.report();
  t.equal(r.Router.Connections.filter((x) => x.State === 'established').length, 1, 'left holds one connection');
  const rightName = r.Router.Peers.find((p) => p.NickName === 'right')!.Name;
  const midName = r.Router.Peers.find((p) => p.NickName === 'mid')!.Name;
  t.same(r.Router.UnicastRoutes.find((x) => x.Dest === rightName), { Dest: rightName, Via: midName }, 'right is reached via mid');
  // Discovery saw right's address but the limit kept left from dialling it.
  await new Promise((res) => setTimeout(res, 1500));
  t.equal((await left.report()).Router.Connections.filter((x) => x.State === 'established').length, 1, 'still one');
});

t.test('a peer that goes silent is dropped after two heartbeat intervals', async (t) => {
  const a = await Weaver.start(t, { ip: ip(31), nickname: 'a', args: ['--heartbeat-interval', '0.5'] });
  const b = await Weaver.start(t, { ip: ip(32), nickname: 'b', args: ['--heartbeat-interval', '0.5'], peers: [a.address] });
  await allSee([a, b], ['a', 'b']);
  b.signal('SIGSTOP');
  t.teardown(() => b.signal('SIGCONT'));
  const line = await a.waitForLog((l) => /timed out waiting for a heartbeat/.test(l.msg), 10_000);
  t.match(line.msg, /connection shutting down due to error/);
  b.signal('SIGCONT');
});

t.test('connecting to ourself is detected and never retried', async (t) => {
  const a = await Weaver.start(t, { ip: ip(41), nickname: 'a', args: FAST, peers: [`${ip(41)}:6783`] });
  const line = await waitFor('self target reported', async () => {
    const out = (await a.cli(['status', 'connections'])).stdout;
    return /cannot connect to ourself, retry: never/.test(out) ? out : undefined;
  });
  t.match(line, new RegExp(`^-> ${ip(41)}:6783 +failed +cannot connect to ourself, retry: never`, 'm'));
  const attempts = a.logs.filter((l) => l.msg === 'attempting connection').length;
  await new Promise((res) => setTimeout(res, 3000));
  t.equal(a.logs.filter((l) => l.msg === 'attempting connection').length, attempts, 'no further attempts');
});

t.test('two live peers with one name: a reported collision, never retried', async (t) => {
  const name = '02:00:00:00:10:51';
  const a = await Weaver.start(t, { ip: ip(51), nickname: 'a', name, args: FAST });
  const b = await Weaver.start(t, { ip: ip(52), nickname: 'b', name, args: FAST, peers: [a.address] });
  const out = await waitFor('collision reported', async () => {
    const s = (await b.cli(['status', 'connections'])).stdout;
    return /peer names collision/.test(s) ? s : undefined;
  });
  t.match(out, new RegExp(`local "${name}\\(b\\)" and remote "${name}\\(a\\)" peer names collision, retry: never`));
  t.equal((await a.report()).Router.Peers.length, 1, 'a did not take b in');
});

t.test('two peers that dial each other at once keep one connection, the same one at both ends', async (t) => {
  const [a, b] = await Promise.all([
    Weaver.start(t, { ip: ip(61), nickname: 'a', args: FAST, peers: [`${ip(62)}:6783`] }),
    Weaver.start(t, { ip: ip(62), nickname: 'b', args: FAST, peers: [`${ip(61)}:6783`] }),
  ]);
  await allSee([a, b], ['a', 'b']);
  await new Promise((res) => setTimeout(res, 2500)); // let any duplicate settle
  for (const w of [a, b]) {
    const conns = (await w.report()).Router.Connections.filter((c) => c.State === 'established');
    t.equal(conns.length, 1, `${w.options.nickname} has one connection`);
  }
  // One side's outbound connection is the other side's inbound one.
  const [ca, cb] = await Promise.all([a, b].map(async (w) => (await w.report()).Router.Connections.find((c) => c.State === 'established')!));
  t.not(ca!.Outbound, cb!.Outbound, 'the same connection seen from both ends');
  const flaps = [...a.logs, ...b.logs].filter((l) => /Multiple connections/.test(String(l.reason ?? l.msg))).length;
  t.ok(flaps <= 2, `at most one duplicate closed per side (${flaps})`);
});

t.test('weave status peers lists every peer with the connections that peer reports', async (t) => {
  const a = await Weaver.start(t, { ip: ip(71), nickname: 'a', args: FAST });
  const b = await Weaver.start(t, { ip: ip(72), nickname: 'b', args: FAST, peers: [a.address] });
  await allSee([a, b], ['a', 'b']);
  const text = (await b.cli(['status', 'peers'])).stdout;
  t.match(text, new RegExp(`^02:00:00:00:0a:47\\(a\\)\n   <- ${ip(72).replace(/\./g, '\\.')}:6783 +02:00:00:00:0a:48\\(b\\) +established\n`, 'm'));
  t.match(text, new RegExp(`^02:00:00:00:0a:48\\(b\\)\n   -> ${ip(71).replace(/\./g, '\\.')}:6783 +02:00:00:00:0a:47\\(a\\) +established\n`, 'm'));
});
