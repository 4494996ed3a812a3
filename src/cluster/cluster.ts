// The local cluster: N nodes as network namespaces on one underlay bridge, pods as namespaces
// attached to a node, all named with the cluster's prefix and all removed by destroy().
//
//   <p>-u     underlay namespace: bridge <p>-br, one veth port <p>-n<i> per node
//   <p>-n<i>  node i: <p>-eth0 (the underlay end of that veth) with an underlay address, lo up;
//             no default route, so nothing here can reach beyond the cluster's namespaces
//   <p>-n<i>-<pod>  a pod: eth0 (veth peer of <p>-v<pod> in the node), address and default route
//
// Nothing is created in the host's own namespace except the namespace names under /run/netns.
import { performance } from 'node:perf_hooks';
import { ClusterNames, validateIfName, validatePodName } from './names.js';
import { addNetns, deleteNetns, listNetns } from './netns.js';
import { NetnsHandle, type ProcessKeeper } from './netns-handle.js';
import { DEFAULT_STOP_GRACE_MS, type NsProcess } from './ns-process.js';
import { formatIpv4, parseCidr, parseIpv4, parseIpv4WithPrefix, type Cidr } from '../net/ipv4.js';

export interface LocalClusterOptions {
  /** 1-6 characters, a-z then a-z0-9; unique among clusters that may run at the same time. */
  readonly prefix: string;
  /** How many nodes; 1 or more. */
  readonly nodes: number;
  /**
   * The underlay network; node i gets the subnet's i-th address (172.31.0.1, .2, ...). Each cluster
   * has an underlay bridge of its own, so clusters may use the same subnet without meeting.
   */
  readonly underlaySubnet?: string;
  /** MTU of the underlay links; 1500 unless given. */
  readonly underlayMtu?: number;
  /** How long a process started in the cluster gets between SIGTERM and SIGKILL at destroy(). */
  readonly stopGraceMs?: number;
}

export const DEFAULT_UNDERLAY_SUBNET = '172.31.0.0/24';
export const DEFAULT_MTU = 1500;

export interface PodOptions {
  /** 1-7 characters a-z0-9, unique on its node: the pod is namespace `<p>-n<i>-<name>`. */
  readonly name: string;
  /** Address with prefix for the pod's eth0, e.g. "10.32.0.5/12"; none if absent. */
  readonly ip?: string;
  /** Default route of the pod; none if absent. */
  readonly gateway?: string;
  /** A bridge in the node namespace to enslave the host end to (e.g. "weave"); it must exist. */
  readonly bridge?: string;
  /** MTU of both ends of the veth; 1500 unless given. */
  readonly mtu?: number;
  /** Name of the host end in the node namespace; `<p>-v<name>` unless given. */
  readonly hostIfName?: string;
  /** MAC address of the pod's eth0; random unless given. */
  readonly mac?: string;
}

export interface BridgeOptions {
  /** An address with prefix for the bridge, e.g. "10.32.0.1/12". */
  readonly ip?: string;
  readonly mtu?: number;
}

export class ClusterNode extends NetnsHandle {
  constructor(
    ns: string,
    keeper: ProcessKeeper,
    /** 1-based, as in the name. */
    readonly index: number,
    /** "n1", "n2", ... */
    readonly name: string,
    /** This node's address on the underlay, e.g. "172.31.0.1". */
    readonly underlayIp: string,
    /** The same with the underlay's prefix, e.g. "172.31.0.1/24". */
    readonly underlayCidr: string,
    /** The node's underlay interface (in the node namespace). */
    readonly underlayIf: string,
  ) {
    super(ns, keeper);
  }

  /** Creates a bridge in this node, up, with an address if given (the data path makes its own `weave`). */
  async addBridge(name: string, options: BridgeOptions = {}): Promise<void> {
    validateIfName(name);
    if (options.ip !== undefined) parseIpv4WithPrefix(options.ip);
    await this.ipBatch([
      `link add ${name} type bridge`,
      // Set after creation: only then does the kernel keep it when a port with a larger MTU joins.
      ...(options.mtu === undefined ? [] : [`link set ${name} mtu ${validMtu(options.mtu)}`]),
      ...(options.ip === undefined ? [] : [`addr add ${options.ip} dev ${name}`]),
      `link set ${name} up`,
    ]);
  }
}

export class Pod extends NetnsHandle {
  constructor(
    ns: string,
    keeper: ProcessKeeper,
    readonly name: string,
    readonly node: ClusterNode,
    /** The pod's address without prefix, if it has one ("10.32.0.5"). */
    readonly ip: string | undefined,
    /** The host end of its veth in the node namespace; undefined for a bare namespace. */
    readonly hostIf: string | undefined,
  ) {
    super(ns, keeper);
  }
}

function validMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new RangeError(`invalid MTU ${mtu}: want 68-65535`);
  return mtu;
}

function validMac(mac: string): string {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new RangeError(`invalid MAC address "${mac}"`);
  return mac;
}

export class LocalCluster implements ProcessKeeper {
  readonly names: ClusterNames;
  readonly underlaySubnet: Cidr;
  readonly underlayMtu: number;
  /** The namespace holding the underlay bridge (for capturing underlay traffic, say). */
  readonly underlay: NetnsHandle;
  readonly nodes: readonly ClusterNode[];
  /** How long create() took, in milliseconds. */
  createMs = 0;
  private readonly podsByNs = new Map<string, Pod>();
  /** Pod namespaces being made or made: a second pod of the same name is refused, not raced. */
  private readonly podNames = new Set<string>();
  private readonly owned = new Set<string>();
  private readonly processes = new Set<NsProcess>();
  private readonly stopGraceMs: number;
  private destroying: Promise<void> | undefined;

  private constructor(options: LocalClusterOptions) {
    this.names = new ClusterNames(options.prefix);
    if (!Number.isInteger(options.nodes) || options.nodes < 1) throw new RangeError(`invalid node count ${options.nodes}: want 1 or more`);
    this.underlaySubnet = parseCidr(options.underlaySubnet ?? DEFAULT_UNDERLAY_SUBNET);
    // Node addresses are subnet + 1 .. subnet + N; the last address is the broadcast address.
    if (options.nodes > 2 ** (32 - this.underlaySubnet.prefixLength) - 2) {
      throw new RangeError(`${options.nodes} nodes do not fit in underlay ${options.underlaySubnet ?? DEFAULT_UNDERLAY_SUBNET}`);
    }
    this.underlayMtu = validMtu(options.underlayMtu ?? DEFAULT_MTU);
    this.stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    this.underlay = new NetnsHandle(this.names.underlayNs, this);
    this.nodes = Array.from({ length: options.nodes }, (_, i) => {
      const index = i + 1;
      const ip = formatIpv4(this.underlaySubnet.start + index);
      return new ClusterNode(this.names.nodeNs(index), this, index, this.names.nodeName(index), ip,
        `${ip}/${this.underlaySubnet.prefixLength}`, this.names.nodeUnderlayIf);
    });
  }

  /**
   * Builds the cluster. If any step fails, everything made so far is removed before the error is
   * thrown. A namespace of the same name that exists already is left alone (it is not ours) and
   * fails the creation: a crashed run's leftovers are removed with sweep(prefix).
   */
  static async create(options: LocalClusterOptions): Promise<LocalCluster> {
    const cluster = new LocalCluster(options);
    const started = performance.now();
    try {
      await cluster.build();
    } catch (err) {
      await cluster.destroy().catch(() => undefined); // the build error is the one worth reporting
      throw err;
    }
    cluster.createMs = performance.now() - started;
    return cluster;
  }

  get prefix(): string {
    return this.names.prefix;
  }

  /** Pods currently attached, in the order they were added. */
  get pods(): readonly Pod[] {
    return [...this.podsByNs.values()];
  }

  /** The namespaces this cluster created and has not deleted yet. */
  get namespaces(): readonly string[] {
    return [...this.owned].sort();
  }

  /** Processes started in the cluster and still running. */
  get runningProcesses(): readonly NsProcess[] {
    return [...this.processes];
  }

  get destroyed(): boolean {
    return this.destroying !== undefined;
  }

  /** Node by 1-based index, as in its name. */
  node(index: number): ClusterNode {
    const node = this.nodes[index - 1];
    if (!node) throw new RangeError(`no node n${index} in cluster ${this.prefix} (it has ${this.nodes.length})`);
    return node;
  }

  private async build(): Promise<void> {
    const n = this.names;
    await this.createNamespaces([n.underlayNs, ...this.nodes.map((node) => node.ns)]);
    const mtu = this.underlayMtu;
    await this.underlay.ipBatch([
      `link add ${n.underlayBridge} type bridge`,
      // Set after creation, not with `add`: only then does the bridge keep it as ports join.
      `link set ${n.underlayBridge} mtu ${mtu} up`,
      ...this.nodes.flatMap((node) => [
        // Created here with the peer end straight into the node: nothing ever sits in the host.
        `link add ${n.underlayPort(node.index)} mtu ${mtu} type veth peer name ${node.underlayIf} mtu ${mtu} netns ${node.ns}`,
        `link set ${n.underlayPort(node.index)} master ${n.underlayBridge} up`,
      ]),
    ]);
    await Promise.all(
      this.nodes.map((node) =>
        node.ipBatch([`link set lo up`, `addr add ${node.underlayCidr} dev ${node.underlayIf}`, `link set ${node.underlayIf} up`]),
      ),
    );
  }

  /** Creates namespaces in parallel; each one created is ours to delete, even if another fails. */
  private async createNamespaces(names: readonly string[]): Promise<void> {
    const results = await Promise.allSettled(
      names.map(async (ns) => {
        await addNetns(ns);
        this.owned.add(ns);
      }),
    );
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ ns: names[i], err: r.reason as unknown }] : []));
    if (failed.length > 0) {
      const existing = new Set(await listNetns());
      const clashes = failed.filter((f) => f.ns !== undefined && existing.has(f.ns)).map((f) => f.ns);
      if (clashes.length > 0) {
        throw new Error(`network namespace ${clashes.join(', ')} exists already (left by a crashed run? sweep('${this.prefix}') removes it)`);
      }
      throw failed[0]?.err instanceof Error ? failed[0].err : new Error(String(failed[0]?.err));
    }
    if (this.destroyed) throw new Error(`cluster ${this.prefix} was destroyed while being built`);
  }

  /** A namespace attached to `node` with nothing in it but lo (down): for a CNI plugin to fill. */
  async addPodNamespace(node: ClusterNode, name: string): Promise<Pod> {
    const pod = this.newPod(node, name, undefined, undefined);
    await this.createNamespaces([pod.ns]).catch(async (err: unknown) => {
      await this.forgetPodNamespace(pod);
      throw err;
    });
    this.podsByNs.set(pod.ns, pod);
    return pod;
  }

  /**
   * A pod on `node`: a namespace with a veth whose host end is in the node (on `bridge`, if
   * given) and whose other end is the pod's eth0, with the address and default route given.
   * If a step fails, the pod's namespace (and with it the veth) is removed before the error is thrown.
   */
  async addPod(node: ClusterNode, options: PodOptions): Promise<Pod> {
    const mtu = validMtu(options.mtu ?? DEFAULT_MTU);
    const hostIf = validateIfName(options.hostIfName ?? this.names.podHostIf(validatePodName(options.name)));
    const address = options.ip === undefined ? undefined : parseIpv4WithPrefix(options.ip);
    if (options.gateway !== undefined) parseIpv4(options.gateway);
    if (options.bridge !== undefined) validateIfName(options.bridge);
    const mac = options.mac === undefined ? '' : ` address ${validMac(options.mac)}`;
    const pod = this.newPod(node, options.name, address === undefined ? undefined : formatIpv4(address.address), hostIf);
    try {
      await this.createNamespaces([pod.ns]);
      await node.ipBatch([
        `link add ${hostIf} mtu ${mtu} type veth peer name eth0 mtu ${mtu}${mac} netns ${pod.ns}`,
        ...(options.bridge === undefined ? [] : [`link set ${hostIf} master ${options.bridge}`]),
        `link set ${hostIf} up`,
      ]);
      await pod.ipBatch([
        'link set lo up',
        ...(options.ip === undefined ? [] : [`addr add ${options.ip} dev eth0`]),
        'link set eth0 up',
        ...(options.gateway === undefined ? [] : [`route add default via ${options.gateway} dev eth0`]),
      ]);
    } catch (err) {
      await this.forgetPodNamespace(pod);
      throw err;
    }
    this.podsByNs.set(pod.ns, pod);
    return pod;
  }

  /** Removes a pod: stops its processes, deletes its namespace (and so its veth). */
  async removePod(pod: Pod): Promise<void> {
    await Promise.all([...this.processes].filter((p) => p.ns === pod.ns).map((p) => p.stop(this.stopGraceMs)));
    this.podsByNs.delete(pod.ns);
    await this.forgetPodNamespace(pod);
  }

  /**
   * Deletes a pod's namespace after its veths. A deleted namespace is freed by the kernel in the
   * background, so the host ends of its veths would linger in the node for a moment, in the way of
   * a pod re-created under the same name; deleting a veth end removes its peer at once.
   */
  private async forgetPodNamespace(pod: Pod): Promise<void> {
    if (this.owned.has(pod.ns)) {
      const veths = (await pod.links().catch(() => [])).filter((l) => l.kind === 'veth');
      await pod.ipBatch(veths.map((l) => `link delete ${l.ifname}`)).catch(() => undefined);
      await this.forgetNamespace(pod.ns);
    }
    this.podNames.delete(pod.ns);
  }

  private newPod(node: ClusterNode, name: string, ip: string | undefined, hostIf: string | undefined): Pod {
    if (this.destroyed) throw new Error(`cluster ${this.prefix} is destroyed`);
    if (this.nodes[node.index - 1] !== node) throw new RangeError(`node ${node.ns} is not a node of cluster ${this.prefix}`);
    const ns = this.names.podNs(node.index, validatePodName(name));
    if (this.podNames.has(ns)) throw new RangeError(`pod ${name} exists already on ${node.name}`);
    this.podNames.add(ns);
    return new Pod(ns, this, name, node, ip, hostIf);
  }

  private async forgetNamespace(ns: string): Promise<void> {
    if (!this.owned.has(ns)) return;
    await deleteNetns([ns]);
    this.owned.delete(ns);
  }

  adopt(proc: NsProcess): void {
    if (this.destroyed) {
      proc.kill('SIGKILL');
      throw new Error(`cluster ${this.prefix} is destroyed: not starting ${proc.argv.join(' ')}`);
    }
    this.processes.add(proc);
    void proc.exited.then(() => this.processes.delete(proc));
  }

  /**
   * Removes everything the cluster made: stops its processes (SIGTERM, then SIGKILL after the
   * grace), kills anything else still inside its namespaces, deletes the namespaces (which takes
   * their veths with them). Idempotent; safe after a failed create(); rejects if something of
   * ours is still listed afterwards.
   */
  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    await Promise.all([...this.processes].map((p) => p.stop(this.stopGraceMs)));
    const ours = [...this.owned];
    await deleteNetns(ours);
    const listed = new Set(await listNetns());
    const left = ours.filter((ns) => listed.has(ns));
    if (left.length > 0) throw new Error(`cluster ${this.prefix}: namespaces still present after destroy: ${left.join(', ')}`);
    // Only what was deleted: a pod being added concurrently removes its own namespace when it
    // finds the cluster destroyed, and must still find it owned to do so.
    for (const ns of ours) this.owned.delete(ns);
    this.podsByNs.clear();
    this.podNames.clear();
  }
}
