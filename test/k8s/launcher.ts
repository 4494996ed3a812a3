// Runs the weave-kube entrypoint for process tests, the way the DaemonSet would (same entrypoint,
// same environment), against the fake API server: control plane only (--no-bridge) on a loopback
// address of its own (127.0.N.x). The entrypoint and its weaver run in a process group of their
// own so that a test can kill the whole "pod" at once; teardown kills every group it started.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { FakeKubeApi } from '../../src/cluster/fake-kube-api.js';
import { KubeApi } from '../../src/k8s/kube-api.js';
import { collectLogs, httpCall, waitFor, type LogRecord } from '../lib/weaver.js';

export const LAUNCH = fileURLToPath(new URL('../../src/k8s/launch.js', import.meta.url));

export interface LauncherOptions {
  readonly node: string;
  readonly ip: string;
  readonly peerName: string;
  readonly kubeconfig: string;
  /** Directory for this node's state and CNI config (kept across restarts). */
  readonly dir: string;
  readonly range: string;
  readonly env?: Readonly<Record<string, string>>;
}

export class Launcher {
  readonly logs: LogRecord[] = [];
  readonly stderr: string[] = [];
  private proc?: ChildProcess;
  private exited?: Promise<number | null>;

  private constructor(readonly options: LauncherOptions) {}

  static start(t: { teardown(fn: () => unknown): void }, options: LauncherOptions): Launcher {
    const l = new Launcher(options);
    t.teardown(() => l.kill());
    l.launch();
    return l;
  }

  get confDir(): string {
    return join(this.options.dir, 'net.d');
  }

  get dbPrefix(): string {
    return join(this.options.dir, 'weave-net');
  }

  get httpAddr(): string {
    return `${this.options.ip}:6784`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  launch(): void {
    const o = this.options;
    mkdirSync(o.dir, { recursive: true });
    const env = {
      ...process.env,
      HOSTNAME: o.node, KUBECONFIG: o.kubeconfig, IPALLOC_RANGE: o.range,
      WEAVE_HTTP_ADDR: this.httpAddr, WEAVE_METRICS_ADDR: `${o.ip}:6782`, CNI_CONF_DIR: this.confDir,
      EXTRA_ARGS: `--no-bridge --host ${o.ip} --name ${o.peerName} --db-prefix ${this.dbPrefix} --heartbeat-interval 1 --gossip-interval 1 --log-format json`,
      ...o.env,
    };
    const proc = spawn(process.execPath, [LAUNCH], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    collectLogs(proc.stdout!, this.logs);
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => this.stderr.push(c));
  }

  /** Log lines of the entrypoint itself (weaver's share its stdout). */
  kubeLogs(match: RegExp): LogRecord[] {
    return this.logs.filter((r) => r.component === 'kube' && match.test(r.msg));
  }

  /** Kills the entrypoint and its weaver together (the pod going away), SIGKILL by default. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.proc?.pid) return;
    try {
      process.kill(-this.proc.pid, signal);
    } catch {
      // the group is gone already
    }
    await this.exited;
  }

  /** SIGTERM to the entrypoint only: it must pass it on. */
  terminate(): void {
    this.proc?.kill('SIGTERM');
  }

  async exitCode(): Promise<number | null> {
    return (await this.exited) ?? null;
  }

  call(method: string, path: string): Promise<{ status: number; body: string }> {
    return httpCall(this.httpAddr, method, path);
  }

  /** IPAM's ring as {owner: addresses} from /report. */
  async ownership(): Promise<Map<string, number>> {
    const r = await this.call('GET', '/report');
    const report = JSON.parse(r.body) as { IPAM?: { Entries: { Peer: string; Size: number }[] } };
    const out = new Map<string, number>();
    for (const e of report.IPAM?.Entries ?? []) out.set(e.Peer, (out.get(e.Peer) ?? 0) + e.Size);
    return out;
  }

  async targets(): Promise<string[]> {
    const r = await this.call('GET', '/report');
    return ((JSON.parse(r.body) as { Router: { Targets: string[] } }).Router.Targets).slice().sort();
  }
}

/** The address of node `i` in loopback block `net` (127.0.net.i) and the peer name its machine has. */
export const nodeIp = (net: number, i: number): string => `127.0.${net}.${i}`;
export const machineName = (net: number, i: number): string => `02:00:00:00:${net.toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}`;

/** Every reclaimer's log line saying it took over `peer`. */
export function reclaimLines(launchers: Iterable<Launcher>, peer: string): { node: string; msg: string }[] {
  const out: { node: string; msg: string }[] = [];
  for (const l of launchers) {
    for (const r of l.kubeLogs(/^reclaimed the IP ranges of peer /)) if (r.msg.includes(peer)) out.push({ node: l.options.node, msg: r.msg });
  }
  return out;
}

/**
 * A fake API server, its kubeconfig, and entrypoints started against it as nodes of loopback
 * block `net`; everything is removed at teardown.
 */
export class KubeTestCluster {
  readonly launchers = new Map<string, Launcher>();

  private constructor(
    private readonly t: { teardown(fn: () => unknown): void },
    readonly api: FakeKubeApi,
    readonly kube: KubeApi,
    readonly dir: string,
    readonly net: number,
    readonly range: string,
    readonly size: number,
  ) {}

  static async create(t: { teardown(fn: () => unknown): void }, net: number, range: string): Promise<KubeTestCluster> {
    const api = await FakeKubeApi.start();
    const dir = mkdtempSync(join(tmpdir(), `weft-k8s-${net}-`));
    t.teardown(async () => {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    });
    writeFileSync(join(dir, 'kubeconfig'), api.kubeconfig());
    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfig());
    return new KubeTestCluster(t, api, new KubeApi(kc), dir, net, range, 2 ** (32 - Number(range.split('/')[1])));
  }

  /** Starts node `i`'s entrypoint (by default as machine `i`, with state in a directory of the node's name). */
  start(i: number, node = `node-${i}`, peer = machineName(this.net, i), stateDir = join(this.dir, node)): Launcher {
    const l = Launcher.start(this.t, { node, ip: nodeIp(this.net, i), peerName: peer, kubeconfig: join(this.dir, 'kubeconfig'), dir: stateDir, range: this.range });
    this.launchers.set(node, l);
    return l;
  }

  addNode(i: number, node = `node-${i}`): void {
    this.api.addNode(node, { internalIP: nodeIp(this.net, i) });
  }

  /** Waits until every running daemon sees exactly `owners` owning the whole range, the same way. */
  ringIs(owners: readonly string[], what: string, timeoutMs = 60_000): Promise<Map<string, number>> {
    return waitFor(what, async () => {
      let first: Map<string, number> | undefined;
      for (const l of this.launchers.values()) {
        if (!l.running) continue;
        const o = await l.ownership();
        if ([...o.keys()].sort().join() !== [...owners].sort().join()) return undefined;
        if ([...o.values()].reduce((a, b) => a + b, 0) !== this.size) return undefined;
        if (first && JSON.stringify([...first].sort()) !== JSON.stringify([...o].sort())) return undefined;
        first = o;
      }
      return first;
    }, timeoutMs, 250);
  }

  async allocate(l: Launcher, id: string): Promise<string> {
    return waitFor(`an address on ${l.options.node}`, async () => {
      const r = await l.call('POST', `/ip/${id}`);
      return r.status === 200 ? r.body : undefined;
    }, 40_000, 250);
  }
}
