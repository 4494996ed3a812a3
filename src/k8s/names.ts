// Names the Kubernetes side shares with the DaemonSet manifest and the daemon (DESIGN §2).

/** The lock object: Lease kube-system/weave-net. */
export const LOCK_NAMESPACE = 'kube-system';
export const LOCK_NAME = 'weave-net';
/** The bridge, whose routes the range check ignores: dataplane's BRIDGE_NAME, repeated so that the
 * pure checks need not load the data path module (and koffi) to know one word. */
export const BRIDGE = 'weave';
/** The Node condition set once the network is up, as Weave set it. */
export const CONDITION_REASON = 'WeaveIsUp';
export const CONDITION_MESSAGE = 'Weave pod has set this';
