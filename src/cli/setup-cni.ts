// `weave setup-cni`: installs the weave-net executable into the runtime's plugin directory and
// writes /etc/cni/net.d/10-weave.conflist (weave-net chained with portmap) when it is absent. It
// needs no running daemon (the DaemonSet's init step runs it). Both writes are atomic: a runtime
// reading the directory sees the old file or the new one, never half of one.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { replaceFileSync, replaceTextFileSync } from '../fs/replace-file.js';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_CNI_SOCKET } from '../api/cni-protocol.js';

export const CONFLIST_NAME = '10-weave.conflist';
export const PLUGIN_NAME = 'weave-net';

export interface SetupCniOptions {
  readonly binDir: string;
  readonly confDir: string;
  readonly socket: string;
  readonly only: 'binary' | 'conflist' | undefined;
  /** The executable to install. */
  readonly from: string;
}

export class SetupCniUsageError extends Error {}

/**
 * The built plugin, the static executable `dist/bin/weave-net`, found relative to this file
 * (dist/src/cli/setup-cni.js), so it works wherever the tree is unpacked.
 */
export function defaultPluginPath(): string {
  return fileURLToPath(new URL('../../bin/weave-net', import.meta.url));
}

export function parseSetupCniArgs(args: readonly string[]): SetupCniOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { 'bin-dir': { type: 'string' }, 'conf-dir': { type: 'string' }, socket: { type: 'string' }, only: { type: 'string' }, from: { type: 'string' } },
      allowPositionals: false,
      strict: true,
    });
  } catch (err) {
    throw new SetupCniUsageError(`setup-cni: ${(err as Error).message.split('\n')[0]}`);
  }
  const v = parsed.values;
  if (v.only !== undefined && v.only !== 'binary' && v.only !== 'conflist') throw new SetupCniUsageError(`setup-cni: --only wants binary or conflist, not "${v.only}"`);
  const socket = v.socket ?? DEFAULT_CNI_SOCKET;
  if (!socket.startsWith('/')) throw new SetupCniUsageError(`setup-cni: --socket wants an absolute path, not "${socket}"`);
  for (const [flag, dir] of [['--bin-dir', v['bin-dir']], ['--conf-dir', v['conf-dir']]] as const) {
    if (dir === '') throw new SetupCniUsageError(`setup-cni: ${flag} is empty`);
  }
  return {
    binDir: v['bin-dir'] ?? '/opt/cni/bin',
    confDir: v['conf-dir'] ?? '/etc/cni/net.d',
    socket,
    only: v.only as SetupCniOptions['only'],
    from: v.from ?? defaultPluginPath(),
  };
}

/** The network config list: CNI 1.0.0, weave-net then portmap; "socket" only when not the default. */
export function weaveConflist(socket: string): string {
  const weave: Record<string, unknown> = { name: 'weave', type: PLUGIN_NAME, hairpinMode: true };
  if (socket !== DEFAULT_CNI_SOCKET) weave['socket'] = socket;
  const list = {
    cniVersion: '1.0.0',
    name: 'weave',
    plugins: [weave, { type: 'portmap', capabilities: { portMappings: true }, snat: true }],
  };
  return `${JSON.stringify(list, null, 4)}\n`;
}

/** Does what the options ask; returns one line per thing done (or left alone). */
export function setupCni(o: SetupCniOptions): string[] {
  const lines: string[] = [];
  if (o.only !== 'conflist') {
    if (!existsSync(o.from)) throw new Error(`the plugin executable ${o.from} does not exist (build it, or give --from PATH)`);
    mkdirSync(o.binDir, { recursive: true, mode: 0o755 });
    const dest = join(o.binDir, PLUGIN_NAME);
    // A copy under a temporary name, renamed over the old one: a runtime executing the old
    // binary at this moment keeps it, the next one gets the new.
    replaceFileSync(dest, (tmp) => copyFileSync(o.from, tmp), 0o755);
    lines.push(`installed ${dest}`);
  }
  if (o.only !== 'binary') {
    mkdirSync(o.confDir, { recursive: true, mode: 0o755 });
    const dest = join(o.confDir, CONFLIST_NAME);
    if (existsSync(dest)) {
      lines.push(`kept ${dest} (it exists)`);
    } else {
      const text = weaveConflist(o.socket);
      replaceTextFileSync(dest, text, 0o644);
      lines.push(`wrote ${dest}`);
    }
  }
  return lines;
}
