// Running a synchronous piece of code with the calling thread inside another network namespace.
// A TAP device (and a socket) belongs to the namespace of the thread that opened /dev/net/tun (or
// called socket()), so this is how one process can open devices in several namespaces: the local
// cluster's tests forward frames between TAPs of two "nodes" from one process. setns(2) changes
// only the calling thread, and the thread is switched back before this returns, even on a throw;
// nothing asynchronous may happen in between (libuv's pool threads stay where they were anyway).
import { closeSync, openSync } from 'node:fs';
import { setns, errnoName, CLONE_NEWNET } from './libc.js';

const OWN_NETNS = '/proc/thread-self/ns/net';

/** Calls `fn` with this thread in the network namespace at `path` (e.g. /run/netns/<name>) and returns what it returns. */
export function withNetworkNamespace<T>(path: string, fn: () => T): T {
  const target = openSync(path, 'r');
  let home: number | undefined;
  try {
    home = openSync(OWN_NETNS, 'r');
    const entered = setns(target, CLONE_NEWNET);
    if (entered < 0) throw new Error(`cannot enter network namespace ${path}: ${errnoName(-entered)}`);
    try {
      return fn();
    } finally {
      const back = setns(home, CLONE_NEWNET);
      // Carrying on in the wrong namespace would put every later socket and device there.
      if (back < 0) throw new Error(`cannot return to this thread's network namespace: ${errnoName(-back)}; giving up`);
    }
  } finally {
    if (home !== undefined) closeSync(home);
    closeSync(target);
  }
}
