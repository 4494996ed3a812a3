// weft's iptables rules on a real kernel, in a node namespace of our own, with both backends:
// detection, ensure twice = no change, flushes and edits behind its back reported and repaired,
// other people's rules untouched, remove() leaves nothing of ours.
import t from 'tap';
import { LocalCluster, type ClusterNode } from '../../../src/cluster/index.js';
import { sweep } from '../../../src/cluster/netns.js';
import { detectIptablesBackend, HostIptables, type IptablesMode } from '../../../src/dataplane/host/iptables.js';
import type { Runner } from '../../../src/dataplane/host/runner.js';

const PREFIX = 'wthi';
const CONFIG = { range: '10.32.0.0/12' };

t.before(() => sweep(PREFIX));

const runnerIn = (node: ClusterNode): Runner => (argv, options) => node.exec(argv, options);

/** The rule lines of a table, without comments and counters: what "no change" compares. */
async function rules(node: ClusterNode, mode: IptablesMode, table: string): Promise<string[]> {
  const out = await node.run([`iptables-${mode}-save`, '-t', table]);
  return out.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '[]'));
}

const EXPECTED = {
  filter: [
    ':WEAVE-CANARY - []',
    ':WEAVE-FORWARD - []',
    '-A FORWARD -j WEAVE-FORWARD',
    '-A WEAVE-FORWARD -i weave -o weave -j ACCEPT',
    '-A WEAVE-FORWARD -i weave ! -o weave -j ACCEPT',
    '-A WEAVE-FORWARD -o weave -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A WEAVE-FORWARD -d 10.32.0.0/12 -o weave -j ACCEPT',
  ],
  nat: [
    ':WEAVE - []',
    ':WEAVE-CANARY - []',
    '-A POSTROUTING -j WEAVE',
    '-A WEAVE -s 10.32.0.0/12 -d 224.0.0.0/4 -j RETURN',
    '-A WEAVE ! -s 10.32.0.0/12 -d 10.32.0.0/12 -j MASQUERADE',
    '-A WEAVE -s 10.32.0.0/12 ! -d 10.32.0.0/12 -j MASQUERADE',
  ],
};

const ours = (lines: string[]): string[] => lines.filter((l) => /WEAVE/.test(l));

t.test('the backend: the mode of plain iptables, unless the other one holds more rules', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1 });
  t.teardown(() => cluster.destroy());
  const node = cluster.node(1);
  const fresh = await detectIptablesBackend(runnerIn(node));
  t.match(fresh, { mode: 'nft', save: 'iptables-nft-save', restore: 'iptables-nft-restore', reason: /iptables -V says nft/ });
  await node.run(['iptables-legacy', '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT']);
  const legacy = await detectIptablesBackend(runnerIn(node));
  t.match(legacy, { mode: 'legacy', save: 'iptables-legacy-save', restore: 'iptables-legacy-restore', reason: '1 rules in iptables-legacy, 0 in iptables-nft' });
  const forced = await detectIptablesBackend(runnerIn(node), 'nft');
  t.match(forced, { mode: 'nft', save: 'iptables-nft-save', restore: 'iptables-nft-restore', reason: /as configured/ }, 'a configured backend wins over the rule count');
});

for (const mode of ['nft', 'legacy'] as const) {
  t.test(`${mode}: ensure, ensure again, repairs, remove`, async (t) => {
    const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1 });
    t.teardown(() => cluster.destroy());
    const node = cluster.node(1);
    const ipt = `iptables-${mode}`;
    // Someone else's rules, which nothing of ours may disturb.
    await node.run([ipt, '-A', 'FORWARD', '-i', 'lo', '-j', 'ACCEPT']);
    await node.run([ipt, '-t', 'nat', '-A', 'POSTROUTING', '-o', 'lo', '-j', 'RETURN']);
    const backend = await detectIptablesBackend(runnerIn(node));
    t.equal(backend.mode, mode);
    const h = new HostIptables(runnerIn(node), backend, CONFIG);

    t.equal((await h.check()).length, 6, 'check on a bare host: everything missing');
    t.same(ours(await rules(node, mode, 'filter')), [], 'check changed nothing');
    t.same(await h.ensure(), [
      'filter chain WEAVE-FORWARD is missing', 'filter FORWARD does not jump to WEAVE-FORWARD', 'filter chain WEAVE-CANARY is missing',
      'nat chain WEAVE is missing', 'nat POSTROUTING does not jump to WEAVE', 'nat chain WEAVE-CANARY is missing',
    ]);
    const filter = await rules(node, mode, 'filter');
    const nat = await rules(node, mode, 'nat');
    t.same(ours(filter), EXPECTED.filter, 'filter as designed');
    t.same(ours(nat), EXPECTED.nat, 'nat as designed');
    t.ok(filter.includes('-A FORWARD -i lo -j ACCEPT') && nat.includes('-A POSTROUTING -o lo -j RETURN'), "others' rules still there");
    t.same(await h.check(), []);
    t.same(await h.ensure(), [], 'a second ensure finds nothing to do');
    t.same([await rules(node, mode, 'filter'), await rules(node, mode, 'nat')], [filter, nat], 'and changes nothing');

    const cases: [string, string[], string[]][] = [
      ['nat table flushed', [ipt, '-t', 'nat', '-F'], ['nat chain WEAVE has other rules than ours', 'nat POSTROUTING does not jump to WEAVE']],
      ['filter flushed and chains deleted', ['sh', '-c', `${ipt} -F && ${ipt} -X`], [
        'filter chain WEAVE-FORWARD is missing', 'filter FORWARD does not jump to WEAVE-FORWARD', 'filter chain WEAVE-CANARY is missing',
      ]],
      ['a rule added to our chain', [ipt, '-t', 'nat', '-I', 'WEAVE', '1', '-j', 'RETURN'], ['nat chain WEAVE has other rules than ours']],
      ['a rule of ours deleted', [ipt, '-D', 'WEAVE-FORWARD', '-i', 'weave', '-o', 'weave', '-j', 'ACCEPT'], ['filter chain WEAVE-FORWARD has other rules than ours']],
    ];
    for (const [what, argv, problems] of cases) {
      await node.run(argv);
      t.same(await h.check(), problems, `${what}: check reports it`);
      t.same(await h.ensure(), problems, `${what}: ensure repairs it`);
      t.same(await h.check(), [], `${what}: nothing left`);
      t.same(ours(await rules(node, mode, 'filter')), EXPECTED.filter);
      t.same(ours(await rules(node, mode, 'nat')), EXPECTED.nat);
    }

    // The flushes above took the other rules too; put them back to see that remove() spares them.
    await node.run([ipt, '-A', 'FORWARD', '-i', 'lo', '-j', 'ACCEPT']);
    await node.run([ipt, '-t', 'nat', '-A', 'POSTROUTING', '-o', 'lo', '-j', 'RETURN']);
    // A second jump to our chain (another tool copied it) is removed too.
    await node.run([ipt, '-A', 'FORWARD', '-j', 'WEAVE-FORWARD']);
    t.same(await h.remove(), ['filter', 'nat']);
    t.same(ours(await rules(node, mode, 'filter')), [], 'remove() leaves nothing of ours in filter');
    t.same(ours(await rules(node, mode, 'nat')), [], 'nor in nat');
    t.ok((await rules(node, mode, 'filter')).includes('-A FORWARD -i lo -j ACCEPT'), "others' rules still there");
    t.ok((await rules(node, mode, 'nat')).includes('-A POSTROUTING -o lo -j RETURN'));
    t.same(await h.remove(), [], 'removing again does nothing');
  });
}
