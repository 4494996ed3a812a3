// The runners' shared contract, for the local runner and for the one that runs its commands
// through the helper process (spawner.ts): output and exit status, stdin (also given later, as a
// promise), a missing program as exit 127, a timeout.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostCommandError, localRunner, runChecked, type Runner } from '../../../src/dataplane/host/runner.js';
import { Spawner } from '../../../src/dataplane/host/spawner.js';

const runners: [string, () => Runner][] = [
  ['local', () => localRunner()],
  ['helper', () => {
    const spawner = new Spawner();
    t.teardown(() => spawner.close());
    return spawner.run;
  }],
];

for (const [kind, make] of runners) {
  const run = make();

  t.test(`${kind}: exit status, output and input`, async (t) => {
    t.match(await run(['sh', '-c', 'echo out; echo err >&2; exit 3']), { code: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false });
    t.match(await run(['cat'], { input: 'fed in' }), { code: 0, stdout: 'fed in' });
    t.match(await run(['cat']), { code: 0, stdout: '' }, 'no input: stdin is closed, nothing hangs');
    t.equal(await runChecked(run, ['echo', 'hi']), 'hi\n');
    await t.rejects(runChecked(run, ['sh', '-c', 'echo nope >&2; exit 1']), new HostCommandError(['sh', '-c', 'echo nope >&2; exit 1'], { code: 1, stdout: '', stderr: 'nope\n' }));
  });

  t.test(`${kind}: input given as a promise reaches a command that started before it was known`, async (t) => {
    let give: (text: string) => void = () => undefined;
    const input = new Promise<string>((resolve) => (give = resolve));
    // The command leaves a mark as it starts, then echoes its stdin. The input is given only once
    // the mark is there: a runner that waited for the input before starting would never get it.
    const dir = mkdtempSync(join(tmpdir(), 'weft-runner-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const mark = join(dir, 'started');
    const result = run(['sh', '-c', 'touch "$1"; cat', 'sh', mark], { input });
    const deadline = Date.now() + 10_000;
    while (!existsSync(mark) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    t.ok(existsSync(mark), 'the command started with its input still unknown');
    give('later\n');
    t.match(await result, { code: 0, stdout: 'later\n' });
    t.match(await run(['cat'], { input: Promise.reject(new Error('no address')) }), { code: 0, stdout: '' }, 'a rejected input closes stdin empty');
  });

  t.test(`${kind}: a command that exits without reading a large input is no error (EPIPE is swallowed)`, async (t) => {
    for (let i = 0; i < 5; i++) t.match(await run(['true'], { input: 'x'.repeat(1 << 20) }), { code: 0 });
  });

  t.test(`${kind}: a program that does not exist is exit 127, not an exception`, async (t) => {
    t.match(await run(['/nonexistent/wth-program']), { code: 127, stderr: /ENOENT/ });
    t.match(await run([]), { code: 127 });
  });

  t.test(`${kind}: a command that outlives its timeout is killed and says so`, async (t) => {
    const started = Date.now();
    const r = await run(['sleep', '5'], { timeoutMs: 200 });
    t.equal(r.timedOut, true);
    t.ok(Date.now() - started < 2000);
    await t.rejects(runChecked(run, ['sleep', '5'], { timeoutMs: 100 }), /timed out/);
  });

  t.test(`${kind}: commands run side by side, each with its own answer`, async (t) => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => run(['sh', '-c', `sleep 0.0${i % 10}; echo ${i}; exit ${i % 4}`])));
    t.same(results.map((r) => [r.stdout, r.code]), Array.from({ length: 20 }, (_, i) => [`${i}\n`, i % 4]));
  });
}
