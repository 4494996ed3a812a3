// The manifests in deploy/: every YAML document of every file is a valid Kubernetes object by the
// real OpenAPI document (unknown fields are errors), and the weave-net DaemonSet has what a node's
// network needs (DESIGN §2, issue 7): every taint tolerated, host network, privileged, the env of
// Weave with its defaults (and understood by the daemon's own parser), the host paths, the init
// step, the readiness probe, and RBAC that allows exactly the API calls the daemon makes.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { validateObject } from '../lib/k8s-openapi.js';
import { repoRoot } from '../lib/repo-root.js';
import { parseConfig } from '../../src/daemon/config.js';
import { formatHostPort } from '../../src/net/address.js';
import { formatCidr } from '../../src/net/ipv4.js';
import { LOCK_NAME, LOCK_NAMESPACE } from '../../src/k8s/names.js';
import { readLaunchEnv, weaverArgs } from '../../src/k8s/launch-plan.js';
import { DEFAULT_CNI_SOCKET } from '../../src/api/cni-protocol.js';
import {
  allows, describeRequest, grants, requestOfClientMethod, requestsOfInformerPath, rulesFor,
  type ApiRequest, type BindingObject, type RoleObject,
} from './rbac.js';

const root = repoRoot();
const deployDir = join(root, 'deploy');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

interface Doc { file: string; index: number; obj: Record<string, unknown> }

function loadDeploy(): Doc[] {
  const docs: Doc[] = [];
  for (const file of readdirSync(deployDir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    const parsed = parseAllDocuments(readFileSync(join(deployDir, file), 'utf8'));
    if (!Array.isArray(parsed)) throw new Error(`${file}: not a YAML stream`);
    parsed.forEach((doc, index) => {
      const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
      if (problems.length > 0) throw new Error(`${file} document ${index}: ${problems.join('; ')}`);
      docs.push({ file, index, obj: doc.toJS() as Record<string, unknown> });
    });
  }
  return docs;
}

const docs = loadDeploy();
const manifestFile = 'weave-daemonset-k8s.yaml';
const manifestText = readFileSync(join(deployDir, manifestFile), 'utf8');
const manifest = docs.filter((d) => d.file === manifestFile).map((d) => d.obj);

// Only the fields the checks read; the validator has already checked the shapes.
interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, Record<string, unknown>> }[];
  readinessProbe?: { httpGet?: { host?: string; port: number | string; path?: string } };
  securityContext?: { privileged?: boolean };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }[];
}
interface PodSpec {
  serviceAccountName: string;
  hostNetwork?: boolean;
  priorityClassName?: string;
  tolerations?: { key?: string; operator?: string; effect?: string }[];
  initContainers?: Container[];
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
}

function find(kind: string, name: string): Record<string, unknown> {
  const obj = manifest.find((o) => o.kind === kind && (o.metadata as { name: string }).name === name);
  if (!obj) throw new Error(`no ${kind} ${name} in ${manifestFile}`);
  return obj;
}

const daemonSet = find('DaemonSet', 'weave-net') as { metadata: { namespace: string }; spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };
const pod = daemonSet.spec.template.spec;
const weave = pod.containers.find((c) => c.name === 'weave');

t.test('every document in deploy/ is a valid Kubernetes object, strictly', async (t) => {
  t.ok(docs.length >= 6, `${docs.length} documents`);
  for (const d of docs) {
    const kind = `${d.file}#${d.index} ${String(d.obj.kind)} ${String((d.obj.metadata as { name?: string } | undefined)?.name)}`;
    t.same(validateObject(d.obj), [], kind);
    t.ok((d.obj.metadata as { name?: string } | undefined)?.name, `${kind}: has a name`);
  }
  const kinds = manifest.map((o) => `${String(o.kind)}/${(o.metadata as { name: string }).name}`);
  t.same(kinds, [
    'ServiceAccount/weave-net', 'ClusterRole/weave-net', 'ClusterRoleBinding/weave-net',
    'Role/weave-net', 'RoleBinding/weave-net', 'DaemonSet/weave-net',
  ], 'the objects, in the order kubectl applies them (the ServiceAccount before the pods that use it)');
  for (const o of manifest) {
    const meta = o.metadata as { namespace?: string };
    if (!['ClusterRole', 'ClusterRoleBinding'].includes(String(o.kind))) t.equal(meta.namespace, 'kube-system', `${String(o.kind)} in kube-system`);
  }
});

t.test('the DaemonSet runs one privileged host-network weave per node, whatever its taints', async (t) => {
  t.equal(daemonSet.metadata.namespace, 'kube-system');
  t.same(daemonSet.spec.selector.matchLabels, { name: 'weave-net' });
  t.equal(daemonSet.spec.template.metadata.labels.name, 'weave-net', 'the template carries the selector label');
  t.equal(pod.hostNetwork, true);
  t.equal(pod.priorityClassName, 'system-node-critical');
  t.equal(pod.serviceAccountName, 'weave-net');
  // A toleration without key and effect, operator Exists, tolerates every taint (NoSchedule,
  // NoExecute, PreferNoSchedule, any key): control-plane and not-ready nodes included.
  t.ok(pod.tolerations?.some((tol) => tol.operator === 'Exists' && tol.key === undefined && tol.effect === undefined), 'tolerates every taint');
  t.ok(weave, 'container weave');
  t.equal(weave?.securityContext?.privileged, true);
  t.same(weave?.command, ['weave-kube'], 'the entrypoint');
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    t.equal(c.image, `weft/weave-kube:${version}`, `${c.name}: the image of this version`);
  }
});

t.test('env: the names of DESIGN §2 with Weave defaults, and the daemon accepts them', async (t) => {
  const env = new Map((weave?.env ?? []).map((e) => [e.name, e]));
  t.same(env.get('HOSTNAME')?.valueFrom, { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } }, 'HOSTNAME is the node name');
  const defaults: Record<string, string> = {
    IPALLOC_RANGE: '10.32.0.0/12',
    WEAVE_MTU: '1376',
    CONN_LIMIT: '200',
    NO_MASQ_LOCAL: '1',
    WEAVE_HTTP_ADDR: '127.0.0.1:6784',
    WEAVE_METRICS_ADDR: '0.0.0.0:6782',
    DB_PREFIX: '/weavedb/weave-net',
  };
  for (const [name, value] of Object.entries(defaults)) t.equal(env.get(name)?.value, value, `${name}=${value}`);
  t.same(env.get('WEAVE_PASSWORD')?.valueFrom, { secretKeyRef: { name: 'weave-passwd', key: 'weave-passwd', optional: true } },
    'WEAVE_PASSWORD from an optional Secret: pods start without it');
  // Unset by default in Weave, so commented out here with an example, for the operator to find.
  for (const name of ['IPALLOC_INIT', 'KUBE_PEERS', 'WEAVE_NO_FASTDP', 'EXTRA_ARGS']) {
    t.notOk(env.has(name), `${name} unset`);
    t.match(manifestText, new RegExp(`^\\s*# - name: ${name}\\b`, 'm'), `${name} documented in a comment`);
  }
  const design = ['IPALLOC_RANGE', 'IPALLOC_INIT', 'WEAVE_MTU', 'WEAVE_PASSWORD', 'CONN_LIMIT', 'KUBE_PEERS', 'NO_MASQ_LOCAL',
    'WEAVE_NO_FASTDP', 'EXTRA_ARGS', 'WEAVE_HTTP_ADDR', 'WEAVE_METRICS_ADDR', 'HOSTNAME'];
  t.same(design.filter((n) => !env.has(n) && !new RegExp(`# - name: ${n}\\b`).test(manifestText)), [], 'every DESIGN §2 variable is set or documented');

  const plain = Object.fromEntries([...env.values()].filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  const config = parseConfig([], plain);
  t.equal(formatCidr(config.ipallocRange), '10.32.0.0/12');
  t.equal(config.mtu, 1376);
  t.equal(config.connLimit, 200);
  t.equal(formatHostPort(config.httpAddr), '127.0.0.1:6784');
  t.equal(config.metricsAddr && formatHostPort(config.metricsAddr), '0.0.0.0:6782');
});

t.test('readiness: GET /status on the daemon HTTP API', async (t) => {
  const probe = weave?.readinessProbe?.httpGet;
  t.same(probe && { host: probe.host, port: probe.port, path: probe.path }, { host: '127.0.0.1', port: 6784, path: '/status' });
  const httpAddr = weave?.env?.find((e) => e.name === 'WEAVE_HTTP_ADDR')?.value;
  t.equal(`${probe?.host}:${probe?.port}`, httpAddr, 'the probe asks the address the daemon listens on');
});

t.test('host paths: state, CNI directories, xtables lock, modules, machine id, the CNI socket, the pods\' namespaces', async (t) => {
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v.hostPath]));
  const mountsOf = (c: Container | undefined): Map<string, { host: string | undefined; type: string | undefined; readOnly: boolean }> =>
    new Map((c?.volumeMounts ?? []).map((m) => [m.mountPath, { host: volumes.get(m.name)?.path, type: volumes.get(m.name)?.type, readOnly: m.readOnly === true }]));
  const used = new Set([...(pod.initContainers ?? []), ...pod.containers].flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  t.same([...volumes.keys()].filter((v) => !used.has(v)), [], 'no unused volume');
  t.same([...used].filter((v) => !volumes.has(v)), [], 'every mount names a volume');
  const main = mountsOf(weave);
  t.same(main.get('/weavedb'), { host: '/var/lib/weave', type: 'DirectoryOrCreate', readOnly: false }, 'state survives the pod (DB_PREFIX /weavedb/weave-net)');
  t.same(main.get('/host/etc/cni/net.d'), { host: '/etc/cni/net.d', type: 'DirectoryOrCreate', readOnly: false }, 'the conflist is written from here');
  t.same(main.get('/run/weave'), { host: '/run/weave', type: 'DirectoryOrCreate', readOnly: false }, 'the CNI socket is where the plugin on the host looks');
  t.same(main.get('/run/xtables.lock'), { host: '/run/xtables.lock', type: 'FileOrCreate', readOnly: false }, 'iptables shares the host lock');
  t.same(main.get('/lib/modules'), { host: '/lib/modules', type: 'Directory', readOnly: true });
  t.same(main.get('/etc/machine-id'), { host: '/etc/machine-id', type: 'File', readOnly: true }, 'the peer name comes from the host');
  t.same(main.get('/run/netns'), { host: '/run/netns', type: 'DirectoryOrCreate', readOnly: false }, 'the pods\' namespaces, by the path the runtime gives (CNI_NETNS)');
  t.equal(weave?.volumeMounts?.find((m) => m.mountPath === '/run/netns')?.mountPropagation, 'HostToContainer',
    'namespaces the runtime makes after the container started are seen in it');
  t.equal(weave?.env?.find((e) => e.name === 'DB_PREFIX')?.value?.startsWith('/weavedb/'), true, 'DB_PREFIX is inside the state mount');

  // The entrypoint, given this env, puts state, conflist and socket where these mounts lead.
  const plain = Object.fromEntries((weave?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
  const settings = readLaunchEnv({ ...plain, HOSTNAME: 'node-1' });
  const hostOf = (containerPath: string): string | undefined => {
    const [mountPath, m] = [...main].filter(([p]) => containerPath === p || containerPath.startsWith(`${p}/`)).sort((a, b) => b[0].length - a[0].length)[0] ?? [];
    return mountPath === undefined || m?.host === undefined ? undefined : m.host + containerPath.slice(mountPath.length);
  };
  t.equal(hostOf(`${settings.dbPrefix}data.json`), '/var/lib/weave/weave-netdata.json', 'state on the host');
  t.equal(hostOf(settings.cniConfDir), '/etc/cni/net.d', 'the conflist lands where kubelet reads it');
  t.equal(hostOf(DEFAULT_CNI_SOCKET), DEFAULT_CNI_SOCKET, 'the socket is at the path the plugin on the host dials');
  // ...and the daemon accepts the command line the entrypoint makes of it.
  const argv = weaverArgs(settings, 'consensus=3', ['192.168.1.12', '192.168.1.13'], 'nft');
  const daemon = parseConfig(argv, {});
  t.equal(daemon.dbPrefix, '/weavedb/weave-net');
  t.same(daemon.peers, ['192.168.1.12:6783', '192.168.1.13:6783']);

  const init = pod.initContainers?.find((c) => c.name === 'weave-init');
  t.ok(init, 'init container weave-init');
  const binDir = [...mountsOf(init)].find(([, m]) => m.host === '/opt/cni/bin')?.[0];
  t.ok(binDir, 'the init container mounts the host /opt/cni/bin');
  t.same(init?.command, ['weave', 'setup-cni', '--only', 'binary', '--bin-dir', binDir], 'installs the plugin binary only; the conflist comes after readiness');
  t.equal(init?.securityContext?.privileged, true);
});

// The API calls the daemon makes (src/k8s/kube-api.ts), as RBAC requests:
//   list + watch nodes             peers, and targets that follow the node list (informer)
//   get nodes                      one Node (kept from Weave's role; cheap and read-only)
//   patch nodes/status             the NetworkUnavailable=False condition
//   list pods                      address GC: release allocations of pods that are gone
//   get + update Lease weave-net   the peer registry and reclaim lock (kube-system)
//   create leases                  the first peer creates the Lease
// The table below is this list; the test also reads src/k8s for client calls and informer paths,
// so a call added there without RBAC (or without a row here) fails this test.
const expectedCalls: ApiRequest[] = [
  { verb: 'list', group: '', resource: 'nodes' },
  { verb: 'watch', group: '', resource: 'nodes' },
  { verb: 'get', group: '', resource: 'nodes' },
  { verb: 'patch', group: '', resource: 'nodes/status' },
  { verb: 'list', group: '', resource: 'pods' },
  { verb: 'get', group: 'coordination.k8s.io', resource: 'leases', namespace: LOCK_NAMESPACE, name: LOCK_NAME },
  { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: LOCK_NAMESPACE, name: LOCK_NAME },
  { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: LOCK_NAMESPACE },
];

/** Client calls found in src/k8s: methods of the generated API classes, and informer/watch paths. */
function callsInSource(): ApiRequest[] {
  const dir = join(root, 'src', 'k8s');
  const apis: [string, object][] = [['', CoreV1Api.prototype], ['coordination.k8s.io', CoordinationV1Api.prototype]];
  const calls: ApiRequest[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const [, method] of text.matchAll(/\.(\w+)\(/g)) {
      const api = apis.find(([, proto]) => Object.getOwnPropertyNames(proto).includes(method!));
      const request = api && requestOfClientMethod(method!, api[0]);
      if (!request) continue;
      // Namespaced calls of the daemon are on the lock; named ones name it.
      const namespaced = method!.includes('Namespaced');
      const named = /^(read|replace|patch|delete)/.test(method!) && request.resource === 'leases';
      calls.push({ ...request, ...(namespaced ? { namespace: LOCK_NAMESPACE } : {}), ...(named ? { name: LOCK_NAME } : {}) });
    }
    for (const [, path] of text.matchAll(/(?:makeInformer(?:<[^>]*>)?\(\s*[\w.]+\s*,|\.watch\()\s*'([^']+)'/g)) {
      calls.push(...requestsOfInformerPath(path!));
    }
  }
  return calls;
}

t.test('RBAC allows every API call the daemon makes, and nothing else', async (t) => {
  const roles = manifest.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role') as unknown as RoleObject[];
  const bindings = manifest.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding') as unknown as BindingObject[];
  const sa = { namespace: daemonSet.metadata.namespace, name: pod.serviceAccountName };
  const found = callsInSource();
  t.ok(found.length >= 5, `${found.length} calls found in src/k8s: ${found.map(describeRequest).join(', ')}`);
  const key = (r: ApiRequest): string => describeRequest(r);
  const expectedKeys = new Set(expectedCalls.map(key));
  t.same(found.filter((r) => !expectedKeys.has(key(r))).map(describeRequest), [], 'every call in src/k8s is in the table above');
  for (const r of [...expectedCalls, ...found]) t.ok(allows(sa, roles, bindings, r), `allowed: ${describeRequest(r)}`);

  // Least privilege: each grant is used by a call in the table.
  const granted = [undefined, LOCK_NAMESPACE].flatMap((ns) => rulesFor(sa, roles, bindings, ns)).flatMap(grants);
  const used = (g: ApiRequest): boolean => expectedCalls.some((c) => c.verb === g.verb && c.group === g.group && c.resource === g.resource && (g.name === undefined || c.name === g.name));
  t.same(granted.filter((g) => !used(g)).map(describeRequest), [], 'no grant without a call');
  const denied: ApiRequest[] = [
    { verb: 'update', group: '', resource: 'nodes', name: 'n1' },
    { verb: 'delete', group: '', resource: 'nodes', name: 'n1' },
    { verb: 'get', group: '', resource: 'secrets', namespace: LOCK_NAMESPACE, name: 'weave-passwd' },
    { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: LOCK_NAMESPACE, name: 'kube-scheduler' },
    { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'default', name: LOCK_NAME },
    { verb: 'delete', group: 'coordination.k8s.io', resource: 'leases', namespace: LOCK_NAMESPACE, name: LOCK_NAME },
  ];
  for (const r of denied) t.notOk(allows(sa, roles, bindings, r), `denied: ${describeRequest(r)}`);
  t.notOk(allows({ namespace: 'default', name: 'weave-net' }, roles, bindings, expectedCalls[0]!), 'bound to the kube-system ServiceAccount only');
});

t.test('the RBAC evaluator reads client methods and paths as the API server would see them', async (t) => {
  t.same(requestOfClientMethod('replaceNamespacedLease', 'coordination.k8s.io'), { verb: 'update', group: 'coordination.k8s.io', resource: 'leases' });
  t.same(requestOfClientMethod('patchNodeStatus', ''), { verb: 'patch', group: '', resource: 'nodes/status' });
  t.same(requestOfClientMethod('listPodForAllNamespaces', ''), { verb: 'list', group: '', resource: 'pods' });
  t.same(requestOfClientMethod('readNamespacedConfigMap', ''), { verb: 'get', group: '', resource: 'configmaps' });
  t.same(requestOfClientMethod('listNamespacedEndpointSlice', 'discovery.k8s.io')?.resource, 'endpointslices');
  t.equal(requestOfClientMethod('makeApiClient', ''), undefined);
  t.same(requestsOfInformerPath('/api/v1/nodes').map(describeRequest), ['list core/nodes (cluster)', 'watch core/nodes (cluster)']);
  t.same(requestsOfInformerPath('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases').map(describeRequest),
    ['list coordination.k8s.io/leases in kube-system', 'watch coordination.k8s.io/leases in kube-system']);
});
