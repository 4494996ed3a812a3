// The weave-net executable as a runtime runs it (exactly the CNI environment, config on stdin):
// the static binary needs no node, and every kind of bad input, with the daemon up (the plugin
// logic runs there) or not there at all, gives the right CNI error (code on stdout, exit status
// not 0) and a message a person understands.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { addNetns, deleteNetns, netnsPath, sweep } from '../../src/cluster/netns.js';
import { pendingReleaseDir } from '../../src/api/cni-protocol.js';
import { PLUGIN_EXE, runPlugin } from './driver/driver.js';
import { startRelayDaemon } from './relay-daemon.js';

const NS = 'wn5-e1';
const CONTAINER = '3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755';

t.test('the static executable answers VERSION with an empty environment, with no node and no libc', async (t) => {
  const exe = await runPlugin(null, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
  t.equal(exe.code, 0, exe.stderr);
  t.equal(exe.stdout, '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n', 'the versions of versions.ts');
  const empty = await runPlugin(null, { CNI_COMMAND: 'VERSION' }, '');
  t.equal(empty.stdout, exe.stdout, 'VERSION reads no stdin');
  let ldd = '';
  try {
    ldd = execFileSync('ldd', [PLUGIN_EXE], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    ldd = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
  }
  t.match(ldd, /not a dynamic executable/, 'statically linked: no loader, no libc needed on the host');
  // With node itself hidden (a private mount namespace binds /dev/null over it), as on a host without it.
  const node = process.execPath;
  const hidden = await runPlugin(null, {}, '', ['unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c',
    `mount --bind /dev/null ${node} && ${node} --version; env -i CNI_COMMAND=VERSION ${PLUGIN_EXE}`]);
  t.match(hidden.stderr, /Permission denied|not found|cannot execute/, `node cannot run there: ${hidden.stderr.trim()}`);
  t.equal(hidden.stdout, exe.stdout, 'the executable still answers VERSION');
});

t.test('bad input: each gives its CNI code and a clear message', async (t) => {
  await sweep('wn5');
  await addNetns(NS);
  const dir = mkdtempSync(join(tmpdir(), 'weft-wn5-'));
  t.teardown(async () => {
    await deleteNetns([NS]);
    rmSync(dir, { recursive: true, force: true });
  });
  const socket = join(dir, 'weave.sock');
  const up = join(dir, 'up', 'weave.sock');
  await startRelayDaemon(t, up);
  const conf = (o: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'weave', type: 'weave-net', socket: up, ...o });
  const add = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: CONTAINER, CNI_NETNS: netnsPath(NS), CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
  const cases: [string, Record<string, string>, string, number, RegExp][] = [
    ['no CNI_COMMAND', {}, conf(), 7, /CNI_COMMAND is not set/],
    ['an unknown CNI_COMMAND', { ...add, CNI_COMMAND: 'UPDATE' }, conf(), 7, /CNI_COMMAND "UPDATE" is not a CNI command \(want one of ADD, DEL, CHECK, VERSION, GC, STATUS\)/],
    ['malformed JSON', add, '{"cniVersion": "1.0.0", "name": ', 6, /not valid JSON: unexpected end of input at position 32/],
    ['empty stdin', add, '', 6, /no network configuration on stdin/],
    ['missing CNI_NETNS', { ...add, CNI_NETNS: '' }, conf(), 7, /ADD needs CNI_NETNS in the environment/],
    ['missing CNI_CONTAINERID and CNI_IFNAME', { CNI_COMMAND: 'ADD', CNI_NETNS: netnsPath(NS) }, conf(), 7, /CNI_CONTAINERID, CNI_IFNAME/],
    ['unknown cniVersion', add, conf({ cniVersion: '2.0.0' }), 1, /cniVersion 2.0.0 is not supported by weave-net \(it supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\)/],
    ['CHECK at 0.3.1', { ...add, CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.3.1' }), 1, /CHECK needs cniVersion 0.4.0 or later/],
    ['bad mtu', add, conf({ mtu: 9 }), 4, /"mtu" must be an integer from 576 to 65535/],
    ['delegated IPAM', add, conf({ ipam: { type: 'host-local' } }), 2, /"ipam".* is not supported/],
    ['a netns that does not exist', { ...add, CNI_NETNS: '/run/netns/wn5-none' }, conf(), 7, /CNI_NETNS \/run\/netns\/wn5-none does not exist/],
    ['a netns path that is a plain file', { ...add, CNI_NETNS: '/etc/hostname' }, conf(), 7, /CNI_NETNS \/etc\/hostname is not a network namespace/],
    ['the host\'s own namespace', { ...add, CNI_NETNS: '/proc/self/ns/net' }, conf(), 7, /this host's own network namespace/],
    ['a daemon that has just started: ADD', add, conf(), 11, /bridge weave has no address yet/],
    ['daemon not running: ADD', add, conf({ socket }), 11, new RegExp(`the weave daemon is not running at ${socket} \\(no socket there\\)`)],
    ['daemon not running: CHECK', { ...add, CNI_COMMAND: 'CHECK' }, conf({ socket }), 11, /the weave daemon is not running at/],
    ['daemon not running: GC', { CNI_COMMAND: 'GC' }, conf({ socket, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }), 11, /the weave daemon is not running at/],
    ['daemon not running: STATUS', { CNI_COMMAND: 'STATUS' }, conf({ socket, cniVersion: '1.1.0' }), 50, /the weave daemon is not running at/],
  ];
  for (const [what, env, stdin, code, msg] of cases) {
    const r = await runPlugin(null, env, stdin);
    t.not(r.code, 0, `${what}: exit status not 0`);
    t.equal(r.json?.code, code, `${what}: code ${code}`);
    t.match(String(r.json?.msg), msg, `${what}: ${String(r.json?.msg)}`);
    t.match(r.stderr, /^weave-net: /, `${what}: a line on stderr`);
    t.ok(typeof r.json?.cniVersion === 'string', `${what}: the error names a cniVersion`);
  }

  // A socket whose daemon died (kill -9 leaves the file): refused, the same answer.
  const stale = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => stale.stdout.once('data', resolve));
  stale.kill('SIGKILL');
  await new Promise((resolve) => stale.once('exit', resolve));
  const refused = await runPlugin(null, add, conf({ socket }));
  t.equal(refused.json?.code, 11, 'stale socket: code 11');
  t.match(String(refused.json?.msg), /not running at .* \(nothing listens on the socket\)/);
  t.same(readdirSync(dir).sort(), ['up', 'weave.sock'], 'a failed ADD writes nothing');
});

t.test('DEL with the daemon down records the relayed request beside the socket and succeeds, twice over', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-wn5-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'run', 'weave.sock');
  const conf = JSON.stringify({ cniVersion: '0.4.0', name: 'weave', type: 'weave-net', socket });
  const del = { CNI_COMMAND: 'DEL', CNI_CONTAINERID: CONTAINER, CNI_NETNS: '/run/netns/wn5-gone', CNI_IFNAME: 'eth0' };
  for (let i = 0; i < 2; i++) {
    const r = await runPlugin(null, del, conf);
    t.equal(r.code, 0, `DEL ${i + 1} succeeds: ${r.stdout}`);
    t.equal(r.stdout, '', 'DEL prints nothing');
    t.match(r.stderr, /the weave daemon is not running .* recorded in .* happens when it starts/);
  }
  const pending = pendingReleaseDir(socket);
  t.same(readdirSync(pending), [`${CONTAINER}:eth0.json`], 'one record per attachment, no temporary file left');
  t.same(JSON.parse(readFileSync(join(pending, `${CONTAINER}:eth0.json`), 'utf8')), { env: del, stdin: conf }, 'the request as it would have been relayed');
  const noNetns = await runPlugin(null, { ...del, CNI_CONTAINERID: 'c2', CNI_NETNS: '' }, conf);
  t.equal(noNetns.code, 0);
  t.same(JSON.parse(readFileSync(join(pending, 'c2:eth0.json'), 'utf8')).env, { ...del, CNI_CONTAINERID: 'c2', CNI_NETNS: '' }, 'an empty variable is relayed as set');
  // An id too long for a file name: the record gets a name of its own, the id is in its content.
  const long = `a${'b'.repeat(250)}`;
  t.equal((await runPlugin(null, { ...del, CNI_CONTAINERID: long }, conf)).code, 0);
  const named = readdirSync(pending).filter((n) => n.startsWith(long.slice(0, 100)));
  t.equal(named.length, 1, `a long id is recorded once: ${named.join(', ')}`);
  t.ok(named[0]!.length < 200 && named[0]!.endsWith('.json'), 'under a name a file system takes');
  t.equal(JSON.parse(readFileSync(join(pending, named[0]!), 'utf8')).env.CNI_CONTAINERID, long, 'the whole id in the record');
  // Without what names the record, nothing can be recorded: the runtime is told.
  const noId = await runPlugin(null, { ...del, CNI_CONTAINERID: '' }, conf);
  t.equal(noId.json?.code, 7);
  t.match(String(noId.json?.msg), /DEL needs CNI_CONTAINERID in the environment, and it is not set/);
  const badIf = await runPlugin(null, { ...del, CNI_IFNAME: '../x' }, conf);
  t.equal(badIf.json?.code, 7);
  t.match(String(badIf.json?.msg), /CNI_IFNAME "..\/x" is not a valid interface name/);
  t.equal(readdirSync(pending).length, 3, 'refused DELs write nothing');
});
