// A local cluster running the real data path: a weaver daemon with bridge, TAP and sleeve in
// every node namespace, started as the DaemonSet would start it, and pods attached to the bridges
// with addresses from IPAM. Used by the network tests, the benchmarks and `npm run demo`;
// destroy() removes every namespace, process and state file it made.
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, type ClusterNode, type Pod } from './cluster.js';
import type { NsProcess } from './ns-process.js';
import { sweep } from './netns.js';
import { waitFor } from './wait-for.js';

const WEAVER = fileURLToPath(new URL('../daemon/main.js', import.meta.url));
const WEAVE_CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const HTTP_CALL = fileURLToPath(new URL('./http-call.js', import.meta.url));

/** A peer name for node `index` of cluster `net`: every daemon here shares the machine-id. */
export function nodePeerName(net: number, index: number): string {
  return `02:00:00:00:${net.toString(16).padStart(2, '0')}:${index.toString(16).padStart(2, '0')}`;
}


export interface OverlayClusterOptions {
  readonly prefix: string;
  readonly nodes: number;
  /** Third octet of the underlay subnet 172.31.X.0/24 and of the daemons' names. */
  readonly net: number;
  readonly password?: string;
  /** Extra daemon arguments for node i (1-based). */
  readonly argsFor?: (i: number) => readonly string[];
  /** Which node each node is told about (default: node 1). */
  readonly peersFor?: (i: number, cluster: LocalCluster) => readonly string[];
}

export class OverlayCluster {
  readonly daemons = new Map<ClusterNode, NsProcess>();
  readonly gateways = new Map<ClusterNode, string>();

  private constructor(readonly cluster: LocalCluster, private readonly options: OverlayClusterOptions, private readonly state: string) {}

  /**
   * Builds the namespaces, starts the daemons and waits until every bridge has its address.
   * `onCreated` receives the cluster as soon as it exists, so that a caller can register its
   * destroy() before anything can fail.
   */
  static async start(options: OverlayClusterOptions, onCreated?: (oc: OverlayCluster) => void): Promise<OverlayCluster> {
    await sweep(options.prefix);
    const cluster = await LocalCluster.create({ prefix: options.prefix, nodes: options.nodes, underlaySubnet: `172.31.${options.net}.0/24` });
    const state = mkdtempSync(join(tmpdir(), `weft-${options.prefix}-`));
    const oc = new OverlayCluster(cluster, options, state);
    onCreated?.(oc);
    for (const node of cluster.nodes) oc.startDaemon(node);
    for (const node of cluster.nodes) {
      const expose = await waitFor(`${node.name} bridge address`, async () => {
        const r = await oc.call(node, 'GET', '/ip/weave:expose');
        return r.status === 200 ? r.body : undefined;
      }, 40_000, 200);
      oc.gateways.set(node, expose.split('/')[0]!);
    }
    return oc;
  }

  async destroy(): Promise<void> {
    await this.cluster.destroy();
    rmSync(this.state, { recursive: true, force: true });
  }

  get nodes(): ClusterNode[] {
    return this.cluster.nodes as ClusterNode[];
  }

  startDaemon(node: ClusterNode): NsProcess {
    const o = this.options;
    const first = this.nodes[0]!;
    const peers = o.peersFor ? o.peersFor(node.index, this.cluster) : node === first ? [] : [first.underlayIp];
    const proc = node.spawn([process.execPath, WEAVER, '--name', nodePeerName(o.net, node.index), '--nickname', node.name,
      '--host', node.underlayIp, '--metrics-addr', `${node.underlayIp}:6782`, '--db-prefix', join(this.state, `${node.name}-`),
      '--log-format', 'json', '--heartbeat-interval', '1', '--gossip-interval', '1', '--ipalloc-init', `consensus=${o.nodes}`,
      ...(o.argsFor ? o.argsFor(node.index) : []), ...peers], o.password !== undefined ? { env: { WEAVE_PASSWORD: o.password } } : {});
    this.daemons.set(node, proc);
    return proc;
  }

  async call(node: ClusterNode, method: string, path: string): Promise<{ status: number; body: string }> {
    const r = await node.exec([process.execPath, HTTP_CALL, method, `http://127.0.0.1:6784${path}`], { timeoutMs: 40_000 });
    const nl = r.stdout.indexOf('\n');
    return { status: Number(r.stdout.slice(0, nl)), body: r.stdout.slice(nl + 1) };
  }

  async weave(node: ClusterNode, ...args: string[]): Promise<string> {
    return (await node.exec([process.execPath, WEAVE_CLI, ...args], { timeoutMs: 20_000 })).stdout;
  }

  /** Waits until every node has `count` (default: all others) established connections (sleeve or fastdp). */
  async established(count?: (node: ClusterNode) => number, timeoutMs = 30_000): Promise<void> {
    await waitFor('connections established', async () => {
      for (const n of this.nodes) {
        const want = count ? count(n) : this.nodes.length - 1;
        const got = ((await this.weave(n, 'status', 'connections')).match(/established (encrypted +)?(sleeve|fastdp) /g) ?? []).length;
        if (got !== want) return undefined;
      }
      return true;
    }, timeoutMs, 200);
  }

  /** A pod on `node` with an address from that node's IPAM and the bridge as its gateway. */
  async addPod(node: ClusterNode, name: string, options: { readonly mac?: string } = {}): Promise<Pod> {
    const r = await this.call(node, 'POST', `/ip/${node.name}-${name}`);
    if (r.status !== 200) throw new Error(`no address for ${name}: ${r.body}`);
    return this.cluster.addPod(node, { name, ip: r.body, gateway: this.gateways.get(node)!, bridge: 'weave', mtu: 1376, ...options });
  }
}

export function podIp(p: Pod): string {
  return p.ip!.split('/')[0]!;
}
