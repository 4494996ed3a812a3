// How the host plumbing runs its commands (ip, tc, iptables-restore, ...): through a Runner the
// caller gives. The daemon gives localRunner(), which runs them here, in the host's namespaces;
// tests give one that runs them inside a network namespace of their own (a local cluster node's
// exec), so the same code is exercised on a real kernel without touching the host.
import { execFile } from 'node:child_process';

export interface RunOptions {
  /**
   * Written to the command's stdin, which is then closed. A promise is written when it resolves
   * (a rejected one closes stdin empty): the process starts before its input is known, so its
   * start-up (milliseconds) is paid while something else goes on.
   */
  readonly input?: string | Promise<string>;
  /** The command is killed after this long. */
  readonly timeoutMs?: number;
}

export interface RunResult {
  /** Exit status; null when a signal ended the command. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut?: boolean;
}

/**
 * Runs argv to completion. Resolves whatever the exit status (a command that cannot be found is
 * a non-zero exit, as in a shell); rejects only when the runner itself fails.
 */
export type Runner = (argv: readonly string[], options?: RunOptions) => Promise<RunResult>;

export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/** Runs commands in this process's own namespaces. */
export function localRunner(defaultTimeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Runner {
  return (argv, options = {}) =>
    new Promise((resolve) => {
      const [file, ...args] = argv;
      if (file === undefined) {
        resolve({ code: 127, stdout: '', stderr: 'empty command' });
        return;
      }
      const child = execFile(
        file,
        args,
        { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? defaultTimeoutMs, killSignal: 'SIGKILL' },
        (error, stdout, stderr) => {
          if (error !== null && typeof error.code === 'string') {
            // Could not be started (ENOENT, EACCES): the shell's way of saying so.
            resolve({ code: 127, stdout: '', stderr: `${file}: ${error.message}` });
            return;
          }
          const timedOut = error?.killed === true && child.signalCode === 'SIGKILL';
          resolve({ code: child.exitCode, stdout, stderr, timedOut });
        },
      );
      // A command that exits without reading its input makes the write fail (EPIPE); its exit
      // status is what counts, and an unhandled stream error would crash the daemon.
      child.stdin?.on('error', () => undefined);
      // No input means stdin at end: a command that would read it does not hang.
      Promise.resolve(options.input ?? '').then((text) => child.stdin?.end(text), () => child.stdin?.end());
    });
}

/** A command that did not exit 0: what ran and what it said. */
export class HostCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
  ) {
    const how = result.timedOut === true ? 'timed out' : result.code === null ? 'was killed' : `exited ${result.code}`;
    const said = (result.stderr.trim() || result.stdout.trim()).slice(0, 2000);
    super(`${argv.join(' ')} ${how}${said ? `: ${said}` : ''}`);
    this.name = 'HostCommandError';
  }
}

/** Runs argv and resolves with its stdout; rejects with a HostCommandError unless it exits 0. */
export async function runChecked(runner: Runner, argv: readonly string[], options?: RunOptions): Promise<string> {
  const result = await runner(argv, { timeoutMs: DEFAULT_COMMAND_TIMEOUT_MS, ...options });
  if (result.code !== 0) throw new HostCommandError(argv, result);
  return result.stdout;
}
