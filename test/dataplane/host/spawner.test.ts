// What the helper process of spawner.ts adds to the runners' contract (runner.test.ts): commands
// are its children, not the daemon's; it dies with the daemon; a helper that dies fails only the
// commands it was running, and the next command gets a new one; it never keeps a daemon alive.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Spawner } from '../../../src/dataplane/host/spawner.js';

const PARENT = fileURLToPath(new URL('./spawner-parent.js', import.meta.url));

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function eventually(what: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (what()) return true;
  return what();
}

/** Starts spawner-parent.js; resolves with its process and the first line it printed. */
function parent(mode: 'stay' | 'return'): Promise<{ proc: ReturnType<typeof spawn>; line: { helper: number; parentOfCommand: number } }> {
  const proc = spawn(process.execPath, [PARENT, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => proc.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('\n')) resolve({ proc, line: JSON.parse(out.split('\n')[0]!) as { helper: number; parentOfCommand: number } });
    });
    proc.on('exit', (code) => reject(new Error(`spawner-parent exited ${code} before printing`)));
  });
}

t.test('commands are the helper\'s children, not the caller\'s', async (t) => {
  const spawner = new Spawner();
  t.teardown(() => spawner.close());
  const r = await spawner.run(['sh', '-c', 'echo $PPID']);
  t.not(spawner.pid, undefined);
  t.equal(Number(r.stdout.trim()), spawner.pid, 'the command\'s parent is the helper');
  t.not(Number(r.stdout.trim()), process.pid);
  const again = await spawner.run(['sh', '-c', 'echo $PPID']);
  t.equal(Number(again.stdout.trim()), spawner.pid, 'one helper serves every command');
});

t.test('a helper that dies fails the commands it ran; the next command starts a new one', async (t) => {
  const spawner = new Spawner();
  t.teardown(() => spawner.close());
  await spawner.run(['true']);
  const first = spawner.pid!;
  const running = spawner.run(['sleep', '5']);
  await new Promise((r) => setTimeout(r, 200));
  process.kill(first, 'SIGKILL');
  await t.rejects(running, /the command helper exited \(SIGKILL\)/);
  const r = await spawner.run(['sh', '-c', 'echo $PPID']);
  t.equal(r.code, 0);
  t.not(spawner.pid, first, 'a new helper');
  t.equal(Number(r.stdout.trim()), spawner.pid);
});

t.test('a helper that stops answering is given up after the command\'s timeout and a grace, and replaced', async (t) => {
  const spawner = new Spawner({ graceMs: 300 });
  t.teardown(() => spawner.close());
  await spawner.run(['true']);
  const stuck = spawner.pid!;
  process.kill(stuck, 'SIGSTOP');
  const started = Date.now();
  await t.rejects(spawner.run(['true'], { timeoutMs: 200 }), /the command helper did not answer for true within 500 ms/);
  t.ok(Date.now() - started < 3000, 'no hang');
  // At once, not after the stuck one's exit is seen: the next command goes to a new helper.
  const r = await spawner.run(['sh', '-c', 'echo $PPID']);
  t.equal(Number(r.stdout.trim()), spawner.pid);
  t.not(spawner.pid, stuck, 'a new helper');
  t.ok(await eventually(() => !alive(stuck)), 'the stuck helper is killed');
});

t.test('close() fails what runs and kills the helper; a later command starts a new one', async (t) => {
  const spawner = new Spawner();
  await spawner.run(['true']);
  const first = spawner.pid!;
  const running = spawner.run(['sleep', '5']);
  spawner.close();
  await t.rejects(running, /the command helper was closed/);
  t.equal(spawner.pid, undefined);
  t.ok(await eventually(() => !alive(first)));
  t.equal((await spawner.run(['true'])).code, 0);
  spawner.close();
});

t.test('the helper ends with its daemon, even one killed with SIGKILL', async (t) => {
  const { proc, line } = await parent('stay');
  t.equal(line.parentOfCommand, line.helper);
  t.ok(alive(line.helper), 'the helper runs while its daemon does');
  proc.kill('SIGKILL');
  t.ok(await eventually(() => !alive(line.helper)), 'and is gone once the daemon is');
});

t.test('an idle helper does not keep its daemon alive', async (t) => {
  const { proc, line } = await parent('return');
  const code = await new Promise<number | null>((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode);
    else proc.on('exit', (c) => resolve(c));
  });
  t.equal(code, 0, 'the daemon\'s work done, it exits by itself');
  t.ok(await eventually(() => !alive(line.helper)), 'and its helper with it');
});
