// The CNI network configuration the entrypoint writes once the network is up (last, so that the
// kubelet sees no CNI config, and schedules no pods, before the daemon can serve them).
// TODO(lead): once `weave setup-cni --only conflist` is merged from the CNI branch, run that
// instead of writing the file here, so that one place knows the conflist.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_CNI_SOCKET } from '../api/cni-protocol.js';

export const CONFLIST_NAME = '10-weave.conflist';

/** Weave's conflist: the weave-net plugin (hairpin on), then portmap for hostPort. */
export function conflist(socket: string = DEFAULT_CNI_SOCKET): string {
  return `${JSON.stringify({
    cniVersion: '1.0.0',
    name: 'weave',
    disableCheck: false,
    plugins: [
      { name: 'weave', type: 'weave-net', hairpinMode: true, ...(socket !== DEFAULT_CNI_SOCKET ? { socket } : {}) },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  }, null, 2)}\n`;
}

/** Writes the conflist atomically (a reader never sees half a file); returns its path. */
export async function writeConflist(dir: string, socket?: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, CONFLIST_NAME);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, conflist(socket), { mode: 0o644 });
  await rename(tmp, path);
  return path;
}
