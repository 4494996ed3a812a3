#!/usr/bin/env node
// weave: the operator CLI, a thin client of the daemon's HTTP API (WEAVE_HTTP_ADDR, default
// 127.0.0.1:6784). Exit codes as Weave's: 0 on success, 4 when the API answers 404, 1 otherwise.
import { parseHostPort } from '../net/address.js';
import { callApi, DaemonUnreachable, type ApiResponse } from './http-client.js';
import { reportField } from './report-field.js';
import { VERSION } from '../version.js';
import { parseSetupCniArgs, setupCni, SetupCniUsageError } from './setup-cni.js';

const USAGE = `Usage:
  weave status [targets | connections | peers | ipam]
  weave report [-f <field path, e.g. .Router.Name>]
  weave connect [--replace] <peer> ...
  weave forget <peer> ...
  weave rmpeer <peer name or nickname> ...
  weave ps                      pods attached by the CNI plugin: <container id> <mac> <address>
  weave setup-cni [--bin-dir DIR] [--conf-dir DIR] [--socket PATH] [--only binary|conflist]
                  [--from PATH]  install /opt/cni/bin/weave-net and /etc/cni/net.d/10-weave.conflist
  weave version
  weave help

The daemon's address comes from WEAVE_HTTP_ADDR (default 127.0.0.1:6784).
`;

class UsageError extends Error {}

async function run(args: readonly string[]): Promise<number> {
  const addrText = process.env.WEAVE_HTTP_ADDR || '127.0.0.1:6784';
  const addr = parseHostPort(addrText, 6784);
  const [command, ...rest] = args;
  const print = (r: ApiResponse, wrap = false): number => {
    if (r.status >= 200 && r.status < 300) {
      process.stdout.write(wrap ? `\n${r.body}\n` : r.body);
      return 0;
    }
    process.stderr.write(r.body.endsWith('\n') || r.body === '' ? r.body : `${r.body}\n`);
    return r.status === 404 ? 4 : 1;
  };
  switch (command) {
    case 'status': {
      if (rest.length > 1) throw new UsageError('status takes at most one section');
      const section = rest[0];
      if (section !== undefined && !/^[a-z]+$/.test(section)) throw new UsageError(`unknown status section "${section}"`);
      const r = await callApi(addr, 'GET', section === undefined ? '/status' : `/status/${section}`);
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
      const r = await callApi(addr, 'GET', '/report');
      if (r.status !== 200 || field === undefined) return print(r);
      process.stdout.write(`${reportField(JSON.parse(r.body), field)}\n`);
      return 0;
    }
    case 'connect':
    case 'forget': {
      const replace = command === 'connect' && rest[0] === '--replace';
      const peers = replace ? rest.slice(1) : rest;
      if (peers.length === 0 && !replace) throw new UsageError(`${command} needs at least one peer`);
      const form = new URLSearchParams(peers.map((p): [string, string] => ['peer', p]));
      if (replace) form.set('replace', 'true');
      return print(await callApi(addr, 'POST', `/${command}`, { body: form.toString() }));
    }
    case 'rmpeer': {
      if (rest.length === 0) throw new UsageError('rmpeer needs at least one peer');
      let code = 0;
      for (const peer of rest) {
        const r = await callApi(addr, 'DELETE', `/peer/${encodeURIComponent(peer)}`);
        code = Math.max(code, print(r));
      }
      return code;
    }
    case 'ps':
      if (rest.length > 0) throw new UsageError('ps takes no arguments');
      return print(await callApi(addr, 'GET', '/ps'));
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
