#!/usr/bin/env node
// weave: the operator CLI, a thin client of the daemon's HTTP API (WEAVE_HTTP_ADDR, default
// 127.0.0.1:6784). Exit codes as Weave's: 0 on success, 4 when the API answers 404, 1 otherwise
// (the daemon down, too slow, an error answer, a usage error), always with one line on stderr.
import { parseHostPort } from '../net/address.js';
import { callApi, errorLine, DaemonUnreachable, DEFAULT_ANSWER_TIMEOUT_MS, type ApiResponse, type CallOptions } from './http-client.js';
import { reportField } from './report-field.js';
import { VERSION } from '../version.js';
import { parseSetupCniArgs, setupCni, SetupCniUsageError } from './setup-cni.js';

const USAGE = `Usage:
  weave status [targets | connections | peers | ipam]
  weave report [-f <field path, e.g. .Router.Name>]
  weave ps [<id> ...]
  weave connect [--replace] <peer> ...
  weave forget <peer> ...
  weave rmpeer <peer name or nickname> ...
  weave expose
  weave reset
  weave setup-cni [--bin-dir DIR] [--conf-dir DIR] [--socket PATH] [--only binary|conflist]
                  [--from PATH]  install /opt/cni/bin/weave-net and /etc/cni/net.d/10-weave.conflist
  weave version
  weave help

The daemon's address comes from WEAVE_HTTP_ADDR (default 127.0.0.1:6784). The CLI waits
10 s for an answer (40 s for expose, rmpeer and reset, which may wait on IPAM);
WEAVE_CLI_TIMEOUT=<seconds> changes that. Exit codes: 0 done, 4 the daemon answered 404
(not found), 1 anything else.
`;

/** expose, rmpeer and reset may wait on IPAM (up to its 30 s request timeout) or the host. */
const IPAM_ANSWER_TIMEOUT_MS = 40_000;

class UsageError extends Error {}

async function run(args: readonly string[]): Promise<number> {
  const addrText = process.env.WEAVE_HTTP_ADDR || '127.0.0.1:6784';
  const addr = parseHostPort(addrText, 6784);
  const [command, ...rest] = args;
  const timeoutSeconds = process.env.WEAVE_CLI_TIMEOUT ? Number(process.env.WEAVE_CLI_TIMEOUT) : undefined;
  if (timeoutSeconds !== undefined && !(timeoutSeconds > 0)) throw new RangeError(`invalid WEAVE_CLI_TIMEOUT "${process.env.WEAVE_CLI_TIMEOUT}": want seconds > 0`);
  const call = (method: string, path: string, options: CallOptions & { slow?: boolean } = {}): Promise<ApiResponse> =>
    callApi(addr, method, path, {
      ...options,
      timeoutMs: timeoutSeconds !== undefined ? timeoutSeconds * 1000 : options.slow ? IPAM_ANSWER_TIMEOUT_MS : DEFAULT_ANSWER_TIMEOUT_MS,
      timeoutHint: 'WEAVE_CLI_TIMEOUT=<seconds> waits longer',
    });
  const print = (r: ApiResponse, wrap = false): number => {
    if (r.status >= 200 && r.status < 300) {
      process.stdout.write(wrap ? `\n${r.body}\n` : r.body);
      return 0;
    }
    process.stderr.write(`weave: ${errorLine(r)}\n`);
    return r.status === 404 ? 4 : 1;
  };
  switch (command) {
    case 'status': {
      if (rest.length > 1) throw new UsageError('status takes at most one section');
      const section = rest[0];
      if (section !== undefined && !/^[a-z]+$/.test(section)) throw new UsageError(`unknown status section "${section}"`);
      const r = await call('GET', section === undefined ? '/status' : `/status/${section}`);
      if (r.status === 404 && section !== undefined) {
        process.stderr.write(`weave: unknown status section "${section}"\n${USAGE}`);
        return 4;
      }
      return print(r, section === undefined);
    }
    case 'report': {
      let field: string | undefined;
      if (rest[0] === '-f' || rest[0] === '--format') field = rest[1];
      else if (rest[0]?.startsWith('--format=')) field = rest[0].slice(9);
      else if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      if ((rest[0] === '-f' || rest[0] === '--format') && field === undefined) throw new UsageError('-f needs a field path');
      const r = await call('GET', '/report');
      if (r.status !== 200 || field === undefined) return print(r);
      let report: unknown;
      try {
        report = JSON.parse(r.body);
      } catch {
        throw new DaemonUnreachable(`the weave daemon at ${addrText} sent a report that is not JSON`);
      }
      process.stdout.write(`${reportField(report, field)}\n`);
      return 0;
    }
    case 'ps': {
      const r = await call('GET', '/ps');
      if (r.status !== 200 || rest.length === 0) return print(r);
      // `weave ps <id>...`: the lines of those ids (or id prefixes), as Weave's.
      const lines = r.body.split('\n').filter((l) => l !== '' && rest.some((id) => l.startsWith(id.slice(0, 12))));
      process.stdout.write(lines.map((l) => `${l}\n`).join(''));
      return 0;
    }
    case 'expose':
      if (rest.length > 0) throw new UsageError('expose takes no arguments: the bridge gets its address from IPAM');
      return print(await call('POST', '/expose', { slow: true }));
    case 'reset':
      if (rest.length > 0) throw new UsageError('reset takes no arguments');
      return print(await call('DELETE', '/peer', { slow: true }));
    case 'connect':
    case 'forget': {
      const replace = command === 'connect' && rest[0] === '--replace';
      const peers = replace ? rest.slice(1) : rest;
      if (peers.length === 0 && !replace) throw new UsageError(`${command} needs at least one peer`);
      const form = new URLSearchParams(peers.map((p): [string, string] => ['peer', p]));
      if (replace) form.set('replace', 'true');
      return print(await call('POST', `/${command}`, { body: form.toString() }));
    }
    case 'rmpeer': {
      if (rest.length === 0) throw new UsageError('rmpeer needs at least one peer');
      let code = 0;
      for (const peer of rest) {
        const r = await call('DELETE', `/peer/${encodeURIComponent(peer)}`, { slow: true });
        code = Math.max(code, print(r));
      }
      return code;
    }
    case 'setup-cni': {
      let options;
      try {
        options = parseSetupCniArgs(rest);
      } catch (err) {
        if (err instanceof SetupCniUsageError) throw new UsageError(err.message);
        throw err;
      }
      for (const line of setupCni(options)) process.stdout.write(`${line}\n`);
      return 0;
    }
    case 'version':
      process.stdout.write(`weave ${VERSION}\n`);
      return 0;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    case undefined:
      throw new UsageError('no command given');
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`weave: ${err.message}\n${USAGE}`);
    } else if (err instanceof DaemonUnreachable || err instanceof RangeError) {
      process.stderr.write(`weave: ${err.message}\n`);
    } else {
      process.stderr.write(`weave: ${(err as Error).message}\n`);
    }
    process.exit(1);
  },
);
