// The daemon's view of the Kubernetes API, through the official client (@kubernetes/client-node):
// the node list and its watch, the Node condition, and the registry in the lock Lease. A thin
// shell: the decisions live in node-peers.ts and peer-registry.ts.
import {
  ApiException, CoordinationV1Api, CoreV1Api, KubeConfig, PatchStrategy, makeInformer, setHeaderOptions,
  type V1Lease, type V1Node,
} from '@kubernetes/client-node';
import { formatRegistry, parseRegistry, PEERS_ANNOTATION, type PeerRegistry } from './peer-registry.js';
import { CONDITION_MESSAGE, CONDITION_REASON, LOCK_NAME, LOCK_NAMESPACE } from './names.js';
import type { Logger } from '../log/logger.js';

/** The registry as read, with the version a write must name. */
export interface RegistryRead {
  readonly registry: PeerRegistry;
  /** The Lease's resourceVersion; undefined when the Lease does not exist yet. */
  readonly version: string | undefined;
}

/** Where the reclaimer keeps the registry (the Lease here; a map in the unit tests). */
export interface RegistryStore {
  read(): Promise<RegistryRead>;
  /** Writes if the object is still at `version`; false when another writer was first (409). */
  write(registry: PeerRegistry, version: string | undefined, writer: string): Promise<boolean>;
}

export class KubeApi implements RegistryStore {
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;

  constructor(readonly config: KubeConfig, private readonly namespace = LOCK_NAMESPACE, private readonly leaseName = LOCK_NAME) {
    this.core = config.makeApiClient(CoreV1Api);
    this.coordination = config.makeApiClient(CoordinationV1Api);
  }

  /** In a pod: the service account; elsewhere KUBECONFIG or ~/.kube/config. */
  static fromEnvironment(): KubeApi {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    if (kc.getCurrentCluster() === null) throw new Error('no Kubernetes API configured (not in a pod, and no KUBECONFIG)');
    return new KubeApi(kc);
  }

  get server(): string {
    return this.config.getCurrentCluster()?.server ?? '?';
  }

  async listNodes(): Promise<V1Node[]> {
    return (await this.core.listNode()).items;
  }

  /** Node condition NetworkUnavailable=False (strategic merge: the other conditions stay). */
  async setNetworkAvailable(nodeName: string, now = new Date()): Promise<void> {
    const condition = { type: 'NetworkUnavailable', status: 'False', reason: CONDITION_REASON, message: CONDITION_MESSAGE, lastTransitionTime: now, lastHeartbeatTime: now };
    await this.core.patchNodeStatus({ name: nodeName, body: { status: { conditions: [condition] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
  }

  async read(): Promise<RegistryRead> {
    let lease: V1Lease;
    try {
      lease = await this.coordination.readNamespacedLease({ name: this.leaseName, namespace: this.namespace });
    } catch (err) {
      if (statusOf(err) === 404) return { registry: [], version: undefined };
      throw err;
    }
    return { registry: parseRegistry(lease.metadata?.annotations?.[PEERS_ANNOTATION]), version: lease.metadata?.resourceVersion };
  }

  async write(registry: PeerRegistry, version: string | undefined, writer: string): Promise<boolean> {
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name: this.leaseName, namespace: this.namespace, annotations: { [PEERS_ANNOTATION]: formatRegistry(registry) }, ...(version !== undefined ? { resourceVersion: version } : {}) },
      // The last writer, for `kubectl get lease`; the registry is in the annotation.
      spec: { holderIdentity: writer },
    };
    try {
      if (version === undefined) await this.coordination.createNamespacedLease({ namespace: this.namespace, body });
      else await this.coordination.replaceNamespacedLease({ name: this.leaseName, namespace: this.namespace, body });
      return true;
    } catch (err) {
      // 409: stale resourceVersion, or created meanwhile; 404: deleted meanwhile. Re-read either way.
      if (statusOf(err) === 409 || statusOf(err) === 404) return false;
      throw err;
    }
  }

  /**
   * Follows the node list: `onChange` gets every node after each change, `onDelete` each deleted
   * node. The informer lists, then watches from that resourceVersion; after an error it starts
   * again a few seconds later. Returns a stop function.
   */
  watchNodes(onChange: (nodes: V1Node[]) => void, onDelete: (node: V1Node) => void, log: Logger): () => Promise<void> {
    const informer = makeInformer<V1Node>(this.config, '/api/v1/nodes', () => this.core.listNode());
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const changed = (): void => onChange([...informer.list()]);
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', (node) => {
      changed();
      onDelete(node);
    });
    const begin = (): void => {
      if (stopped) return;
      informer.start().catch((err: unknown) => {
        log.warn({ err: messageOf(err) }, `cannot list nodes: ${messageOf(err)}; retrying`);
        timer = setTimeout(begin, 5000);
      });
    };
    informer.on('error', (err) => {
      if (stopped) return;
      log.warn({ err: messageOf(err) }, `node watch ended: ${messageOf(err)}; restarting`);
      timer = setTimeout(begin, 5000);
    });
    begin();
    return async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await informer.stop();
    };
  }
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

export function messageOf(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: string } | string | undefined;
    const message = typeof body === 'object' && body !== null && typeof body.message === 'string' ? body.message : typeof body === 'string' ? body : '';
    return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
  }
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}
