// Peers racing to reclaim the same deleted node through the real client and the fake API server's
// optimistic concurrency: the Lease's resourceVersion lets exactly one of them win, every time.
import t from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { FakeKubeApi } from '../../src/cluster/fake-kube-api.js';
import { KubeApi } from '../../src/k8s/kube-api.js';
import { Reclaimer, type ReclaimDaemon } from '../../src/k8s/reclaimer.js';
import { nodeNames } from '../../src/k8s/node-peers.js';
import type { PeerRegistry } from '../../src/k8s/peer-registry.js';
import { parsePeerName, type PeerName } from '../../src/net/peer-name.js';
import { silentLogger } from '../../src/log/logger.js';

const P = (n: number): PeerName => parsePeerName(`02:00:00:00:47:${n.toString(16).padStart(2, '0')}`);
const ROUNDS = 30;

/** A daemon that records who took over whom; rmpeer takes a moment, as a real one does. */
function recorder(by: number, log: { victim: string; by: number }[]): ReclaimDaemon {
  return {
    hasRing: async () => true,
    rmpeer: async (peer) => {
      log.push({ victim: peer, by });
      await new Promise((r) => setTimeout(r, Math.random() * 5));
      return { ok: true, text: '1 IP addresses taken over' };
    },
  };
}

function client(api: FakeKubeApi): KubeApi {
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  return new KubeApi(kc);
}

t.test(`three survivors race for two deleted nodes, ${ROUNDS} times: each victim reclaimed by exactly one`, async (t) => {
  const api = await FakeKubeApi.start();
  t.teardown(() => api.close());
  const clients = [1, 2, 3].map(() => client(api));
  let conflicts = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of api.nodeList()) api.deleteNode(n.metadata.name);
    for (let i = 1; i <= 5; i++) api.addNode(`node-${i}`, { internalIP: `10.0.0.${i}` });
    const seed: PeerRegistry = [1, 2, 3, 4, 5].map((i) => ({ peerName: P(i), nodeName: `node-${i}` }));
    const before = await clients[0]!.read();
    t.ok(await clients[0]!.write(seed, before.version, 'test'), 'registry seeded');
    const conflictsBefore = api.conflicts;
    api.deleteNode('node-4');
    api.deleteNode('node-5');
    const calls: { victim: string; by: number }[] = [];
    const reclaimers = [1, 2, 3].map((i) => new Reclaimer({
      store: clients[i - 1]!, daemon: recorder(i, calls), self: { peerName: P(i), nodeName: `node-${i}` },
      nodes: async () => nodeNames(await clients[i - 1]!.listNodes()), log: silentLogger, retryMs: 10,
    }));
    await Promise.all(reclaimers.map((r) => r.run()));
    conflicts += api.conflicts - conflictsBefore;
    const byVictim = new Map<string, Set<number>>();
    for (const c of calls) byVictim.set(c.victim, (byVictim.get(c.victim) ?? new Set()).add(c.by));
    const final = await clients[0]!.read();
    const ok = byVictim.size === 2 && byVictim.has(P(4)) && byVictim.has(P(5)) && [...byVictim.values()].every((s) => s.size === 1)
      && final.registry.map((e) => e.peerName).sort().join() === [P(1), P(2), P(3)].join() && final.registry.every((e) => e.claimedBy === undefined);
    if (!ok) {
      t.fail(`round ${round}: calls ${JSON.stringify(calls)}, registry ${JSON.stringify(final.registry)}`);
      return;
    }
  }
  t.pass(`${ROUNDS} rounds: each deleted node's peer reclaimed by one survivor only, registry left with the survivors`);
  t.ok(conflicts > 0, `the races were real: ${conflicts} writes refused with 409`);
});

t.test('a claim held by a reclaimer that died is finished by the peer itself when it comes back', async (t) => {
  const api = await FakeKubeApi.start();
  t.teardown(() => api.close());
  const c = client(api);
  api.addNode('node-1');
  api.addNode('node-2');
  // node-2's peer claimed node-3's peer, then its pod was restarted before rmpeer.
  t.ok(await c.write([{ peerName: P(1), nodeName: 'node-1' }, { peerName: P(2), nodeName: 'node-2' }, { peerName: P(3), nodeName: 'node-3', claimedBy: P(2) }], undefined, 'test'));
  const calls: { victim: string; by: number }[] = [];
  const other = new Reclaimer({ store: c, daemon: recorder(1, calls), self: { peerName: P(1), nodeName: 'node-1' }, nodes: async () => nodeNames(await c.listNodes()), log: silentLogger });
  await other.run();
  t.same(calls, [], 'a live claimer\'s victim is left to it');
  const back = new Reclaimer({ store: c, daemon: recorder(2, calls), self: { peerName: P(2), nodeName: 'node-2' }, nodes: async () => nodeNames(await c.listNodes()), log: silentLogger });
  await back.run();
  t.same(calls, [{ victim: P(3), by: 2 }]);
  t.same((await c.read()).registry.map((e) => e.peerName).sort(), [P(1), P(2)]);
});

t.test('rmpeer that cannot happen yet (victim still reachable) is retried while the claim is held', async (t) => {
  const api = await FakeKubeApi.start();
  t.teardown(() => api.close());
  const c = client(api);
  api.addNode('node-1');
  t.ok(await c.write([{ peerName: P(1), nodeName: 'node-1' }, { peerName: P(2), nodeName: 'node-2' }], undefined, 'test'));
  let attempts = 0;
  let ringAsked = 0;
  const daemon: ReclaimDaemon = {
    hasRing: async () => ++ringAsked > 1,
    rmpeer: async () => (++attempts < 3 ? { ok: false, error: 'HTTP 409: peer is reachable' } : { ok: true, text: 'done' }),
  };
  await new Reclaimer({ store: c, daemon, self: { peerName: P(1), nodeName: 'node-1' }, nodes: async () => nodeNames(await c.listNodes()), log: silentLogger, retryMs: 10 }).run();
  t.equal(ringAsked, 4, 'waited for the ring first (rmpeer without a ring would take nothing)');
  t.equal(attempts, 3);
  t.same((await c.read()).registry.map((e) => e.peerName), [P(1)]);
});
