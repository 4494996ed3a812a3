// One invocation, decision by decision, with the I/O scripted: what is sent to the daemon for each
// command, and what the runtime is told for each kind of answer.
import t from 'tap';
import { runPlugin, expectOk, type DaemonAnswer, type PluginIo } from '../../src/cni/plugin.js';
import { CniError } from '../../src/cni/cni-error.js';
import type { CniAddResponse } from '../../src/api/cni-protocol.js';

const ADDED: CniAddResponse = {
  hostInterface: { name: 'vethweplabc1234', mac: '12:34:56:78:9a:bc' },
  interface: { name: 'eth0', mac: '02:00:0a:20:00:05', sandbox: '/run/netns/p' },
  address: '10.32.0.5/12', gateway: '10.32.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }], mtu: 1376,
};

function io(stdin: string, answer: DaemonAnswer) {
  const calls: { method: string; path: string; body: unknown }[] = [];
  let stdinRead = false;
  const p: PluginIo = {
    readStdin: async () => {
      stdinRead = true;
      return stdin;
    },
    call: async (method, path, body) => {
      calls.push({ method, path, body });
      return answer;
    },
    netnsState: () => 'ok',
  };
  return { p, calls, stdinRead: () => stdinRead };
}
const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc1234def', CNI_NETNS: '/run/netns/p', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=dns-0;K8S_POD_UID=u-1' };
const conf = (o: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'weave', type: 'weave-net', socket: '/s/w.sock', ...o });
const ok = (body: unknown): DaemonAnswer => ({ status: 200, body: JSON.stringify(body) });

t.test('VERSION reads no stdin and calls nobody', async (t) => {
  const x = io('', ok({}));
  const out = await runPlugin({ CNI_COMMAND: 'VERSION' }, x.p);
  t.equal(out.exitCode, 0);
  t.notOk(x.stdinRead());
  t.same(x.calls, []);
});

t.test('ADD sends the pod identity, mtu and hairpin; prints the result', async (t) => {
  const x = io(conf({ mtu: 1300, hairpinMode: false }), ok(ADDED));
  const out = await runPlugin(env, x.p);
  t.equal(out.exitCode, 0);
  t.same(x.calls, [{ method: 'POST', path: '/cni/add', body: {
    containerId: 'abc1234def', ifName: 'eth0', netns: '/run/netns/p', pod: { namespace: 'kube-system', name: 'dns-0', uid: 'u-1' }, mtu: 1300, hairpin: false,
  } }]);
  t.equal(JSON.parse(out.stdout).ips[0].address, '10.32.0.5/12');
});

t.test('ADD: an answer that is not a CniAddResponse is code 100, not a broken result', async (t) => {
  const out = await runPlugin(env, io(conf(), ok({ address: 5 })).p);
  t.equal(out.exitCode, 1);
  t.equal(JSON.parse(out.stdout).code, 100);
  t.match(out.stderr, /weave-net: the weave daemon's answer to ADD is not what weave-net expects/);
});

t.test('CHECK sends the address of the previous result', async (t) => {
  const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'vethweplabc1234' }, { name: 'eth0', sandbox: '/run/netns/p' }], ips: [{ address: '10.32.0.5/12', interface: 1 }] };
  const x = io(conf({ prevResult: prev }), ok({}));
  const out = await runPlugin({ ...env, CNI_COMMAND: 'CHECK' }, x.p);
  t.equal(out.exitCode, 0);
  t.equal(out.stdout, '', 'CHECK prints nothing on success');
  t.same(x.calls[0]?.body, { containerId: 'abc1234def', ifName: 'eth0', netns: '/run/netns/p', address: '10.32.0.5/12' });
});

t.test('GC sends the valid attachments', async (t) => {
  const x = io(conf({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'k', ifname: 'eth0' }] }), ok({ released: [] }));
  const out = await runPlugin({ CNI_COMMAND: 'GC' }, x.p);
  t.equal(out.exitCode, 0);
  t.same(x.calls[0], { method: 'POST', path: '/cni/gc', body: { valid: [{ containerId: 'k', ifName: 'eth0' }] } });
});

t.test('DEL sends the attachment; the daemon\'s CNI errors are passed on with their code', async (t) => {
  const x = io(conf(), ok({}));
  const fine = await runPlugin({ ...env, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, x.p);
  t.equal(fine.exitCode, 0);
  t.equal(fine.stdout, '', 'DEL prints nothing');
  t.same(x.calls[0]?.body, { containerId: 'abc1234def', ifName: 'eth0' }, 'no netns: none sent');
  const refused = await runPlugin({ ...env, CNI_COMMAND: 'STATUS' }, io(conf({ cniVersion: '1.1.0' }), { status: 503, body: JSON.stringify({ code: 50, msg: 'IPAM is awaiting consensus', details: 'quorum 2' }) }).p);
  t.equal(refused.exitCode, 1);
  t.same(JSON.parse(refused.stdout), { cniVersion: '1.1.0', code: 50, msg: 'IPAM is awaiting consensus', details: 'quorum 2' });
  t.equal(refused.stderr, 'weave-net: IPAM is awaiting consensus');
});

t.test('expectOk: a 200 is its body; an answer that is no CNI error is code 100', async (t) => {
  t.equal(expectOk({ status: 200, body: '{"ok":1}' }, 'ADD'), '{"ok":1}');
  let e: unknown;
  try {
    expectOk({ status: 500, body: '<html>oops</html>' }, 'CHECK');
  } catch (err) {
    e = err;
  }
  t.ok(e instanceof CniError);
  t.equal((e as CniError).code, 100);
  t.match((e as CniError).message, /answered CHECK with HTTP 500: <html>oops/);
});

t.test('errors are written in the config\'s version when it is one weave-net knows', async (t) => {
  const out = await runPlugin({ ...env, CNI_NETNS: '' }, io(conf({ cniVersion: '0.4.0' }), ok({})).p);
  t.same(JSON.parse(out.stdout).cniVersion, '0.4.0');
  const bad = await runPlugin(env, io(conf({ cniVersion: '7.0.0' }), ok({})).p);
  t.same(JSON.parse(bad.stdout).cniVersion, '1.1.0');
});
