// What a CNI_NETNS path is, looked at from the daemon (which runs the plugin's logic for the
// executable, in the same mount and network namespace as the runtime on a node): statfs says
// whether it is a namespace at all; its inode, whether it is the one this process runs in, the
// host's.
import { statSync, statfsSync } from 'node:fs';
import type { NetnsState } from './plugin.js';

/** statfs f_type of nsfs, the file system namespace handles live on. */
const NSFS_MAGIC = 0x6e736673;

export function netnsState(path: string): NetnsState {
  try {
    if (statfsSync(path).type !== NSFS_MAGIC) return 'not-netns';
    const ns = statSync(path);
    const own = statSync('/proc/self/ns/net');
    return ns.dev === own.dev && ns.ino === own.ino ? 'host' : 'ok';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : { unreadable: (err as Error).message };
  }
}
