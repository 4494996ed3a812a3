// The local runner: output and exit status, stdin, a missing program as exit 127, a timeout.
import t from 'tap';
import { HostCommandError, localRunner, runChecked } from '../../../src/dataplane/host/runner.js';

const run = localRunner();

t.test('exit status, output and input', async (t) => {
  t.match(await run(['sh', '-c', 'echo out; echo err >&2; exit 3']), { code: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false });
  t.match(await run(['cat'], { input: 'fed in' }), { code: 0, stdout: 'fed in' });
  t.match(await run(['cat']), { code: 0, stdout: '' }, 'no input: stdin is closed, nothing hangs');
  t.equal(await runChecked(run, ['echo', 'hi']), 'hi\n');
  await t.rejects(runChecked(run, ['sh', '-c', 'echo nope >&2; exit 1']), new HostCommandError(['sh', '-c', 'echo nope >&2; exit 1'], { code: 1, stdout: '', stderr: 'nope\n' }));
});

t.test('a command that exits without reading a large input is no error (EPIPE is swallowed)', async (t) => {
  for (let i = 0; i < 5; i++) t.match(await run(['true'], { input: 'x'.repeat(1 << 20) }), { code: 0 });
});

t.test('a program that does not exist is exit 127, not an exception', async (t) => {
  t.match(await run(['/nonexistent/wth-program']), { code: 127, stderr: /ENOENT/ });
});

t.test('a command that outlives its timeout is killed and says so', async (t) => {
  const started = Date.now();
  const r = await run(['sleep', '5'], { timeoutMs: 200 });
  t.equal(r.timedOut, true);
  t.ok(Date.now() - started < 2000);
  await t.rejects(runChecked(run, ['sleep', '5'], { timeoutMs: 100 }), /timed out/);
});
