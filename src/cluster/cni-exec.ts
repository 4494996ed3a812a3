// Runs the weave-net CNI executable as a container runtime runs it: in a given namespace, with
// exactly the CNI environment (nothing inherited, not even PATH) and the network config on stdin.
// Used by the local cluster (pods attached through the plugin), the CNI tests and the benchmark.
import { fileURLToPath } from 'node:url';
import { exec, type Netns } from './exec.js';

/** The static C executable built into dist/bin (scripts/build-cni.mjs). */
export const WEAVE_NET_EXECUTABLE = fileURLToPath(new URL('../../bin/weave-net', import.meta.url));

export interface PluginRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed, when it is JSON. */
  readonly json: Record<string, unknown> | undefined;
}

/** Runs a plugin in `ns` with exactly `env` and `stdin`; argv defaults to the weave-net executable. */
export async function runCniPlugin(ns: Netns, env: Readonly<Record<string, string>>, stdin: string,
  argv: readonly string[] = [WEAVE_NET_EXECUTABLE]): Promise<PluginRun> {
  const r = await exec(ns, ['env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv], { input: stdin, timeoutMs: 60_000 });
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, json };
}
