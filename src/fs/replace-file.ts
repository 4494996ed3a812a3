// Replacing a file so that a reader (a container runtime listing /etc/cni/net.d or running
// /opt/cni/bin/weave-net) sees the old file or the new one, never half of one, and so that a
// crash leaves one of the two on disk: fill a temporary file beside it, sync it, rename it over
// the target, sync the directory (the rename is durable only once the directory is).
// Synchronous: its caller is a short-lived command (`weave setup-cni`); the CNI executable does
// the same in C for its pending releases.
import { chmodSync, closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `path` with what `fill(tmp)` puts in a temporary file beside it, with mode `mode`. */
export function replaceFileSync(path: string, fill: (tmp: string) => void, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    fill(tmp);
    chmodSync(tmp, mode);
    syncPath(tmp);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncPath(dirname(path));
}

/** replaceFileSync with a text. */
export function replaceTextFileSync(path: string, text: string, mode: number): void {
  replaceFileSync(path, (tmp) => {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  }, mode);
}
