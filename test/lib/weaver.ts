// Runs real weaver daemons for process tests: each on its own loopback address (127.0.N.x), so
// several peers use the real ports (6783, 6784) side by side on one machine. Every daemon started
// here is killed by the test's teardown, pass or fail.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { nodePeerName } from '../../src/cluster/overlay-cluster.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const WEAVER = fileURLToPath(new URL('../../src/daemon/main.js', import.meta.url));
export const WEAVE_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface LogRecord {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface WeaverOptions {
  readonly ip: string;
  readonly nickname: string;
  readonly name?: string;
  readonly peers?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** State directory; a fresh temporary one (kept across restarts of this daemon) by default. */
  readonly stateDir?: string;
}

/**
 * Parses a daemon's JSON log lines from `stream` into `logs` as they come (a line that is not
 * JSON is kept as a 'raw' record); `onLines` runs after each chunk.
 */
export function collectLogs(stream: NodeJS.ReadableStream, logs: LogRecord[], onLines?: () => void): void {
  let partial = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as LogRecord);
      } catch {
        logs.push({ level: 'raw', msg: line });
      }
    }
    onLines?.();
  });
}

/** A peer name derived from a loopback address: 127.0.10.3 -> 02:00:00:00:0a:03. */
export function nameForIp(ip: string): string {
  const [, , c, d] = ip.split('.').map(Number) as [number, number, number, number];
  return nodePeerName(c, d);
}

export class Weaver {
  readonly logs: LogRecord[] = [];
  readonly stderr: string[] = [];
  private proc?: ChildProcess;
  private exited?: Promise<number | null>;
  private waiters: (() => void)[] = [];

  readonly stateDir: string;

  private constructor(readonly options: WeaverOptions) {
    this.stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), `weft-${options.nickname}-`));
  }

  /** Starts a daemon and waits until its HTTP API listens. */
  static async start(t: Teardown, options: WeaverOptions): Promise<Weaver> {
    const w = new Weaver(options);
    t.teardown(async () => {
      await w.kill();
      if (options.stateDir === undefined) rmSync(w.stateDir, { recursive: true, force: true });
    });
    await w.launch();
    return w;
  }

  get ip(): string {
    return this.options.ip;
  }

  get address(): string {
    return `${this.options.ip}:6783`;
  }

  get httpAddr(): string {
    return `${this.options.ip}:6784`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async launch(): Promise<void> {
    const o = this.options;
    const args = [
      WEAVER, '--host', o.ip, '--http-addr', this.httpAddr, '--nickname', o.nickname,
      '--log-format', 'json', '--no-bridge', '--db-prefix', join(this.stateDir, 'weave-net'),
      '--metrics-addr', `${o.ip}:6782`,
      // Every daemon here shares the machine's machine-id, so each needs a name of its own.
      '--name', o.name ?? nameForIp(o.ip),
      ...(o.args ?? []), ...(o.peers ?? []),
    ];
    const proc = spawn(process.execPath, args, { env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    collectLogs(proc.stdout!, this.logs, () => {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    });
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    await this.waitForLog((r) => r.msg.startsWith('Listening for HTTP control messages'), 15_000);
  }

  /** Waits for a log record matching `match` (already logged, or to come). */
  async waitForLog(match: (r: LogRecord) => boolean, timeoutMs = 15_000): Promise<LogRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.find(match);
      if (found) return found;
      if (!this.running) throw new Error(`${this.options.nickname} exited: ${this.stderr.join('')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.options.nickname}: no matching log record within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  get(path: string): Promise<{ status: number; body: string }> {
    return httpGet(this.httpAddr, path);
  }

  call(method: string, path: string): Promise<{ status: number; body: string }> {
    return httpCall(this.httpAddr, method, path);
  }

  async report(): Promise<Report> {
    const r = await this.get('/report');
    return JSON.parse(r.body) as Report;
  }

  /** Runs the weave CLI against this daemon. */
  cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli(args, { WEAVE_HTTP_ADDR: this.httpAddr });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.proc!.kill(signal);
    await this.exited;
  }

  signal(signal: NodeJS.Signals): void {
    this.proc?.kill(signal);
  }

  async exitCode(): Promise<number | null> {
    return (await this.exited) ?? null;
  }
}

export interface Report {
  Ready: boolean;
  Version: string;
  Router: {
    Name: string;
    NickName: string;
    Encryption: boolean;
    Peers: { Name: string; NickName: string; UID: string; Version: number; Connections: { Name: string; Address: string; Established: boolean; Outbound: boolean }[] }[];
    Connections: { Address: string; Outbound: boolean; State: string; Info: string }[];
    UnicastRoutes: { Dest: string; Via: string }[];
    BroadcastRoutes: { Source: string; Via: string[] }[];
    Targets: string[];
    TerminationCount: number;
  };
}

export function httpGet(addr: string, path: string): Promise<{ status: number; body: string }> {
  return httpCall(addr, 'GET', path);
}

export function httpCall(addr: string, method: string, path: string): Promise<{ status: number; body: string }> {
  const [host, port] = addr.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.setTimeout(40_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export function runCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode([WEAVE_CLI, ...args], env);
}

export function runNode(args: readonly string[], env: Readonly<Record<string, string>> = {}, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export { waitFor } from '../../src/cluster/wait-for.js';
