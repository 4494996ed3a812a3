// DEL while the daemon is down: the release is written to a file beside the daemon's socket
// (pendingReleaseDir) and the daemon replays it when it starts, so a pod deleted during a daemon
// restart does not leak its address. Written to a temporary name, synced, then renamed: the
// daemon never reads half a record, and a crash leaves either the whole record or none.
import { mkdirSync } from 'node:fs';
import { replaceTextFileSync } from '../fs/replace-file.js';
import { createHash } from 'node:crypto';
import { pendingReleaseDir, type CniDelRequest } from '../api/cni-protocol.js';

/**
 * The record's file name: `<container id>:<interface>.json`. Neither a container id nor a link
 * name may hold ':' or '/', so names never collide nor leave the directory; an id too long for a
 * file name is hashed.
 */
export function pendingReleaseName(req: CniDelRequest): string {
  const name = `${req.containerId}:${req.ifName}.json`;
  return Buffer.byteLength(name) <= 200 ? name : `${createHash('sha256').update(`${req.containerId}\0${req.ifName}`).digest('hex')}.json`;
}

/** Writes the record; returns its path. Throws on I/O failure (the caller reports it). */
export function recordPendingRelease(socketPath: string, req: CniDelRequest): string {
  const dir = pendingReleaseDir(socketPath);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = `${dir}/${pendingReleaseName(req)}`;
  replaceTextFileSync(path, `${JSON.stringify(req)}\n`, 0o600);
  return path;
}
