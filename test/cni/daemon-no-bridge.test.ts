// With --no-bridge there are no pods to attach: the daemon serves no CNI socket, and `weave ps`
// lists nothing (no bridge line, no pods).
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Weaver, runCli } from '../lib/weaver.js';

t.test('--no-bridge: no CNI socket, no weave ps', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cni-nobridge-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'weave.sock');
  const w = await Weaver.start(t, { ip: '127.0.50.1', nickname: 'nb', args: ['--socket', socket] });
  t.notOk(existsSync(socket), 'no socket file');
  t.notOk(w.logs.some((r) => r.msg.includes('Listening for CNI requests')), 'no CNI listener logged');
  const ps = await runCli(['ps'], { WEAVE_HTTP_ADDR: w.httpAddr });
  t.equal(ps.code, 0);
  t.equal(ps.stdout, '', 'no bridge line and no pods');
});
