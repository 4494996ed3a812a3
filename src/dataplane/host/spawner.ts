// A Runner whose commands are started by a small helper process (spawner-child.ts) instead of by
// the daemon itself. Node starts a command with a plain fork() of the whole process: for a daemon
// of ~150 MB that copies its page tables and makes every page it then writes a copy-on-write
// fault until the command execs. The TAP reader Worker, which carries every frame, stalls behind
// that: pings in flight took 2-6 ms at each periodic repair check (every 10 s, three forks),
// against 0.3 ms otherwise. The helper is forked once, while the daemon is small; each command is
// then a fork of the helper, which touches none of the daemon's memory.
//
// The helper is the same localRunner() on the far side of an IPC channel, so callers see the same
// contract: the command's exit status, stdout and stderr, input written to its stdin, a timeout.
// If the helper dies, the commands it was running are reported as failed runs (the runner itself
// failed) and the next command starts a new helper.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULT_COMMAND_TIMEOUT_MS, type RunOptions, type RunResult, type Runner } from './runner.js';

/** Parent to helper. */
export type SpawnerRequest =
  /** `later`: the input follows in an `input` message; the command starts now. */
  | { readonly t: 'run'; readonly id: number; readonly argv: readonly string[]; readonly timeoutMs: number; readonly input?: string; readonly later?: true }
  /** The input of a `later` run; absent text closes stdin empty. */
  | { readonly t: 'input'; readonly id: number; readonly text?: string };

/** Helper to parent. */
export interface SpawnerReply {
  readonly t: 'done';
  readonly id: number;
  readonly result: RunResult;
}

const CHILD = fileURLToPath(new URL('./spawner-child.js', import.meta.url));

export interface SpawnerOptions {
  /** A command's timeout when the caller gives none. */
  readonly defaultTimeoutMs?: number;
  /** How long past a command's own timeout to wait for the helper's answer before giving the helper up as stuck. */
  readonly graceMs?: number;
}

interface Pending {
  /** The helper running it: only its death fails this run. */
  readonly child: ChildProcess;
  readonly resolve: (r: RunResult) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class Spawner {
  #child: ChildProcess | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();

  readonly #defaultTimeoutMs: number;
  readonly #graceMs: number;

  constructor(options: SpawnerOptions = {}) {
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#graceMs = options.graceMs ?? 5_000;
  }

  /** The Runner to hand to HostBridge, HostIptables, PodLinks...: each call runs one command through the helper. */
  readonly run: Runner = (argv, options: RunOptions = {}) =>
    new Promise<RunResult>((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = this.#helper();
      } catch (err) {
        reject(new Error(`cannot start the command helper: ${(err as Error).message}`));
        return;
      }
      const id = this.#nextId++;
      const timeoutMs = options.timeoutMs ?? this.#defaultTimeoutMs;
      const timer = setTimeout(() => {
        // The helper enforces the command's timeout itself; no answer well after it means the
        // helper is stuck: it is killed, with whatever else it was running.
        this.#settle(id)?.reject(new Error(`the command helper did not answer for ${argv.join(' ')} within ${timeoutMs + this.#graceMs} ms`));
        this.#discard(child, 'was stuck');
      }, timeoutMs + this.#graceMs);
      this.#pending.set(id, { child, resolve, reject, timer });
      this.#refWhileBusy(child);
      const input = options.input;
      if (typeof input === 'object') {
        this.#send(child, { t: 'run', id, argv, timeoutMs, later: true });
        input.then(
          (text) => this.#send(child, { t: 'input', id, text }),
          () => this.#send(child, { t: 'input', id }),
        );
      } else {
        this.#send(child, { t: 'run', id, argv, timeoutMs, ...(input === undefined ? {} : { input }) });
      }
    });

  /** Stops the helper (tests; the daemon's helper ends with the daemon). Commands in flight fail. */
  close(): void {
    if (this.#child !== undefined) this.#discard(this.#child, 'was closed');
  }

  /** The helper's pid, once one runs (tests). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  #helper(): ChildProcess {
    if (this.#child !== undefined) return this.#child;
    // No inherited flags (--inspect, a test runner's loaders), and a small heap: it holds only
    // the output of the commands in flight.
    const child = fork(CHILD, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=64'], serialization: 'json' });
    this.#child = child;
    child.on('message', (m: SpawnerReply) => {
      if (m.t === 'done') this.#settle(m.id)?.resolve(m.result);
    });
    child.on('error', (err) => this.#gone(child, `failed: ${err.message}`));
    child.on('exit', (code, signal) => this.#gone(child, `exited (${signal ?? `code ${code}`})`));
    return child;
  }

  /** Kills a helper and forgets it at once: the next command starts a new one rather than queue behind its death. */
  #discard(child: ChildProcess, why: string): void {
    child.kill('SIGKILL');
    this.#gone(child, why);
  }

  /** Fails the runs of a helper that is gone (once: a later exit event finds nothing left). */
  #gone(child: ChildProcess, why: string): void {
    if (this.#child === child) this.#child = undefined;
    for (const [id, p] of [...this.#pending]) if (p.child === child) this.#settle(id)?.reject(new Error(`the command helper ${why}`));
  }

  #send(child: ChildProcess, m: SpawnerRequest): void {
    // A helper that is gone cannot take it; its exit handler fails the run.
    if (child.connected) child.send(m, (err) => err && this.#discard(child, `could not be sent a command: ${err.message}`));
  }

  #settle(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (p === undefined) return undefined;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (this.#child !== undefined) this.#refWhileBusy(this.#child);
    return p;
  }

  /** The helper keeps the daemon's event loop alive only while it runs something for it. */
  #refWhileBusy(child: ChildProcess): void {
    if (this.#pending.size > 0) {
      child.ref();
      child.channel?.ref();
    } else {
      child.unref();
      child.channel?.unref();
    }
  }
}
