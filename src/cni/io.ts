// The real PluginIo: stdin, the daemon's socket, the pending-release directory, and a look at
// the namespace path (statfs says whether it is a namespace at all; its inode, whether it is
// the one this process runs in, the host's).
import { readFileSync, statSync, statfsSync } from 'node:fs';
import { callDaemon } from './daemon-client.js';
import { recordPendingRelease } from './pending-release.js';
import type { NetnsState, PluginIo } from './plugin.js';

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

/** All of stdin. Synchronous when stdin allows it (the usual pipe); a non-blocking one is read as a stream. */
export async function readStdin(): Promise<string> {
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EOF') return '';
    if (code !== 'EAGAIN') throw err;
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const realIo: PluginIo = { readStdin, call: callDaemon, recordRelease: recordPendingRelease, netnsState };
