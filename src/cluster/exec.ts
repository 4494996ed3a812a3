// Running a command to completion inside a network namespace, with its output and exit status.
// `ip netns exec` is what iproute2 offers for this: it enters the namespace, remounts /sys for it
// (so tools that read /sys/class/net see the namespace's links) and then exec()s the command, so
// the process that runs is the command itself and a timeout kills it, not a wrapper.
// `ip` itself is run as `ip -n <ns> ...` instead: iproute2 switches namespace in-process.
import { execFile } from 'node:child_process';

/** `null` means the namespace this process runs in (the host's, for tests run as root). */
export type Netns = string | null;

export interface ExecOptions {
  /** Killed with SIGKILL after this long; 10 s unless given. */
  readonly timeoutMs?: number;
  /**
   * Written to the command's stdin (then closed). A promise is written when it resolves, so a
   * command can be started before its input is known; a rejected one closes stdin empty.
   */
  readonly input?: string | Promise<string>;
  readonly env?: Readonly<Record<string, string>>;
}

export interface ExecResult {
  /** Exit status; null when a signal ended the command. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export const DEFAULT_EXEC_TIMEOUT_MS = 10_000;

/** The argv that runs `argv` inside `ns`. */
export function inNetns(ns: Netns, argv: readonly string[]): string[] {
  return ns === null ? [...argv] : ['ip', 'netns', 'exec', ns, ...argv];
}

/** Runs `argv` in `ns` and resolves with how it ended; never rejects for a non-zero exit. */
export function exec(ns: Netns, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const full = inNetns(ns, argv);
  const [file, ...args] = full;
  if (file === undefined) return Promise.reject(new RangeError('exec: empty command'));
  const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const child = execFile(
      file,
      args,
      {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        env: options.env ? { ...process.env, ...options.env } : process.env,
      },
      (error, stdout, stderr) => {
        clearTimeout(timer);
        // A command that could not be started at all (ENOENT) is a bug in the caller, not a result.
        if (error && typeof error.code === 'string') {
          reject(new Error(`cannot run ${full.join(' ')}: ${error.message}`));
          return;
        }
        resolve({ code: child.exitCode, signal: child.signalCode, stdout, stderr, timedOut });
      },
    );
    // Our own timer rather than execFile's, to know for sure that the timeout is what ended it.
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    // A command may exit without reading its input (a CNI plugin answering VERSION does): the
    // broken pipe is no failure of ours; its exit status says how it went.
    child.stdin?.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') child.kill('SIGKILL');
    });
    Promise.resolve(options.input ?? '').then((text) => child.stdin?.end(text), () => child.stdin?.end());
  });
}

/** A command that did not exit 0: says what ran, how it ended and what it printed. */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly ns: Netns,
    readonly result: ExecResult,
  ) {
    const how = result.timedOut
      ? 'timed out'
      : result.signal !== null
        ? `was killed by ${result.signal}`
        : `exited ${result.code}`;
    const where = ns === null ? '' : ` (in netns ${ns})`;
    const said = (result.stderr.trim() || result.stdout.trim()).slice(0, 2000);
    super(`${argv.join(' ')}${where} ${how}${said ? `: ${said}` : ''}`);
    this.name = 'CommandError';
  }
}

/** Runs `argv` in `ns` and resolves with its stdout; rejects with a CommandError unless it exits 0. */
export async function run(ns: Netns, argv: readonly string[], options: ExecOptions = {}): Promise<string> {
  const result = await exec(ns, argv, options);
  if (result.code !== 0) throw new CommandError(argv, ns, result);
  return result.stdout;
}

/** `ip [-n ns] ...args`: iproute2 enters the namespace itself, no `ip netns exec` needed. */
export function ip(ns: Netns, args: readonly string[], options: ExecOptions = {}): Promise<string> {
  return run(null, ['ip', ...(ns === null ? [] : ['-n', ns]), ...args], options);
}

/**
 * Runs several `ip` commands in one process (`ip -batch -`), one per line, in order, stopping at
 * the first that fails. One process instead of one per command is most of the start-up time of a
 * cluster saved. Lines are iproute2 command lines without the leading `ip`.
 */
export async function ipBatch(ns: Netns, lines: readonly string[], options: ExecOptions = {}): Promise<void> {
  if (lines.length === 0) return;
  await ip(ns, ['-batch', '-'], { ...options, input: `${lines.join('\n')}\n` });
}
