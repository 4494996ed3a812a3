// A local cluster running the real data path: a weaver daemon with bridge, TAP and sleeve in
// every node namespace, started as the DaemonSet would start it, and pods attached to the bridges
// with addresses from IPAM. Used by the network tests, the benchmarks and `npm run demo`;
// destroy() removes every namespace, process and state file it made.
import { fileURLToPath } from 'node:url';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { LocalCluster, type ClusterNode, type Pod } from './cluster.js';
import type { NsProcess } from './ns-process.js';
import { sweep } from './netns.js';
import { kubeconfigFor } from './fake-kube-api.js';
import { waitFor } from './wait-for.js';
import { runCniPlugin, WEAVE_NET_EXECUTABLE } from './cni-exec.js';

const WEAVER = fileURLToPath(new URL('../daemon/main.js', import.meta.url));
const WEAVE_CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const HTTP_CALL = fileURLToPath(new URL('./http-call.js', import.meta.url));
const LAUNCH = fileURLToPath(new URL('../k8s/launch.js', import.meta.url));
const FAKE_KUBE_API = fileURLToPath(new URL('./fake-kube-api-main.js', import.meta.url));
/** Where the fake API server listens in node 1's namespace when the daemons start through the entrypoint. */
const KUBE_API_PORT = 6443;

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
  /**
   * Start each daemon as the DaemonSet does: through the weave-kube entrypoint with the DaemonSet's
   * environment, against a fake API server in node 1's namespace that lists every node (peers and
   * the consensus count then come from the API, not from peersFor).
   */
  readonly kube?: boolean;
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
    if (options.kube) await oc.startKubeApi();
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

  /**
   * The unix socket node `node`'s daemon serves the CNI plugin on (`--socket`): one per node,
   * in the cluster's state directory, so that nodes sharing this machine do not collide. The
   * socket is a file, so it is reachable from any namespace.
   */
  socketPath(node: ClusterNode): string {
    return join(this.state, node.name, 'weave.sock');
  }

  /** Path and file-name prefix of node `node`'s persisted state (`--db-prefix`). */
  dbPrefix(node: ClusterNode): string {
    return join(this.state, `${node.name}-`);
  }

  /** The fake API server in node 1's namespace, on its underlay address; a kubeconfig for it in the state directory. */
  private async startKubeApi(): Promise<void> {
    const first = this.nodes[0]!;
    const proc = first.spawn([process.execPath, FAKE_KUBE_API, `${first.underlayIp}:${KUBE_API_PORT}`, ...this.nodes.map((n) => `${n.name}=${n.underlayIp}`)]);
    const [, url] = await proc.waitForOutput(/listening on (\S+)/, 20_000);
    writeFileSync(this.kubeconfigPath, kubeconfigFor(url!));
  }

  get kubeconfigPath(): string {
    return join(this.state, 'kubeconfig');
  }

  /** The entrypoint with the DaemonSet's environment (plus what a namespace-node needs: name, address, state). */
  private startThroughEntrypoint(node: ClusterNode): NsProcess {
    const o = this.options;
    const env: Record<string, string> = {
      HOSTNAME: node.name, KUBECONFIG: this.kubeconfigPath, IPALLOC_RANGE: '10.32.0.0/12', WEAVE_MTU: '1376', CONN_LIMIT: '200',
      WEAVE_METRICS_ADDR: `${node.underlayIp}:6782`, CNI_CONF_DIR: join(this.state, `${node.name}-net.d`),
      WEAVE_SOCKET: this.socketPath(node),
      EXTRA_ARGS: ['--name', nodePeerName(o.net, node.index), '--host', node.underlayIp, '--db-prefix', this.dbPrefix(node),
        '--log-format', 'json', '--heartbeat-interval', '1', '--gossip-interval', '1', ...(o.argsFor ? o.argsFor(node.index) : [])].join(' '),
      ...(o.password !== undefined ? { WEAVE_PASSWORD: o.password } : {}),
    };
    const proc = node.spawn([process.execPath, LAUNCH], { env });
    this.daemons.set(node, proc);
    return proc;
  }

  startDaemon(node: ClusterNode): NsProcess {
    const o = this.options;
    mkdirSync(join(this.state, node.name), { recursive: true, mode: 0o700 });
    if (o.kube) return this.startThroughEntrypoint(node);
    const first = this.nodes[0]!;
    const peers = o.peersFor ? o.peersFor(node.index, this.cluster) : node === first ? [] : [first.underlayIp];
    const proc = node.spawn([process.execPath, WEAVER, '--name', nodePeerName(o.net, node.index), '--nickname', node.name,
      '--host', node.underlayIp, '--metrics-addr', `${node.underlayIp}:6782`, '--db-prefix', this.dbPrefix(node),
      '--socket', this.socketPath(node),
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

  /**
   * A pod attached the way a container runtime attaches one: a bare namespace, then the
   * `weave-net` executable run in the node with CNI_COMMAND=ADD and a network config naming this
   * node's socket. The daemon makes the link and picks the address; the CNI result says which.
   */
  async addCniPod(node: ClusterNode, name: string): Promise<CniPod> {
    const pod = await this.cluster.addPodNamespace(node, name);
    // A runtime's container ids are 64 hex digits; this one is stable for the pod's namespace.
    const containerId = createHash('sha256').update(pod.ns).digest('hex');
    const r = await runCniPlugin(node.ns,
      { CNI_COMMAND: 'ADD', CNI_CONTAINERID: containerId, CNI_NETNS: `/run/netns/${pod.ns}`, CNI_IFNAME: 'eth0', CNI_PATH: dirname(WEAVE_NET_EXECUTABLE) },
      JSON.stringify({ cniVersion: '1.0.0', name: 'weave', type: 'weave-net', socket: this.socketPath(node) }));
    if (r.code !== 0) throw new Error(`CNI ADD of pod ${name} on ${node.name} failed: ${r.stdout.trim() || r.stderr.trim()}`);
    const result = JSON.parse(r.stdout) as { ips: { address: string }[] };
    return { pod, containerId, address: result.ips[0]!.address.split('/')[0]!, cidr: result.ips[0]!.address };
  }

  /** A pod on `node` with an address from that node's IPAM and the bridge as its gateway. */
  async addPod(node: ClusterNode, name: string, options: { readonly mac?: string } = {}): Promise<Pod> {
    const r = await this.call(node, 'POST', `/ip/${node.name}-${name}`);
    if (r.status !== 200) throw new Error(`no address for ${name}: ${r.body}`);
    return this.cluster.addPod(node, { name, ip: r.body, gateway: this.gateways.get(node)!, bridge: 'weave', mtu: 1376, ...options });
  }
}

/** A pod attached through the CNI plugin: its namespace, container id and address. */
export interface CniPod {
  readonly pod: Pod;
  readonly containerId: string;
  /** Without the prefix, e.g. "10.32.0.5". */
  readonly address: string;
  /** With the range's prefix, e.g. "10.32.0.5/12". */
  readonly cidr: string;
}

export function podIp(p: Pod): string {
  return p.ip!.split('/')[0]!;
}
