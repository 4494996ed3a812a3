// The command helper of spawner.ts: runs each command it is sent with localRunner() and sends
// back the result. It is forked once by the daemon and lives as long as the IPC channel does:
// when the daemon exits or is killed, the channel closes and so does the helper.
import { localRunner, type RunResult } from './runner.js';
import type { SpawnerReply, SpawnerRequest } from './spawner.js';

const run = localRunner();
/** Runs whose input is still to come: the command started before its input was known. */
const awaitingInput = new Map<number, (text: string | undefined) => void>();

function reply(m: SpawnerReply): void {
  if (process.connected) process.send?.(m);
}

process.on('message', (m: SpawnerRequest) => {
  if (m.t === 'input') {
    awaitingInput.get(m.id)?.(m.text);
    awaitingInput.delete(m.id);
    return;
  }
  if (m.t !== 'run') return;
  let input: string | Promise<string> | undefined = m.input;
  if (m.later === true) {
    input = new Promise<string>((resolve, reject) => {
      awaitingInput.set(m.id, (text) => (text === undefined ? reject(new Error('no input')) : resolve(text)));
    });
  }
  run(m.argv, { timeoutMs: m.timeoutMs, ...(input === undefined ? {} : { input }) }).then(
    (result) => reply({ t: 'done', id: m.id, result }),
    (err: unknown) => reply({ t: 'done', id: m.id, result: { code: 127, stdout: '', stderr: `cannot run ${m.argv[0] ?? ''}: ${(err as Error).message}` } satisfies RunResult }),
  );
});
process.on('disconnect', () => process.exit(0));
