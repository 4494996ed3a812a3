// The state store's snapshot and journal under concurrent use: a snapshot empties the journal, so
// an append that overlaps a snapshot's write would vanish with it unless the two never overlap.
// Random interleavings of appends and snapshots; afterwards the snapshot plus the journal hold
// every value whose append or snapshot was acknowledged.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateStore } from '../../src/ipam/state-store.js';

t.test('appends and snapshots interleaved at random lose nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-state-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let seed = 7;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let round = 0; round < 20; round++) {
    const store = new StateStore(join(dir, `state-${round}.json`));
    const values: number[] = [];
    const ops: Promise<void>[] = [];
    await store.save(() => '');
    for (let i = 0; i < 30; i++) {
      values.push(i);
      // A snapshot holds every value known when its write starts; an append holds its own.
      ops.push(random() < 0.2 ? store.save(() => values.map((v) => `${v}\n`).join('')) : store.append(`${i}\n`));
      if (random() < 0.3) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(ops);
    await store.close();
    const loaded = await new StateStore(join(dir, `state-${round}.json`)).load();
    t.equal(loaded.kind, 'found');
    if (loaded.kind !== 'found') return;
    const seen = new Set(`${loaded.text}${loaded.journal}`.split('\n').filter((l) => l !== '').map(Number));
    const lost = values.filter((v) => !seen.has(v));
    if (lost.length > 0) t.fail(`round ${round}: lost ${lost.join(', ')}`);
  }
  t.pass('no value lost in 20 rounds');
});
