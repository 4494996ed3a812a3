// The runtime's half of a CNI invocation: the CNI_* environment variables, parsed and checked
// against what each command needs (spec §"Parameters"). Pure: it takes the environment as a map.
import { badEnv } from './cni-error.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;
export type CniCommand = (typeof COMMANDS)[number];

export interface PodIdentity {
  readonly namespace?: string;
  readonly name?: string;
  readonly uid?: string;
}

export interface Invocation {
  readonly command: CniCommand;
  /** Set for ADD, DEL and CHECK. */
  readonly containerId?: string;
  /** Required for ADD and CHECK; DEL may come without it (the namespace is already gone). */
  readonly netns?: string;
  readonly ifName?: string;
  /** From CNI_ARGS, when the runtime is Kubernetes (or says it is). */
  readonly pod?: PodIdentity;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Keys of CNI_ARGS weave-net understands; others are refused unless IgnoreUnknown is set. */
const KNOWN_ARGS = new Set(['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_UID', 'K8S_POD_INFRA_CONTAINER_ID']);

/** Spec: alphanumeric first, then alphanumerics, `_`, `.` or `-`. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function parseCommand(env: Env): CniCommand {
  const command = env.CNI_COMMAND;
  if (command === undefined || command === '') {
    throw badEnv('CNI_COMMAND is not set', 'weave-net is a CNI plugin: a container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, VERSION, GC or STATUS) and the network configuration on stdin');
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw badEnv(`CNI_COMMAND ${JSON.stringify(command)} is not a CNI command (want one of ${COMMANDS.join(', ')})`);
  }
  return command as CniCommand;
}

/** Parses the environment for `command`; throws a CniError (code 7) naming what is missing or wrong. */
export function parseInvocation(env: Env): Invocation {
  const command = parseCommand(env);
  if (command === 'VERSION' || command === 'GC' || command === 'STATUS') return { command };

  const missing = ['CNI_CONTAINERID', 'CNI_IFNAME', ...(command === 'DEL' ? [] : ['CNI_NETNS'])].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw badEnv(`${command} needs ${missing.join(', ')} in the environment, and ${missing.length === 1 ? 'it is' : 'they are'} not set`);
  }
  const containerId = env.CNI_CONTAINERID!;
  if (!CONTAINER_ID.test(containerId)) {
    throw badEnv(`CNI_CONTAINERID ${JSON.stringify(containerId)} is not a valid container id (letters, digits, '_', '.', '-', starting with a letter or digit)`);
  }
  const ifName = validIfName(env.CNI_IFNAME!);
  const netns = env.CNI_NETNS ? validNetns(env.CNI_NETNS) : undefined;
  const pod = parseCniArgs(env.CNI_ARGS ?? '');
  return { command, containerId, ifName, ...(netns === undefined ? {} : { netns }), ...(pod === undefined ? {} : { pod }) };
}

/** The kernel's rules for a link name (dev_valid_name), so that the daemon never gets a name `ip` refuses. */
export function validIfName(name: string): string {
  const why = Buffer.byteLength(name) > 15 ? 'longer than 15 bytes'
    : name === '.' || name === '..' ? 'not a name'
      : /[/:\s]/.test(name) ? "it contains '/', ':' or white space" : undefined;
  if (why !== undefined) throw badEnv(`CNI_IFNAME ${JSON.stringify(name)} is not a valid interface name: ${why}`);
  return name;
}

function validNetns(path: string): string {
  if (!path.startsWith('/')) throw badEnv(`CNI_NETNS ${JSON.stringify(path)} is not an absolute path to a network namespace`);
  return path;
}

/**
 * CNI_ARGS: `KEY=VALUE` pairs separated by `;` (CONVENTIONS.md). Kubernetes runtimes send
 * K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID and IgnoreUnknown=1;
 * a key weave-net does not know is refused unless IgnoreUnknown is 1 or true, as libcni's plugins do.
 */
export function parseCniArgs(raw: string): PodIdentity | undefined {
  const pairs = new Map<string, string>();
  for (const part of raw.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw badEnv(`CNI_ARGS ${JSON.stringify(raw)}: ${JSON.stringify(part)} is not KEY=VALUE`);
    pairs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const ignoreUnknown = /^(1|true)$/i.test(pairs.get('IgnoreUnknown') ?? '');
  const unknown = [...pairs.keys()].filter((k) => !KNOWN_ARGS.has(k));
  if (unknown.length > 0 && !ignoreUnknown) {
    throw badEnv(`CNI_ARGS has ${unknown.join(', ')}, which weave-net does not know (add IgnoreUnknown=1 to have them ignored)`);
  }
  const namespace = pairs.get('K8S_POD_NAMESPACE');
  const name = pairs.get('K8S_POD_NAME');
  const uid = pairs.get('K8S_POD_UID');
  if (!namespace && !name && !uid) return undefined;
  return { ...(namespace ? { namespace } : {}), ...(name ? { name } : {}), ...(uid ? { uid } : {}) };
}
