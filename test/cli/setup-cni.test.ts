// `weave setup-cni`: the conflist it writes, its flags, and the real command on temporary
// directories (install, keep an existing conflist, --only, a missing executable).
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSetupCniArgs, weaveConflist, defaultPluginPath } from '../../src/cli/setup-cni.js';

const WEAVE_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function weave(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [WEAVE_CLI, ...args], (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
  });
}

t.test('the conflist: CNI 1.0.0, weave-net then portmap, "socket" only when not the default', async (t) => {
  const plain = JSON.parse(weaveConflist('/run/weave/weave.sock')) as Record<string, unknown>;
  t.same(plain, {
    cniVersion: '1.0.0',
    name: 'weave',
    plugins: [
      { name: 'weave', type: 'weave-net', hairpinMode: true },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  });
  const other = JSON.parse(weaveConflist('/tmp/n1/weave.sock')) as { plugins: Record<string, unknown>[] };
  t.equal(other.plugins[0]!['socket'], '/tmp/n1/weave.sock');
});

t.test('flags', async (t) => {
  t.same(parseSetupCniArgs([]), { binDir: '/opt/cni/bin', confDir: '/etc/cni/net.d', socket: '/run/weave/weave.sock', only: undefined, from: defaultPluginPath() });
  t.equal(defaultPluginPath(), resolve(dirname(WEAVE_CLI), '..', '..', 'bin', 'weave-net'), 'dist/bin/weave-net, found from the CLI\'s own file');
  t.match(parseSetupCniArgs(['--only', 'conflist', '--bin-dir=/b', '--from', '/x']), { only: 'conflist', binDir: '/b', from: '/x' });
  t.throws(() => parseSetupCniArgs(['--only', 'both']), /--only wants binary or conflist, not "both"/);
  t.throws(() => parseSetupCniArgs(['--socket', 'rel']), /--socket wants an absolute path/);
  t.throws(() => parseSetupCniArgs(['--bogus']), /setup-cni: Unknown option '--bogus'/);
});

t.test('the command on temporary directories', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-setup-cni-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const from = join(dir, 'plugin');
  writeFileSync(from, '#!/bin/sh\necho plugin v1\n');
  const bin = join(dir, 'opt', 'cni', 'bin');
  const netd = join(dir, 'etc', 'cni', 'net.d');
  const common = ['setup-cni', '--bin-dir', bin, '--conf-dir', netd, '--from', from];

  const first = await weave(common);
  t.equal(first.code, 0, first.stderr);
  t.equal(first.stdout, `installed ${bin}/weave-net\nwrote ${netd}/10-weave.conflist\n`);
  t.equal(readFileSync(join(bin, 'weave-net'), 'utf8'), '#!/bin/sh\necho plugin v1\n');
  t.equal(statSync(join(bin, 'weave-net')).mode & 0o777, 0o755);
  t.equal(readFileSync(join(netd, '10-weave.conflist'), 'utf8'), weaveConflist('/run/weave/weave.sock'));

  // A new executable replaces the old; an existing conflist (the operator's) is kept.
  writeFileSync(from, '#!/bin/sh\necho plugin v2\n');
  writeFileSync(join(netd, '10-weave.conflist'), '{"mine":true}\n');
  const second = await weave([...common, '--socket', '/tmp/other.sock']);
  t.equal(second.stdout, `installed ${bin}/weave-net\nkept ${netd}/10-weave.conflist (it exists)\n`);
  t.equal(readFileSync(join(bin, 'weave-net'), 'utf8'), '#!/bin/sh\necho plugin v2\n');
  t.equal(readFileSync(join(netd, '10-weave.conflist'), 'utf8'), '{"mine":true}\n');

  const netd2 = join(dir, 'net2');
  const only = await weave(['setup-cni', '--only', 'conflist', '--conf-dir', netd2, '--bin-dir', join(dir, 'nobin'), '--socket', '/tmp/n.sock']);
  t.equal(only.stdout, `wrote ${netd2}/10-weave.conflist\n`, 'conflist only: no executable needed');
  t.match(readFileSync(join(netd2, '10-weave.conflist'), 'utf8'), /"socket": "\/tmp\/n.sock"/);

  mkdirSync(join(dir, 'b2'));
  const missing = await weave(['setup-cni', '--only', 'binary', '--bin-dir', join(dir, 'b2'), '--from', join(dir, 'nope')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^weave: the plugin executable .*nope does not exist \(build it, or give --from PATH\)\n$/);
  const bad = await weave(['setup-cni', '--only', 'x']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /--only wants binary or conflist/);
});
