// Named network namespaces (the ones `ip netns` manages under /run/netns): list, create, delete,
// find the processes inside, and sweep a crashed run's leftovers by prefix.
// Deleting a namespace only unmounts its name; the kernel frees it (and its veths, whose peers go
// with them) once no process is left inside, which is why every delete here kills those first.
import { readdir } from 'node:fs/promises';
import { ip, run } from './exec.js';
import { ownedByPrefix, validatePrefix } from './names.js';

export const NETNS_DIR = '/run/netns';

/** The path a namespace is mounted at, for `nsenter --net=` or a CNI runtime's CNI_NETNS. */
export function netnsPath(ns: string): string {
  return `${NETNS_DIR}/${ns}`;
}

/** Names of the namespaces `ip netns list` shows. */
export async function listNetns(): Promise<string[]> {
  try {
    return (await readdir(NETNS_DIR)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Creates a namespace; rejects if one of that name exists (it is then someone else's). */
export async function addNetns(ns: string): Promise<void> {
  await ip(null, ['netns', 'add', ns]);
}

/** Pids of the processes inside `ns`; none if it does not exist. */
export async function netnsPids(ns: string): Promise<number[]> {
  const out = await ip(null, ['netns', 'pids', ns]).catch(() => '');
  return out
    .split('\n')
    .filter((l) => /^\d+$/.test(l.trim()))
    .map(Number);
}

/** SIGKILLs every process inside each of `namespaces`. */
export async function killNetnsProcesses(namespaces: readonly string[]): Promise<void> {
  const pids = (await Promise.all(namespaces.map(netnsPids))).flat();
  for (const pid of pids) {
    if (pid === process.pid) continue; // never ourselves, should a test run inside one
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ESRCH: gone already.
    }
  }
}

/**
 * Kills whatever runs inside, then deletes each namespace that exists; one `ip` for all.
 * Names that do not exist are skipped, so this is safe to call twice.
 */
export async function deleteNetns(namespaces: readonly string[]): Promise<void> {
  const existing = new Set(await listNetns());
  const present = namespaces.filter((ns) => existing.has(ns));
  if (present.length === 0) return;
  await killNetnsProcesses(present);
  // -force: carry on past a name that vanished meanwhile, and report afterwards.
  await run(null, ['ip', '-force', '-batch', '-'], { input: `${present.map((ns) => `netns delete ${ns}`).join('\n')}\n` }).catch(
    async (err: unknown) => {
      const left = new Set(await listNetns());
      if (present.some((ns) => left.has(ns))) throw err;
    },
  );
}

/**
 * Removes every namespace named by a cluster with `prefix` ("wt3", "wt3-n1", "wt3-n1-p1", not
 * "wt30-n1"), with the processes inside: what a crashed run left behind. Returns what it removed.
 */
export async function sweep(prefix: string): Promise<string[]> {
  validatePrefix(prefix);
  const ours = (await listNetns()).filter((ns) => ownedByPrefix(prefix, ns));
  await deleteNetns(ours);
  return ours;
}

