// A small Kubernetes API server of the project's own, on 127.0.0.1, for the tests and the demo:
// no API server can be installed here. It serves only what the daemon's entrypoint and kubectl
// use, with the semantics of the real one:
//
//   discovery      GET /version, /api, /api/v1, /apis, /apis/coordination.k8s.io[/v1]
//   nodes          list (fieldSelector metadata.name=), get, delete, watch (?watch=1,
//                  resourceVersion: replay from there, else ADDED for what exists), PATCH .../status
//                  (strategic merge, merge patch)
//   leases         kube-system (any namespace): list, get, create (409 AlreadyExists), update (409
//                  Conflict on a stale metadata.resourceVersion), delete
//   pods           list (cluster-wide and per namespace)
//   namespaces     get, list: the four of a new cluster (kubectl reads one to explain a 404)
//
// One resourceVersion counter for everything, raised by every write (as etcd's revision); watch
// events are newline-separated JSON objects on a chunked response. Errors are v1 Status objects.
// Nodes are added and removed by the test through addNode()/deleteNode() (a kubelet's job).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

/** A Kubernetes object as JSON. */
export type KubeObject = Record<string, unknown> & { metadata: ObjectMeta };
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

type Resource = 'nodes' | 'leases' | 'pods';
type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface WatchEvent {
  readonly rv: number;
  readonly resource: Resource;
  readonly type: EventType;
  readonly object: KubeObject;
}

interface Watcher {
  readonly resource: Resource;
  readonly namespace?: string;
  readonly name?: string;
  readonly res: ServerResponse;
}

export interface NodeSpec {
  readonly internalIP?: string;
  readonly externalIP?: string;
  readonly labels?: Record<string, string>;
}

class ApiError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }
}

const GROUP = 'coordination.k8s.io';
const SERVER_VERSION = { major: '1', minor: '36', gitVersion: 'v1.36.0-weft-fake', gitCommit: '', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.24', compiler: 'gc', platform: 'linux/amd64' };

/** The resources this server knows, as discovery lists them. */
const CORE_RESOURCES = [
  { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs: ['delete', 'get', 'list', 'patch', 'watch'], shortNames: ['no'] },
  { name: 'nodes/status', singularName: '', namespaced: false, kind: 'Node', verbs: ['get', 'patch'] },
  { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get', 'list'], shortNames: ['ns'] },
  { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'] },
];
const LEASE_RESOURCES = [
  { name: 'leases', singularName: 'lease', namespaced: true, kind: 'Lease', verbs: ['create', 'delete', 'get', 'list', 'update', 'watch'] },
];

const NAMESPACES = ['default', 'kube-node-lease', 'kube-public', 'kube-system'];

export class FakeKubeApi {
  private rv = 1;
  private readonly started = timestamp();
  private readonly namespaceUids = new Map<string, string>();
  private readonly nodes = new Map<string, KubeObject>();
  private readonly leases = new Map<string, KubeObject>(); // key namespace/name
  private readonly pods = new Map<string, KubeObject>();   // key namespace/name
  private readonly history: WatchEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  /** Writes refused with 409 Conflict (a stale resourceVersion): tests show that races happened. */
  conflicts = 0;
  /** Every request, "METHOD path", for tests that check what a client asked. */
  readonly requests: string[] = [];

  private constructor(private readonly server: Server, readonly url: string) {}

  /** Starts listening on host:port (port 0: any free port). */
  static async start(host = '127.0.0.1', port = 0): Promise<FakeKubeApi> {
    let api: FakeKubeApi | undefined;
    const server = createServer((req, res) => api!.handle(req, res));
    // Watches stay open: keep-alive must not hold close() up.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    api = new FakeKubeApi(server, `http://${host}:${addr.port}`);
    return api;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** A kubeconfig that points a client at this server. */
  kubeconfig(): string {
    return kubeconfigFor(this.url);
  }

  get resourceVersion(): number {
    return this.rv;
  }

  // ---- the kubelet's side: nodes come and go ----

  addNode(name: string, spec: NodeSpec = {}): KubeObject {
    if (this.nodes.has(name)) throw new Error(`node ${name} exists`);
    const now = timestamp();
    const addresses: { type: string; address: string }[] = [];
    if (spec.internalIP) addresses.push({ type: 'InternalIP', address: spec.internalIP });
    if (spec.externalIP) addresses.push({ type: 'ExternalIP', address: spec.externalIP });
    addresses.push({ type: 'Hostname', address: name });
    const node: KubeObject = {
      apiVersion: 'v1', kind: 'Node',
      metadata: { name, uid: randomUUID(), creationTimestamp: now, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...spec.labels } },
      spec: {},
      status: {
        addresses,
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }],
      },
    };
    return this.store('nodes', this.nodes, name, node, 'ADDED');
  }

  deleteNode(name: string): boolean {
    const node = this.nodes.get(name);
    if (!node) return false;
    this.remove('nodes', this.nodes, name, node);
    return true;
  }

  node(name: string): KubeObject | undefined {
    return this.nodes.get(name);
  }

  nodeList(): KubeObject[] {
    return [...this.nodes.values()];
  }

  lease(namespace: string, name: string): KubeObject | undefined {
    return this.leases.get(`${namespace}/${name}`);
  }

  addPod(namespace: string, name: string, nodeName: string, podIP?: string): KubeObject {
    const pod: KubeObject = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, namespace, uid: randomUUID(), creationTimestamp: timestamp() },
      spec: { nodeName, containers: [{ name: 'main', image: 'busybox' }] },
      status: { phase: 'Running', ...(podIP ? { podIP, podIPs: [{ ip: podIP }] } : {}) },
    };
    return this.store('pods', this.pods, `${namespace}/${name}`, pod, 'ADDED');
  }

  /** Every object this server holds, for tests that validate them against the OpenAPI document. */
  allObjects(): KubeObject[] {
    return [...this.nodes.values(), ...this.leases.values(), ...this.pods.values()];
  }

  private namespaceUid(name: string): string {
    if (!this.namespaceUids.has(name)) this.namespaceUids.set(name, randomUUID());
    return this.namespaceUids.get(name)!;
  }

  // ---- storage: every write raises the resourceVersion and is an event ----

  private store(resource: Resource, map: Map<string, KubeObject>, key: string, object: KubeObject, type: EventType): KubeObject {
    const rv = ++this.rv;
    const stored = clone(object);
    stored.metadata.resourceVersion = String(rv);
    map.set(key, stored);
    this.publish({ rv, resource, type, object: stored });
    return clone(stored);
  }

  private remove(resource: Resource, map: Map<string, KubeObject>, key: string, object: KubeObject): KubeObject {
    const rv = ++this.rv;
    map.delete(key);
    const gone = clone(object);
    gone.metadata.resourceVersion = String(rv);
    this.publish({ rv, resource, type: 'DELETED', object: gone });
    return gone;
  }

  private publish(event: WatchEvent): void {
    this.history.push(event);
    for (const w of this.watchers) {
      if (matchesWatch(w, event)) writeEvent(w.res, event.type, event.object);
    }
  }

  // ---- HTTP ----

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      this.requests.push(`${method} ${url.pathname}${url.search}`);
      try {
        this.route(method, url, Buffer.concat(chunks).toString('utf8'), req, res);
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', (err as Error).message);
        sendJson(res, e.code, {
          kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: e.reason,
          ...(e.details ? { details: e.details } : {}), code: e.code,
        });
      }
    });
  }

  private route(method: string, url: URL, body: string, req: IncomingMessage, res: ServerResponse): void {
    const path = url.pathname.replace(/\/+$/, '');
    const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
    const q = url.searchParams;

    if (method === 'GET') {
      switch (path) {
        case '/version': return sendJson(res, 200, SERVER_VERSION);
        case '/api': return sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: new URL(this.url).host }] });
        case '/api/v1': return sendJson(res, 200, { kind: 'APIResourceList', groupVersion: 'v1', resources: CORE_RESOURCES });
        case '/apis': return sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [leaseGroup()] });
        case `/apis/${GROUP}`: return sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...leaseGroup() });
        case `/apis/${GROUP}/v1`: return sendJson(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${GROUP}/v1`, resources: LEASE_RESOURCES });
      }
    }

    // /api/v1/nodes[/name[/status]]
    if (parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'nodes') {
      const [, , , name, sub, ...extra] = parts;
      if (extra.length > 0 || (sub !== undefined && sub !== 'status')) throw notFound(path);
      if (name === undefined) {
        if (method !== 'GET') throw notAllowed(method, path);
        return this.listOrWatch(res, req, q, 'nodes', 'NodeList', 'v1', [...this.nodes.values()]);
      }
      const node = this.nodes.get(name);
      if (method === 'GET') return sendJson(res, 200, node ?? throwIt(notFoundObject('nodes', '', name)));
      if (method === 'DELETE' && sub === undefined) {
        if (!node) throw notFoundObject('nodes', '', name);
        return sendJson(res, 200, this.remove('nodes', this.nodes, name, node));
      }
      if (method === 'PATCH' && sub === 'status') {
        if (!node) throw notFoundObject('nodes', '', name);
        const patched = applyPatch(node, body, req.headers['content-type'] ?? '');
        // The status subresource changes status only.
        const next = { ...clone(node), status: patched.status };
        return sendJson(res, 200, this.store('nodes', this.nodes, name, next, 'MODIFIED'));
      }
      throw notAllowed(method, path);
    }

    // /api/v1/namespaces[/<ns>]: the fixed namespaces of a new cluster (kubectl reads them to explain a 404)
    if (path === '/api/v1/namespaces' || (parts[2] === 'namespaces' && parts.length === 4)) {
      if (method !== 'GET') throw notAllowed(method, path);
      const all = NAMESPACES.map((n) => ({
        apiVersion: 'v1', kind: 'Namespace', metadata: { name: n, uid: this.namespaceUid(n), resourceVersion: '1', creationTimestamp: this.started, labels: { 'kubernetes.io/metadata.name': n } },
        spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' },
      }));
      if (parts.length === 3) return sendJson(res, 200, { kind: 'NamespaceList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items: all });
      return sendJson(res, 200, all.find((n) => n.metadata.name === parts[3]) ?? throwIt(notFoundObject('namespaces', '', parts[3]!)));
    }

    // /api/v1/pods, /api/v1/namespaces/<ns>/pods
    if (parts[0] === 'api' && parts[1] === 'v1' && (path === '/api/v1/pods' || (parts[2] === 'namespaces' && parts[4] === 'pods' && parts.length === 5))) {
      if (method !== 'GET') throw notAllowed(method, path);
      const ns = parts[3];
      const items = [...this.pods.values()].filter((p) => ns === undefined || p.metadata.namespace === ns);
      return this.listOrWatch(res, req, q, 'pods', 'PodList', 'v1', items, ns);
    }

    // /apis/coordination.k8s.io/v1/[namespaces/<ns>/]leases[/name]
    if (parts[0] === 'apis' && parts[1] === GROUP && parts[2] === 'v1') {
      if (parts[3] === 'leases' && parts.length === 4) {
        if (method !== 'GET') throw notAllowed(method, path);
        return this.listOrWatch(res, req, q, 'leases', 'LeaseList', `${GROUP}/v1`, [...this.leases.values()]);
      }
      if (parts[3] === 'namespaces' && parts[5] === 'leases' && parts.length <= 7) {
        const ns = parts[4]!;
        const name = parts[6];
        return this.leaseRoute(method, ns, name, body, req, res, q);
      }
    }
    throw notFound(path);
  }

  private leaseRoute(method: string, ns: string, name: string | undefined, body: string, req: IncomingMessage, res: ServerResponse, q: URLSearchParams): void {
    if (name === undefined) {
      if (method === 'GET') {
        const items = [...this.leases.values()].filter((l) => l.metadata.namespace === ns);
        return this.listOrWatch(res, req, q, 'leases', 'LeaseList', `${GROUP}/v1`, items, ns);
      }
      if (method !== 'POST') throw notAllowed(method, `leases in ${ns}`);
      const obj = parseBody(body, 'Lease');
      const want = obj.metadata.name;
      if (typeof want !== 'string' || want === '') throw new ApiError(422, 'Invalid', 'Lease.coordination.k8s.io "" is invalid: metadata.name: Required value: name is required');
      if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== ns) {
        throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      }
      if (this.leases.has(`${ns}/${want}`)) {
        throw new ApiError(409, 'AlreadyExists', `leases.${GROUP} "${want}" already exists`, { name: want, group: GROUP, kind: 'leases' });
      }
      const created: KubeObject = {
        apiVersion: `${GROUP}/v1`, kind: 'Lease', spec: {}, ...obj,
        metadata: { ...obj.metadata, name: want, namespace: ns, uid: randomUUID(), creationTimestamp: timestamp() },
      };
      delete created.metadata.resourceVersion;
      return sendJson(res, 201, this.store('leases', this.leases, `${ns}/${want}`, created, 'ADDED'));
    }
    const key = `${ns}/${name}`;
    const current = this.leases.get(key);
    if (method === 'GET') return sendJson(res, 200, current ?? throwIt(notFoundObject('leases', GROUP, name)));
    if (method === 'DELETE') {
      if (!current) throw notFoundObject('leases', GROUP, name);
      this.remove('leases', this.leases, key, current);
      return sendJson(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: GROUP, kind: 'leases', uid: current.metadata.uid } });
    }
    if (method === 'PUT') {
      const obj = parseBody(body, 'Lease');
      if (obj.metadata.name !== name) throw new ApiError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
      if (!current) throw notFoundObject('leases', GROUP, name);
      const sent = obj.metadata.resourceVersion;
      if (sent !== undefined && sent !== '' && sent !== current.metadata.resourceVersion) {
        this.conflicts++;
        throw new ApiError(409, 'Conflict',
          `Operation cannot be fulfilled on leases.${GROUP} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          { name, group: GROUP, kind: 'leases' });
      }
      const updated: KubeObject = {
        ...obj, apiVersion: `${GROUP}/v1`, kind: 'Lease',
        // Identity and creation time are the server's, whatever the client sent.
        metadata: { ...obj.metadata, namespace: ns, uid: current.metadata.uid!, creationTimestamp: current.metadata.creationTimestamp! },
      };
      return sendJson(res, 200, this.store('leases', this.leases, key, updated, 'MODIFIED'));
    }
    throw notAllowed(method, `leases/${name}`);
  }

  /** A list (optionally filtered by fieldSelector metadata.name=), or with ?watch a stream of events. */
  private listOrWatch(res: ServerResponse, req: IncomingMessage, q: URLSearchParams, resource: Resource, listKind: string, apiVersion: string, items: KubeObject[], namespace?: string): void {
    const name = fieldSelectorName(q.get('fieldSelector'));
    const selected = items.filter((o) => name === undefined || o.metadata.name === name);
    const watch = q.get('watch');
    if (watch !== '1' && watch !== 'true') {
      return sendJson(res, 200, { kind: listKind, apiVersion, metadata: { resourceVersion: String(this.rv) }, items: selected });
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache' });
    res.flushHeaders();
    const watcher: Watcher = { resource, res, ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}) };
    const from = q.get('resourceVersion');
    if (from === null || from === '' || from === '0') {
      for (const o of selected) writeEvent(res, 'ADDED', o);
    } else {
      const since = Number(from);
      if (!Number.isInteger(since)) {
        writeEvent(res, 'ERROR', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `invalid resourceVersion "${from}"`, reason: 'BadRequest', code: 400 } as unknown as KubeObject);
        res.end();
        return;
      }
      for (const e of this.history) if (e.rv > since && matchesWatch(watcher, e)) writeEvent(res, e.type, e.object);
    }
    this.watchers.add(watcher);
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    const done = (): void => {
      if (timer) clearTimeout(timer);
      this.watchers.delete(watcher);
    };
    req.socket.once('close', done);
    res.once('finish', done);
  }
}

/**
 * A kubeconfig (YAML is a superset of JSON) for an API server at `url`. Plain HTTP on loopback:
 * @kubernetes/client-node accepts an http:// server only with insecure-skip-tls-verify.
 */
export function kubeconfigFor(url: string): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'fake',
    clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'fake', user: {} }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
  }, null, 2);
}

function leaseGroup(): Record<string, unknown> {
  const v = { groupVersion: `${GROUP}/v1`, version: 'v1' };
  return { name: GROUP, versions: [v], preferredVersion: v };
}

function matchesWatch(w: Watcher, e: WatchEvent): boolean {
  return w.resource === e.resource
    && (w.namespace === undefined || e.object.metadata.namespace === w.namespace)
    && (w.name === undefined || e.object.metadata.name === w.name);
}

function writeEvent(res: ServerResponse, type: string, object: KubeObject): void {
  res.write(`${JSON.stringify({ type, object })}\n`);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** `metadata.name=x` (also `metadata.name==x`); other selectors are refused as the real server does for unknown fields. */
function fieldSelectorName(selector: string | null): string | undefined {
  if (selector === null || selector === '') return undefined;
  const m = /^metadata\.name==?(.*)$/.exec(selector);
  if (!m) throw new ApiError(400, 'BadRequest', `unable to parse requirement: field label not supported: ${selector.split('=')[0]}`);
  return m[1];
}

function parseBody(body: string, kind: string): KubeObject {
  let obj: unknown;
  try {
    obj = JSON.parse(body);
  } catch (err) {
    throw new ApiError(400, 'BadRequest', `the body of the request was in an unknown format: ${(err as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || typeof (obj as KubeObject).metadata !== 'object') {
    throw new ApiError(400, 'BadRequest', `${kind}: metadata is required`);
  }
  return obj as KubeObject;
}

/** Strategic merge (lists of conditions and addresses merge by `type`) or JSON merge patch (RFC 7386). */
function applyPatch(target: KubeObject, body: string, contentType: string): KubeObject {
  const type = contentType.split(';')[0]!.trim();
  if (type !== 'application/strategic-merge-patch+json' && type !== 'application/merge-patch+json') {
    throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got "${contentType}")`);
  }
  let patch: unknown;
  try {
    patch = JSON.parse(body);
  } catch (err) {
    throw new ApiError(400, 'BadRequest', `error decoding patch: ${(err as Error).message}`);
  }
  return mergePatch(clone(target), patch, type === 'application/strategic-merge-patch+json', '') as KubeObject;
}

/** Paths whose lists a strategic merge merges by key (patchMergeKey in the Node schema). */
const MERGE_KEYS: Record<string, string> = { '.status.conditions': 'type', '.status.addresses': 'type' };

function mergePatch(target: unknown, patch: unknown, strategic: boolean, path: string): unknown {
  if (strategic && Array.isArray(patch) && MERGE_KEYS[path] !== undefined) {
    const key = MERGE_KEYS[path]!;
    const out = Array.isArray(target) ? [...target] as Record<string, unknown>[] : [];
    for (const item of patch as Record<string, unknown>[]) {
      const i = out.findIndex((o) => o[key] === item[key]);
      if (i >= 0) out[i] = mergePatch(out[i], item, strategic, `${path}[]`) as Record<string, unknown>;
      else out.push(item);
    }
    return out;
  }
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v, strategic, `${path}.${k}`);
  }
  return out;
}

function notFound(path: string): ApiError {
  return new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`);
}

function notFoundObject(resource: string, group: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${resource}${group ? `.${group}` : ''} "${name}" not found`, { name, ...(group ? { group } : {}), kind: resource });
}

function notAllowed(method: string, what: string): ApiError {
  return new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method} ${what})`);
}

function throwIt(e: ApiError): never {
  throw e;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
