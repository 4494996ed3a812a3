// For the plugin's tests and benchmark: runs the weave-net executable as a runtime runs it (exact
// environment, config on stdin), and builds and runs cni-driver (main.go here), which drives
// plugins through the real CNI library. The driver is compiled into a temporary directory that
// the caller removes; nothing built is committed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec, type Netns } from '../../../src/cluster/exec.js';
import { runCniPlugin, WEAVE_NET_EXECUTABLE } from '../../../src/cluster/cni-exec.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The static C executable (scripts/build-cni.mjs). */
export const PLUGIN_EXE = WEAVE_NET_EXECUTABLE;
/** The driver's Go source, in the repository (dist/test/cni/driver -> test/cni/driver). */
const DRIVER_SRC = join(here, '..', '..', '..', '..', 'test', 'cni', 'driver');

/** Runs a plugin in `ns` as a runtime does (see src/cluster/cni-exec.ts). */
export const runPlugin = runCniPlugin;

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Compiles cni-driver with Debian's Go and libcni; returns the executable's path. */
export function buildDriver(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cni-driver-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, 'cni-driver');
  execFileSync('go', ['build', '-o', exe, '.'], {
    cwd: DRIVER_SRC, stdio: 'pipe',
    env: { ...process.env, GOPATH: '/usr/share/gocode', GO111MODULE: 'off', GOFLAGS: '', GOCACHE: join(dir, 'go-cache') },
  });
  return exe;
}

export interface DriverAnswer {
  readonly ok: boolean;
  readonly code?: number;
  readonly msg?: string;
  readonly error?: string;
  readonly result?: CniResultJson;
  /** GC/STATUS: plugins skipped for not speaking spec 1.1. */
  readonly skipped?: string[];
  readonly addMs?: number[];
  readonly delMs?: number[];
}

export interface CniResultJson {
  cniVersion: string;
  interfaces: { name: string; mac: string; sandbox?: string; mtu?: number }[];
  ips: { address: string; gateway?: string; interface?: number; version?: string }[];
  routes?: { dst: string; gw?: string }[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

/**
 * The environment a runtime such as containerd or kubelet runs plugins with, which libcni passes
 * on. Not this process's: a NODE_EXTRA_CA_CERTS there (this machine has one) makes every node
 * process, the plugin too, parse a CA bundle at start (measured: start-up doubles).
 */
export const RUNTIME_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

/** Runs `cni-driver <command> ...args` in `ns` and returns its one-line JSON answer. */
export async function driver(ns: Netns, exe: string, command: string, args: readonly string[]): Promise<DriverAnswer> {
  const r = await exec(ns, ['env', '-i', ...RUNTIME_ENV, exe, command, ...args], { timeoutMs: 180_000 });
  try {
    return JSON.parse(r.stdout) as DriverAnswer;
  } catch {
    throw new Error(`cni-driver ${command} ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
  }
}

/** Writes a conflist file into `dir` and returns its path. */
export function writeConflist(dir: string, name: string, conflist: unknown): string {
  const path = join(dir, `${name}.conflist`);
  writeFileSync(path, JSON.stringify(conflist, null, 2));
  return path;
}
