// The strict OpenAPI validator (test/lib/k8s-openapi.ts): each kind of mistake is caught with the
// field path named, and known-good objects of the kinds weft uses pass.
import t from 'tap';
import { validateAs, validateList, validateObject, validateWatchEvent } from '../lib/k8s-openapi.js';

/** A Node as a kubelet registers it (trimmed), with the fields the daemon reads. */
function node(name: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      uid: '4f1c7a2e-8d8b-4c36-9a57-0c1e1c4d2f10',
      resourceVersion: '1021',
      creationTimestamp: '2026-11-21T13:00:00Z',
      labels: { 'kubernetes.io/hostname': name },
    },
    spec: { podCIDR: '10.244.1.0/24' },
    status: {
      addresses: [
        { type: 'InternalIP', address: '192.168.1.11' },
        { type: 'Hostname', address: name },
      ],
      conditions: [
        { type: 'Ready', status: 'True', lastHeartbeatTime: '2026-11-21T13:00:00Z', lastTransitionTime: '2026-11-21T13:00:00Z', reason: 'KubeletReady', message: 'kubelet is posting ready status' },
      ],
      capacity: { cpu: '2', memory: '4025404Ki', pods: '110' },
      allocatable: { cpu: 2, memory: '3.5Gi' },
    },
  };
}

t.test('accepts known-good objects', async (t) => {
  t.same(validateObject(node('n1')), []);
  t.same(
    validateObject({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'weave-net', namespace: 'kube-system' },
      spec: { holderIdentity: 'n1', leaseDurationSeconds: 15, acquireTime: '2026-11-21T13:00:00.000000Z', renewTime: '2026-11-21T13:00:05.123456Z' },
    }),
    [],
  );
  t.same(
    validateObject({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'default', creationTimestamp: null },
      spec: {
        containers: [
          {
            name: 'c',
            image: 'busybox',
            ports: [{ containerPort: 80 }, { containerPort: 80, protocol: 'UDP' }],
            readinessProbe: { httpGet: { host: '127.0.0.1', path: '/status', port: 6784 } },
            livenessProbe: { httpGet: { path: '/healthz', port: 'http' } },
            resources: { requests: { cpu: '50m', memory: '100Mi' } },
          },
        ],
      },
    }),
    [],
    'int-or-string ports as number and name, Quantity strings, a null the API server ignores',
  );
});

t.test('rejects an unknown field, naming its path', async (t) => {
  const n = node('n1');
  (n.spec as Record<string, unknown>).podCidr = '10.244.1.0/24';
  t.same(validateObject(n), ['spec.podCidr: unknown field']);
  const top = { ...node('n1'), extra: 1 };
  t.same(validateObject(top), ['extra: unknown field']);
  const deep = node('n1');
  ((deep.status as { addresses: Record<string, unknown>[] }).addresses[1] as Record<string, unknown>).ip = 'x';
  t.same(validateObject(deep), ['status.addresses[1].ip: unknown field']);
});

t.test('rejects a wrong type', async (t) => {
  const n = node('n1');
  (n.spec as Record<string, unknown>).unschedulable = 'yes';
  t.same(validateObject(n), ['spec.unschedulable: must be boolean']);
  const lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'weave-net' },
    spec: { leaseDurationSeconds: 2 ** 31 },
  };
  t.same(validateObject(lease), ['spec.leaseDurationSeconds: must match format "int32"']);
  const badTime = node('n1');
  (badTime.metadata as Record<string, unknown>).creationTimestamp = 'yesterday';
  t.same(validateObject(badTime), ['metadata.creationTimestamp: must match format "date-time"']);
  const badQuantity = node('n1');
  (badQuantity.status as Record<string, Record<string, unknown>>).capacity!.memory = '4 GB';
  t.match(validateObject(badQuantity).join('\n'), /^status\.capacity\.memory: /);
  const badPort = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'c', readinessProbe: { httpGet: { port: true } } }] },
  };
  t.match(validateObject(badPort).join('\n'), /spec\.containers\[0\]\.readinessProbe\.httpGet\.port: must be integer/);
});

t.test('rejects a missing required field', async (t) => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ image: 'busybox' }] } };
  t.same(validateObject(pod), ['spec.containers[0].name: required field missing']);
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'weave-net' },
    subjects: [{ kind: 'ServiceAccount', name: 'weave-net', namespace: 'kube-system' }],
  };
  t.same(validateObject(binding), ['roleRef: required field missing']);
  t.same(validateObject({ kind: 'Node' }), ['apiVersion: required field missing']);
  t.same(validateObject({ apiVersion: 'v1', kind: 'Nod' }), ['(root): no kind Nod in v1 in the OpenAPI document']);
  t.same(validateObject({ apiVersion: 'apps/v1', kind: 'Node' }), ['(root): no kind Node in apps/v1 in the OpenAPI document']);
  const required = { ...node('n1'), spec: { taints: [{ key: 'k' }] } };
  t.same(validateObject(required), ['spec.taints[0].effect: required field missing']);
});

t.test('rejects duplicate keys in a list the schema declares a map', async (t) => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'c', env: [{ name: 'A', value: '1' }, { name: 'B' }, { name: 'A', value: '2' }] }] },
  };
  t.same(validateObject(pod), ['spec.containers[0].env: item 2 duplicates item 0 (same name)']);
});

t.test('lists: typed lists and the untyped v1 List', async (t) => {
  const nodes = { apiVersion: 'v1', kind: 'NodeList', metadata: { resourceVersion: '7' }, items: [node('a'), node('b')] };
  t.same(validateList(nodes), []);
  const bad = { ...nodes, items: [node('a'), { ...node('b'), spec: { podCIDRs: '10.0.0.0/8' } }] };
  t.same(validateList(bad), ['items[1].spec.podCIDRs: must be array']);
  t.same(validateList({ apiVersion: 'v1', kind: 'NodeList', metadata: {} }), ['items: required field missing']);
  const mixed = { apiVersion: 'v1', kind: 'List', metadata: {}, items: [node('a'), { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'x' }, secret: [] }] };
  t.same(validateList(mixed), ['items[1].secret: unknown field']);
  t.same(validateList(node('a')), ['kind: Node is not a list kind']);
});

t.test('watch events and named definitions', async (t) => {
  t.same(validateWatchEvent({ type: 'ADDED', object: node('a') }), []);
  t.same(validateWatchEvent({ type: 'BOOKMARK', object: { apiVersion: 'v1', kind: 'Node', metadata: { resourceVersion: '12' } } }), []);
  t.same(validateWatchEvent({ type: 'CHANGED', object: { ...node('a'), x: 1 } }), ['type: not a watch event type: CHANGED', 'object.x: unknown field']);
  const status = { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Failure', message: 'conflict', reason: 'Conflict', code: 409 };
  t.same(validateObject(status), []);
  t.same(validateAs('io.k8s.api.core.v1.NodeStatus', { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'WeaveIsUp' }] }), []);
  t.same(validateAs('io.k8s.api.core.v1.NodeStatus', { conditions: [{ type: 'NetworkUnavailable' }] }), ['conditions[0].status: required field missing']);
});
