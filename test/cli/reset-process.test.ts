// `weave reset` on control-plane-only daemons: the ranges go to the live peer, the state files
// go, the daemon stops with exit code 0; the last peer standing has nobody to hand them to.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { Weaver, waitFor, nameForIp } from '../lib/weaver.js';

const ip = (n: number): string => `127.0.83.${n}`;

t.test('reset hands the ranges to the live peer, removes the state and stops', async (t) => {
  const names = [ip(1), ip(2)].map(nameForIp);
  const init = ['--ipalloc-init', `seed=${names.join(',')}`, '--ipalloc-range', '10.43.0.0/16', '--heartbeat-interval', '1', '--gossip-interval', '1'];
  const a = await Weaver.start(t, { ip: ip(1), nickname: 'stays', args: init });
  const b = await Weaver.start(t, { ip: ip(2), nickname: 'leaves', args: init, peers: [a.address] });
  await waitFor('connected', async () => ((await a.report()).Router.Peers.length === 2 ? true : undefined));
  t.equal((await b.call('POST', '/ip/pod-1')).status, 200);
  t.ok(readdirSync(b.stateDir).some((f) => f.endsWith('data.json')), 'b has state on disk');

  const r = await b.cli(['reset']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, [
    `32768 IPs handed over to ${names[0]}(stays)`,
    `removed: ${b.stateDir}/weave-netdata.json, ${b.stateDir}/weave-netdata.json.journal`,
    'weaver is stopping',
    '',
  ].join('\n'));
  t.equal(await b.exitCode(), 0, 'the daemon exits cleanly');
  t.notOk(existsSync(`${b.stateDir}/weave-netdata.json`), 'state gone');
  await waitFor('a owns everything', async () => (/^\S+\(stays\) +65536 IPs \(100\.0% of total\)/.test((await a.get('/status/ipam')).body) ? true : undefined));
  t.pass('the live peer owns the whole range, without rmpeer');
  const gift = await a.waitForLog((l) => l.msg.startsWith('this peer now owns 65536 IPs (was 32768; '));
  t.equal(gift['reason'], `message from ${names[1]}`, 'the heir logs its new share and where it came from');

  // The heir is a reachable peer: only once `a` has seen `b` go is there nobody to hand to.
  await waitFor('b gone from a\'s mesh', async () => ((await a.report()).Router.Peers.length === 1 ? true : undefined));
  const last = await a.cli(['reset']);
  t.equal(last.code, 0, last.stderr);
  t.match(last.stdout, /^no other peer to hand IP ranges to\nremoved: .*weave-netdata\.json.*\nweaver is stopping\n$/);
  t.equal(await a.exitCode(), 0);
  const gone = await a.cli(['reset']);
  t.equal(gone.code, 1, 'and then there is no daemon to reset');
  t.match(gone.stderr, /connection refused; is weaver running\?/);
});
