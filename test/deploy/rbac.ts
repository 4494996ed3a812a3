// Kubernetes RBAC as the API server's authorizer decides it, for the manifest test: which requests
// of one ServiceAccount the ClusterRoles/Roles bound to it allow. Pure.

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}

export interface RoleObject {
  kind: 'ClusterRole' | 'Role';
  metadata: { name: string; namespace?: string };
  rules?: PolicyRule[];
}

export interface BindingObject {
  kind: 'ClusterRoleBinding' | 'RoleBinding';
  metadata: { name: string; namespace?: string };
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

/** One API request: `resource` may carry a subresource ('nodes/status'); no namespace = cluster scope. */
export interface ApiRequest {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

export function describeRequest(r: ApiRequest): string {
  const group = r.group === '' ? 'core' : r.group;
  return `${r.verb} ${group}/${r.resource}${r.name ? `/${r.name}` : ''}${r.namespace ? ` in ${r.namespace}` : ' (cluster)'}`;
}

function matches(list: string[] | undefined, value: string): boolean {
  return (list ?? []).some((v) => v === '*' || v === value);
}

/** A rule matches when group, resource, verb and (if the rule names any) the object's name match. */
export function ruleAllows(rule: PolicyRule, r: ApiRequest): boolean {
  if (!matches(rule.apiGroups, r.group) || !matches(rule.resources, r.resource) || !matches(rule.verbs, r.verb)) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (r.name !== undefined && names.includes(r.name));
}

/**
 * The rules that apply to `serviceAccount` (namespace/name) for a request: ClusterRoles bound by a
 * ClusterRoleBinding anywhere; for a namespaced request also Roles and ClusterRoles bound by a
 * RoleBinding in that namespace (a Role is looked up in the binding's namespace).
 */
export function rulesFor(serviceAccount: { namespace: string; name: string }, roles: RoleObject[], bindings: BindingObject[], namespace?: string): PolicyRule[] {
  const rules: PolicyRule[] = [];
  for (const b of bindings) {
    const bound = (b.subjects ?? []).some((s) => s.kind === 'ServiceAccount' && s.name === serviceAccount.name && s.namespace === serviceAccount.namespace);
    if (!bound || b.roleRef.apiGroup !== 'rbac.authorization.k8s.io') continue;
    if (b.kind === 'RoleBinding' && b.metadata.namespace !== namespace) continue;
    const role = roles.find((r) =>
      r.kind === b.roleRef.kind && r.metadata.name === b.roleRef.name &&
      (r.kind === 'ClusterRole' || r.metadata.namespace === b.metadata.namespace));
    // A ClusterRoleBinding may only name a ClusterRole.
    if (!role || (b.kind === 'ClusterRoleBinding' && role.kind !== 'ClusterRole')) continue;
    rules.push(...(role.rules ?? []));
  }
  return rules;
}

export function allows(serviceAccount: { namespace: string; name: string }, roles: RoleObject[], bindings: BindingObject[], r: ApiRequest): boolean {
  return rulesFor(serviceAccount, roles, bindings, r.namespace).some((rule) => ruleAllows(rule, r));
}

/** Every (group, resource, verb, names) a rule grants, to check that nothing unused is granted. */
export function grants(rule: PolicyRule): ApiRequest[] {
  const out: ApiRequest[] = [];
  for (const group of rule.apiGroups ?? []) {
    for (const resource of rule.resources ?? []) {
      for (const verb of rule.verbs) {
        const names = rule.resourceNames ?? [];
        if (names.length === 0) out.push({ verb, group, resource });
        else for (const name of names) out.push({ verb, group, resource, name });
      }
    }
  }
  return out;
}

const VERBS: Record<string, string> = {
  list: 'list', read: 'get', create: 'create', replace: 'update', patch: 'patch', delete: 'delete', deleteCollection: 'deletecollection',
};

/**
 * The request a method of @kubernetes/client-node's generated API classes makes, from its name:
 * `replaceNamespacedLease` → update leases; `patchNodeStatus` → patch nodes/status;
 * `listPodForAllNamespaces` → list pods. Undefined for names that are not such methods.
 */
export function requestOfClientMethod(method: string, group: string): Omit<ApiRequest, 'namespace' | 'name'> | undefined {
  const m = /^(list|read|create|replace|patch|deleteCollection|delete)(Namespaced)?([A-Z][A-Za-z]*?)(Status)?(ForAllNamespaces)?(WithHttpInfo)?$/.exec(method);
  if (!m) return undefined;
  const kind = m[3]!;
  const plural = /(s|x|ch|sh)$/.test(kind) ? `${kind}es` : /[^aeiou]y$/.test(kind) ? `${kind.slice(0, -1)}ies` : `${kind}s`;
  return { verb: VERBS[m[1]!]!, group, resource: `${plural.toLowerCase()}${m[4] ? '/status' : ''}` };
}

/** The requests an informer on an API path makes (list, then watch): '/api/v1/nodes', '/apis/g/v/namespaces/ns/leases'. */
export function requestsOfInformerPath(path: string): ApiRequest[] {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/(?:namespaces\/([^/]+)\/)?([a-z0-9]+)$/.exec(path);
  if (!m) throw new Error(`cannot read the informer path ${path}`);
  const base = { group: m[1] ?? '', resource: m[3]!, ...(m[2] ? { namespace: m[2] } : {}) };
  return [{ verb: 'list', ...base }, { verb: 'watch', ...base }];
}
