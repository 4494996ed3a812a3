// One invocation of weave-net, start to end: parse what the runtime gave, ask the daemon, say
// what happened. It runs in the daemon, on what the executable (native/weave-net.c) relays; the
// I/O (stdin, the calls, the file system) comes in through PluginIo, so that every decision here
// (which error for which failure) is tested without a daemon; relay.ts passes the real ones.
// (The executable itself answers VERSION and the cases without a daemon, with the same wording.)
//
//   1. CNI_COMMAND: VERSION answers at once, without reading stdin.
//   2. The environment (code 7), then the network config (6, 1, 2, 4).
//   3. ADD and CHECK: the namespace must exist and not be the host's own (7).
//   4. The daemon's routes (cni-protocol.ts): their answer, or their CNI error, passed on.
import { CniCode, type CniAddRequest, type CniAddResponse, type CniCheckRequest, type CniDelRequest, type CniErrorBody, type CniGcRequest } from '../api/cni-protocol.js';
import { CniError, badEnv, encodeError } from './cni-error.js';
import { parseCommand, parseInvocation, type Invocation } from './env.js';
import { isObject } from './json-object.js';
import { parseNetConf, type NetConf } from './netconf.js';
import { addressOf } from './prev-result.js';
import { buildResult } from './result.js';
import { LATEST_VERSION, SUPPORTED_VERSIONS, isSupported } from './versions.js';

export type NetnsState = 'ok' | 'missing' | 'not-netns' | 'host' | { readonly unreadable: string };

/** A route's answer: its HTTP status and JSON text. */
export interface DaemonAnswer {
  readonly status: number;
  readonly body: string;
}

/** Calls one of the daemon's routes (cni-server.ts dispatches them in process). */
export type DaemonCall = (method: 'GET' | 'POST', path: string, body: unknown) => Promise<DaemonAnswer>;

export interface PluginIo {
  readonly readStdin: () => Promise<string>;
  readonly call: DaemonCall;
  readonly netnsState: (path: string) => NetnsState;
}

export interface Outcome {
  readonly stdout: string;
  readonly exitCode: number;
  /** A line for stderr (the runtime logs it), beside the JSON on stdout. */
  readonly stderr?: string;
}

export async function runPlugin(env: Readonly<Record<string, string | undefined>>, io: PluginIo): Promise<Outcome> {
  let version: string = LATEST_VERSION;
  try {
    const command = parseCommand(env);
    if (command === 'VERSION') {
      return { stdout: `${JSON.stringify({ cniVersion: LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS })}\n`, exitCode: 0 };
    }
    const stdin = await io.readStdin();
    version = peekVersion(stdin) ?? version;
    const inv = parseInvocation(env);
    const conf = parseNetConf(stdin, command);
    return await perform(inv, conf, io);
  } catch (err) {
    const body: CniErrorBody = err instanceof CniError ? err.body : { code: CniCode.internal, msg: `weave-net failed: ${(err as Error).message}` };
    return { stdout: encodeError(version, body), exitCode: 1, stderr: `weave-net: ${body.msg}` };
  }
}

/** The config's cniVersion if it is one weave-net speaks, so that even its errors are in that version. */
function peekVersion(stdin: string): string | undefined {
  try {
    const v: unknown = JSON.parse(stdin);
    return isObject(v) && typeof v.cniVersion === 'string' && isSupported(v.cniVersion) ? v.cniVersion : undefined;
  } catch {
    return undefined;
  }
}

async function perform(inv: Invocation, conf: NetConf, io: PluginIo): Promise<Outcome> {
  const ok: Outcome = { stdout: '', exitCode: 0 };
  switch (inv.command) {
    case 'ADD': {
      checkNetns(inv.netns!, io);
      const req: CniAddRequest = {
        containerId: inv.containerId!, ifName: inv.ifName!, netns: inv.netns!,
        ...(inv.pod ? { pod: inv.pod } : {}), ...(conf.mtu !== undefined ? { mtu: conf.mtu } : {}), hairpin: conf.hairpin,
      };
      const body = expectOk(await io.call('POST', '/cni/add', req), 'ADD');
      let added: CniAddResponse;
      try {
        added = JSON.parse(body) as CniAddResponse;
        if (typeof added.address !== 'string' || !added.interface || !added.hostInterface || !Array.isArray(added.routes)) throw new Error('fields missing');
      } catch (err) {
        throw new CniError(CniCode.internal, `the weave daemon's answer to ADD is not what weave-net expects (${(err as Error).message})`, body.slice(0, 500));
      }
      return { stdout: `${JSON.stringify(buildResult(conf.cniVersion, added, conf.dns))}\n`, exitCode: 0 };
    }
    case 'DEL': {
      const req: CniDelRequest = { containerId: inv.containerId!, ifName: inv.ifName!, ...(inv.netns ? { netns: inv.netns } : {}) };
      expectOk(await io.call('POST', '/cni/del', req), 'DEL');
      return ok;
    }
    case 'CHECK': {
      checkNetns(inv.netns!, io);
      const address = conf.prevResult ? addressOf(conf.prevResult, inv.ifName!, inv.netns) : undefined;
      const req: CniCheckRequest = { containerId: inv.containerId!, ifName: inv.ifName!, netns: inv.netns!, ...(address ? { address } : {}) };
      expectOk(await io.call('POST', '/cni/check', req), 'CHECK');
      return ok;
    }
    case 'GC': {
      const req: CniGcRequest = { valid: conf.validAttachments ?? [] };
      expectOk(await io.call('POST', '/cni/gc', req), 'GC');
      return ok;
    }
    case 'STATUS':
      expectOk(await io.call('GET', '/cni/status', undefined), 'STATUS');
      return ok;
    case 'VERSION':
      throw new Error('unreachable: VERSION is answered before the config is read');
  }
}

function checkNetns(path: string, io: PluginIo): void {
  const state = io.netnsState(path);
  if (state === 'missing') throw badEnv(`CNI_NETNS ${path} does not exist: the container's network namespace is gone or was never made`);
  if (state === 'not-netns') throw badEnv(`CNI_NETNS ${path} is not a network namespace`);
  if (typeof state === 'object') throw badEnv(`CNI_NETNS ${path} cannot be looked at: ${state.unreadable}`);
  if (state === 'host') throw badEnv(`CNI_NETNS ${path} is this host's own network namespace: weave-net attaches containers in namespaces of their own`);
}

/** The body of a 200 answer; anything else becomes the CniError the runtime should see. */
export function expectOk(answer: DaemonAnswer, command: string): string {
  if (answer.status === 200) return answer.body;
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    parsed = undefined;
  }
  if (isObject(parsed) && typeof parsed.code === 'number' && typeof parsed.msg === 'string') {
    throw new CniError(parsed.code, parsed.msg, typeof parsed.details === 'string' ? parsed.details : undefined);
  }
  throw new CniError(CniCode.internal, `the weave daemon answered ${command} with HTTP ${answer.status}: ${answer.body.trim().slice(0, 300)}`);
}
