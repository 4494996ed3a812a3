// Names of everything a local cluster creates, pure. Every namespace and every link carries the
// cluster's prefix, so that parallel test files (each with its own prefix) never clash and a
// crashed run's leftovers can be found by prefix alone. Link names are limited by the kernel to
// 15 characters (IFNAMSIZ - 1), which is why the prefix is short and pod names shorter still.

/** The kernel's limit on an interface name (IFNAMSIZ 16, including the terminating NUL). */
export const MAX_IFNAME_LENGTH = 15;

const PREFIX = /^[a-z][a-z0-9]{0,5}$/;
const POD_NAME = /^[a-z0-9]{1,7}$/;
// What the kernel refuses in an interface name, plus what `ip` would read as a keyword or option.
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** Throws unless `prefix` is 1-6 characters, a lower-case letter then letters or digits. */
export function validatePrefix(prefix: string): string {
  if (!PREFIX.test(prefix)) {
    throw new RangeError(`invalid cluster prefix "${prefix}": want 1-6 characters, a-z then a-z or 0-9 (e.g. "wt3")`);
  }
  return prefix;
}

/** Throws unless `name` is a usable pod name: 1-7 characters a-z or 0-9. */
export function validatePodName(name: string): string {
  if (!POD_NAME.test(name)) {
    throw new RangeError(`invalid pod name "${name}": want 1-7 characters a-z or 0-9 (e.g. "p1")`);
  }
  return name;
}

/** Throws unless `name` is a valid interface name of at most 15 characters. */
export function validateIfName(name: string): string {
  if (!IFNAME.test(name)) {
    throw new RangeError(
      `invalid interface name "${name}": want 1-${MAX_IFNAME_LENGTH} characters, letters, digits, "_", "." or "-"`,
    );
  }
  return name;
}

/** The names of one cluster instance. Node indexes start at 1, as in `n1`. */
export class ClusterNames {
  constructor(readonly prefix: string) {
    validatePrefix(prefix);
  }

  /** The namespace that holds the underlay bridge. */
  get underlayNs(): string {
    return `${this.prefix}-u`;
  }

  /** The underlay bridge (in the underlay namespace). */
  get underlayBridge(): string {
    return `${this.prefix}-br`;
  }

  /** The node's interface on the underlay, inside the node namespace (the node's "NIC"). */
  get nodeUnderlayIf(): string {
    return `${this.prefix}-eth0`;
  }

  nodeName(index: number): string {
    return `n${index}`;
  }

  nodeNs(index: number): string {
    return `${this.prefix}-n${index}`;
  }

  /** The underlay bridge's port towards node `index` (in the underlay namespace). */
  underlayPort(index: number): string {
    return `${this.prefix}-n${index}`;
  }

  podNs(nodeIndex: number, pod: string): string {
    return `${this.nodeNs(nodeIndex)}-${pod}`;
  }

  /** The host end of a pod's veth, in the node namespace. */
  podHostIf(pod: string): string {
    return `${this.prefix}-v${pod}`;
  }

  /** Whether a namespace name belongs to clusters with this prefix (and not to "wt30" when ours is "wt3"). */
  owns(namespace: string): boolean {
    return ownedByPrefix(this.prefix, namespace);
  }
}

/** Whether `namespace` was named by a cluster with `prefix`: the prefix, then "-" or nothing. */
export function ownedByPrefix(prefix: string, namespace: string): boolean {
  return namespace === prefix || namespace.startsWith(`${prefix}-`);
}
