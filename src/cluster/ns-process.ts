// A long-running process inside a network namespace (a daemon, a TCP sink): started with
// `ip netns exec`, its output kept, stopped on demand. It runs in a process group of its own so
// that stopping it also stops anything it forked (a shell's children, a helper).
import { spawn, type ChildProcess } from 'node:child_process';
import { inNetns, type Netns } from './exec.js';

export interface SpawnOptions {
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Called with every complete line the process writes to stdout. */
  readonly onStdoutLine?: (line: string) => void;
  /** Called with every complete line the process writes to stderr. */
  readonly onStderrLine?: (line: string) => void;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The grace a process gets between SIGTERM and SIGKILL when stopped. */
export const DEFAULT_STOP_GRACE_MS = 2_000;

export class NsProcess {
  /** Everything written to stdout and stderr so far, as text. */
  stdout = '';
  stderr = '';
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private exit: Exit | undefined;
  private readonly watchers = new Set<() => void>();

  constructor(
    readonly ns: Netns,
    readonly argv: readonly string[],
    options: SpawnOptions = {},
  ) {
    const [file, ...args] = inNetns(ns, argv);
    if (file === undefined) throw new RangeError('spawn: empty command');
    this.child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: stop() signals the whole group (see kill()).
      detached: true,
      env: options.env ? { ...process.env, ...options.env } : process.env,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    this.exited = new Promise<Exit>((resolve) => {
      this.child.once('error', (err) => {
        this.stderr += `${err.message}\n`;
        this.exit = { code: null, signal: null };
        this.notify();
        resolve(this.exit);
      });
      this.child.once('exit', (code, signal) => {
        // Output is complete once the pipes close; a grandchild that escaped the process group
        // could hold them open for ever, so give up on the rest after a moment.
        const lateTimer = setTimeout(() => {
          this.child.stdout?.destroy();
          this.child.stderr?.destroy();
        }, 500);
        this.child.once('close', () => {
          clearTimeout(lateTimer);
          this.exit = { code, signal };
          this.notify();
          resolve(this.exit);
        });
      });
    });
    this.pipe(this.child.stdout, (text) => (this.stdout += text), options.onStdoutLine);
    this.pipe(this.child.stderr, (text) => (this.stderr += text), options.onStderrLine);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.exit === undefined;
  }

  /** How it ended, once it has. */
  get exitStatus(): Exit | undefined {
    return this.exit;
  }

  /** Sends `signal` to the process and everything in its process group. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.running || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // ESRCH: already gone between the check and the signal.
    }
  }

  /** SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves once it has exited. */
  async stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<Exit> {
    if (!this.running) return this.exited;
    this.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    const first = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (first === 'late') this.kill('SIGKILL');
    return this.exited;
  }

  /**
   * Resolves with the first match of `pattern` in stdout (or stderr with `stream: 'stderr'`),
   * already written or still to come. Rejects if the process exits first or after `timeoutMs`
   * (never, with Infinity).
   */
  waitForOutput(pattern: RegExp, timeoutMs = 10_000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const match = (stream === 'stdout' ? this.stdout : this.stderr).match(pattern);
        if (match) {
          done();
          resolve(match);
          return true;
        }
        if (!this.running) {
          done();
          reject(new Error(`${this.describe()} exited (${JSON.stringify(this.exit)}) before printing ${pattern}; stderr: ${this.stderr.slice(-2000)}`));
          return true;
        }
        return false;
      };
      // No timer at all for Infinity: an idle timer would keep the event loop (and tap) alive.
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            done();
            reject(new Error(`${this.describe()} did not print ${pattern} within ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}`));
          }, timeoutMs)
        : undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
      };
      const watcher = (): void => void check();
      if (!check()) this.watchers.add(watcher);
    });
  }

  private describe(): string {
    return `${this.argv.join(' ')}${this.ns === null ? '' : ` (in netns ${this.ns})`}`;
  }

  private notify(): void {
    for (const w of [...this.watchers]) w();
  }

  private pipe(
    stream: NodeJS.ReadableStream | null,
    keep: (text: string) => void,
    onLine: ((line: string) => void) | undefined,
  ): void {
    if (stream === null) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      keep(chunk);
      if (onLine) {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) onLine(line);
      }
      this.notify();
    });
  }
}
