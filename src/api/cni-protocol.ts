// The contract between the `weave-net` CNI plugin (a thin client, src/cni/) and the daemon that
// does the work (it allocates the address and makes the links). HTTP/1.1 with JSON bodies over
// the daemon's unix socket (`--socket`, default /run/weave/weave.sock; the network config's
// `"socket"` key points the plugin at it). Types only: both sides import this file (it lives in
// api/ because the layers below cni/ may not import from it).
//
//   POST /cni/add    CniAddRequest    → 200 CniAddResponse
//   POST /cni/del    CniDelRequest    → 200 {}            (idempotent; unknown container is fine)
//   POST /cni/check  CniCheckRequest  → 200 {}            (or an error naming what is wrong)
//   POST /cni/gc     CniGcRequest     → 200 CniGcResponse
//   GET  /cni/status                  → 200 {} when ADD can succeed, else 503 with a CniErrorBody
//   POST /cni/exec   CniExecRequest   → 200, the body is the plugin's stdout (see below)
//
// Any non-200 answer carries a CniErrorBody whose code the plugin passes on to the runtime.
//
// /cni/exec is the raw relay the executable (src/cni/native/weave-net.c) uses: it forwards the
// CNI_* environment and stdin as they are, the daemon runs the whole plugin logic (src/cni/plugin.ts)
// and answers with exactly what to print (body, with a Content-Length), the exit status
// (CNI_EXIT_HEADER) and a line for stderr (CNI_STDERR_HEADER, percent-encoded). The other routes
// are what that logic calls, in process.

/** Where the daemon listens for the plugin unless told otherwise. */
export const DEFAULT_CNI_SOCKET = '/run/weave/weave.sock';

/** The raw relay's route and headers (the C executable is built with these values). */
export const CNI_EXEC_PATH = '/cni/exec';
export const CNI_EXIT_HEADER = 'Weave-Cni-Exit';
export const CNI_STDERR_HEADER = 'Weave-Cni-Stderr';

/** What the executable relays: the CNI_* variables that were set, and stdin as text. */
export interface CniExecRequest {
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
}

/** What the executable prints and exits with. */
export interface CniExecOutcome {
  readonly stdout: string;
  readonly exitCode: number;
  /** A line for stderr (the runtime logs it), beside the JSON on stdout. */
  readonly stderr?: string;
}

/** Runs one relayed invocation (the daemon wires src/cni/relay.ts in). */
export type CniRelay = (req: CniExecRequest) => Promise<CniExecOutcome>;

/**
 * How long the executable waits for the daemon's answer to each command (then: code 11). ADD
 * covers IPAM's own 30 s wait for space.
 */
export const CNI_TIMEOUTS_MS = { ADD: 45_000, DEL: 20_000, CHECK: 20_000, GC: 30_000, STATUS: 10_000 } as const;

export const PENDING_RELEASE_DIR_NAME = 'cni-pending-del';

/**
 * Releases the plugin could not hand to the daemon (it was down) wait here, beside the socket, one
 * JSON file per attachment (`<container id>:<ifname>.json`, or the SHA-256 of `id\0ifname` when
 * that is over 200 bytes): a CniExecRequest of the DEL as the executable would have relayed it,
 * or, left by the Node.js plugin of earlier versions, a CniDelRequest. The daemon replays them
 * when it starts.
 */
export function pendingReleaseDir(socketPath: string): string {
  const slash = socketPath.lastIndexOf('/');
  return `${slash <= 0 ? '/' : socketPath.slice(0, slash)}/${PENDING_RELEASE_DIR_NAME}`;
}

/** An attachment is identified as CNI identifies it: container id and interface name. */
export interface CniAttachmentKey {
  readonly containerId: string;
  readonly ifName: string;
}

export interface CniAddRequest extends CniAttachmentKey {
  /** Path of the pod's network namespace (CNI_NETNS). */
  readonly netns: string;
  /** From CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID) when the runtime gives them. */
  readonly pod?: { readonly namespace?: string; readonly name?: string; readonly uid?: string };
  /** The network config's `mtu`, when it overrides the daemon's overlay MTU. */
  readonly mtu?: number;
  /** The network config's `hairpinMode` (default true, as Weave). */
  readonly hairpin?: boolean;
}

export interface CniAddResponse {
  /** Host side of the veth pair, on the bridge: `vethwepl<first 7 of the container id>`. */
  readonly hostInterface: { readonly name: string; readonly mac: string };
  /** Pod side, in its namespace. */
  readonly interface: { readonly name: string; readonly mac: string; readonly sandbox: string };
  /** The pod's address with the range's prefix, e.g. `10.32.0.5/12`. */
  readonly address: string;
  /** The bridge's own address (weave:expose), the pod's default gateway. */
  readonly gateway: string;
  readonly routes: readonly { readonly dst: string; readonly gw?: string }[];
  readonly mtu: number;
}

export interface CniDelRequest extends CniAttachmentKey {
  /** Empty or absent when the runtime no longer has the namespace. */
  readonly netns?: string;
}

export interface CniCheckRequest extends CniAttachmentKey {
  readonly netns: string;
  /** The address of the previous result (prevResult), if the runtime sent one. */
  readonly address?: string;
}

export interface CniGcRequest {
  /** cni.dev/valid-attachments: every attachment the runtime still has. */
  readonly valid: readonly CniAttachmentKey[];
}

export interface CniGcResponse {
  /** Attachments released by this GC. */
  readonly released: readonly CniAttachmentKey[];
}

/** CNI error codes the plugin and daemon use (spec §"Error"). */
export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidNetworkConfig: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidEnvironment: 7,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  limitedConnectivity: 51,
  /** First of the plugin-specific codes (100+). */
  internal: 100,
} as const;

export interface CniErrorBody {
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
}

/** One attached pod as `weave ps` shows it (`<id> <mac> <cidr>`). */
export interface Attachment {
  readonly containerId: string;
  readonly ifName: string;
  readonly mac: string;
  readonly cidr: string;
}
