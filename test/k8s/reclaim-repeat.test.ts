// A node deleted from the API has its space reclaimed by exactly one surviving peer, 20 times on
// one cluster: each time a node that joined and took space is deleted (and its pod killed). The
// reclaimer may be a base node or a node of the batch still running; ROUNDS=n runs fewer.
import t from 'tap';
import { KubeTestCluster, machineName, reclaimLines } from './launcher.js';
import { waitFor } from '../lib/weaver.js';

const NET = 71;
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const BATCH = 5;
// About two minutes here; more than the default per-file limit on a slower or busier machine.
t.setTimeout(900_000);

t.test(`${ROUNDS} nodes join and are deleted in turn: each one's space goes to exactly one survivor`, async (t) => {
  const c = await KubeTestCluster.create(t, NET, '10.71.0.0/16');
  for (let i = 1; i <= 3; i++) c.addNode(i);
  for (let i = 1; i <= 3; i++) c.start(i);
  const survivors = [1, 2, 3].map((i) => machineName(NET, i));
  await c.ringIs(survivors, 'a ring of three');
  const reclaimers = new Map<string, number>();
  /** Node deleted → every daemon agrees the survivors own it all: reported, never asserted. */
  const durations: number[] = [];
  // Start-up is the slow part (a second or two of module loading per process, more on a busy
  // machine), so nodes join in batches of five; they are then deleted one at a time, each deletion
  // checked on its own while the rest of the batch is still up.
  for (let first = 0; first < ROUNDS; first += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, ROUNDS - first) }, (_, k) => 10 + first + k);
    for (const i of batch) c.addNode(i);
    const started = batch.map((i) => c.start(i));
    await Promise.all(started.map((l, k) => c.allocate(l, `pod-${batch[k]}`)));
    let live = [...survivors, ...batch.map((i) => machineName(NET, i))];
    await c.ringIs(live, `nodes ${batch.join(', ')} own space`);
    for (const [k, i] of batch.entries()) {
      const node = `node-${i}`;
      const victim = machineName(NET, i);
      const deletedAt = Date.now();
      c.api.deleteNode(node);
      await started[k]!.kill();
      c.launchers.delete(node);
      live = live.filter((p) => p !== victim);
      await c.ringIs(live, `${node}'s space back with the others`);
      await waitFor(`registry without ${node}`, async () => ((await c.kube.read()).registry.some((e) => e.peerName === victim) ? undefined : true), 20_000);
      const lines = reclaimLines(new Set([...c.launchers.values(), ...started]), victim);
      if (lines.length !== 1) {
        t.fail(`${node}: ${lines.length} reclaimers: ${JSON.stringify(lines)}`);
        return;
      }
      reclaimers.set(lines[0]!.node, (reclaimers.get(lines[0]!.node) ?? 0) + 1);
      durations.push(Date.now() - deletedAt);
    }
  }
  const sorted = [...durations].sort((a, b) => a - b);
  t.comment(`deletion to reclaimed everywhere: min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms (includes the random 0-2 s pause)`);
  t.pass(`${ROUNDS} rounds, one reclaimer each (${[...reclaimers].map(([n, k]) => `${n}: ${k}`).join(', ')})`);
  t.same((await c.kube.read()).registry.map((e) => e.peerName).sort(), survivors, 'the registry holds the survivors only');
  const ring = await c.ringIs(survivors, 'the survivors own the whole range');
  t.equal([...ring.values()].reduce((a, b) => a + b, 0), 65536, 'no address lost or doubled');
});
