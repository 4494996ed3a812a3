// A local cluster running the real data path: a weaver daemon with bridge, TAP and sleeve in
// every node namespace, and pods attached to the bridges with addresses from IPAM. For the
// network tests; everything is removed by the test's teardown.
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, type ClusterNode, type Pod } from '../../src/cluster/cluster.js';
import type { NsProcess } from '../../src/cluster/ns-process.js';
import { sweep } from '../../src/cluster/netns.js';
import { WEAVER, WEAVE_CLI, waitFor, nameForIp } from './weaver.js';

const HTTP_CALL = fileURLToPath(new URL('./http-call.js', import.meta.url));

interface Teardown {
  teardown(fn: () => unknown): void;
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

  static async start(t: Teardown, options: OverlayClusterOptions): Promise<OverlayCluster> {
    await sweep(options.prefix);
    const cluster = await LocalCluster.create({ prefix: options.prefix, nodes: options.nodes, underlaySubnet: `172.31.${options.net}.0/24` });
    const state = mkdtempSync(join(tmpdir(), `weft-${options.prefix}-`));
    const oc = new OverlayCluster(cluster, options, state);
    t.teardown(async () => {
      await cluster.destroy();
      rmSync(state, { recursive: true, force: true });
    });
    for (const node of cluster.nodes) oc.startDaemon(node);
    for (const node of cluster.nodes) {
      const expose = await waitFor(`${node.name} bridge address`, async () => {
        const r = await oc.call(node, 'GET', '/ip/weave:expose');
        return r.status === 200 ? r.body : undefined;
      }, 40_000);
      oc.gateways.set(node, expose.split('/')[0]!);
    }
    return oc;
  }

  get nodes(): ClusterNode[] {
    return this.cluster.nodes as ClusterNode[];
  }

  startDaemon(node: ClusterNode): NsProcess {
    const o = this.options;
    const first = this.nodes[0]!;
    const peers = o.peersFor ? o.peersFor(node.index, this.cluster) : node === first ? [] : [first.underlayIp];
    const proc = node.spawn([process.execPath, WEAVER, '--name', nameForIp(`127.0.${o.net}.${node.index}`), '--nickname', node.name,
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

  /** Waits until every node has `count` (default: all others) established sleeve connections. */
  async established(count?: (node: ClusterNode) => number, timeoutMs = 30_000): Promise<void> {
    await waitFor('sleeve established', async () => {
      for (const n of this.nodes) {
        const want = count ? count(n) : this.nodes.length - 1;
        const got = ((await this.weave(n, 'status', 'connections')).match(/established (encrypted +)?sleeve /g) ?? []).length;
        if (got !== want) return undefined;
      }
      return true;
    }, timeoutMs);
  }

  /** A pod on `node` with an address from that node's IPAM and the bridge as its gateway. */
  async addPod(node: ClusterNode, name: string): Promise<Pod> {
    const r = await this.call(node, 'POST', `/ip/${node.name}-${name}`);
    if (r.status !== 200) throw new Error(`no address for ${name}: ${r.body}`);
    return this.cluster.addPod(node, { name, ip: r.body, gateway: this.gateways.get(node)!, bridge: 'weave', mtu: 1376 });
  }
}

export function podIp(p: Pod): string {
  return p.ip!.split('/')[0]!;
}
