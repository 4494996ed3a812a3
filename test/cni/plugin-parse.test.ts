// The plugin's pure core: the environment, the network config, the result, in every version.
import t from 'tap';
import { parseInvocation, parseCniArgs, validIfName } from '../../src/cni/env.js';
import { parseNetConf } from '../../src/cni/netconf.js';
import { buildResult } from '../../src/cni/result.js';
import { addressOf, parsePrevResult } from '../../src/cni/prev-result.js';
import { CniError } from '../../src/cni/cni-error.js';
import { DEFAULT_CNI_SOCKET, type CniAddResponse } from '../../src/api/cni-protocol.js';

function codeOf(fn: () => unknown): { code: number; msg: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return { code: err.code, msg: err.message };
    throw err;
  }
  throw new Error('did not throw');
}

const ADD_ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const conf = (o: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'weave', type: 'weave-net', ...o });

t.test('environment: what each command needs, and clear refusals', async (t) => {
  t.same(parseInvocation(ADD_ENV), { command: 'ADD', containerId: 'abc123', ifName: 'eth0', netns: '/run/netns/x' });
  t.same(parseInvocation({ ...ADD_ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }), { command: 'DEL', containerId: 'abc123', ifName: 'eth0' }, 'DEL without a namespace');
  t.same(parseInvocation({ CNI_COMMAND: 'GC' }), { command: 'GC' }, 'GC needs no attachment');
  t.same(parseInvocation({ CNI_COMMAND: 'STATUS' }), { command: 'STATUS' });
  const cases: [Record<string, string>, RegExp][] = [
    [{}, /CNI_COMMAND is not set/],
    [{ CNI_COMMAND: 'ATTACH' }, /"ATTACH" is not a CNI command/],
    [{ ...ADD_ENV, CNI_CONTAINERID: '' }, /ADD needs CNI_CONTAINERID in the environment, and it is not set/],
    [{ CNI_COMMAND: 'CHECK' }, /CHECK needs CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS .* they are not set/],
    [{ ...ADD_ENV, CNI_CONTAINERID: '../etc' }, /not a valid container id/],
    [{ ...ADD_ENV, CNI_IFNAME: 'eth0/x' }, /not a valid interface name/],
    [{ ...ADD_ENV, CNI_IFNAME: 'a'.repeat(16) }, /longer than 15 bytes/],
    [{ ...ADD_ENV, CNI_NETNS: 'netns/x' }, /not an absolute path/],
    [{ ...ADD_ENV, CNI_ARGS: 'K8S_POD_NAME' }, /"K8S_POD_NAME" is not KEY=VALUE/],
    [{ ...ADD_ENV, CNI_ARGS: 'FOO=1' }, /FOO, which weave-net does not know/],
  ];
  for (const [env, msg] of cases) {
    const e = codeOf(() => parseInvocation(env));
    t.equal(e.code, 7, `code 7 for ${JSON.stringify(env)}`);
    t.match(e.msg, msg);
  }
  t.equal(validIfName('vethwepl1234567'), 'vethwepl1234567');
});

t.test('CNI_ARGS: Kubernetes pod identity; unknown keys only with IgnoreUnknown', async (t) => {
  t.same(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1234-5678;FOO=bar'),
    { namespace: 'default', name: 'web-0', uid: '1234-5678' });
  t.equal(parseCniArgs(''), undefined);
  t.equal(parseCniArgs('IgnoreUnknown=true;X=a=b'), undefined, 'a value may hold "="');
});

t.test('network config: versions, fields, and the code for each mistake', async (t) => {
  const c = parseNetConf(conf({ mtu: 1400, hairpinMode: false, socket: '/tmp/w.sock' }), 'ADD');
  t.same(c, { cniVersion: '1.0.0', name: 'weave', type: 'weave-net', socket: '/tmp/w.sock', hairpin: false, dns: {}, mtu: 1400 });
  const d = parseNetConf(conf({ mtu: 0, bridge: 'weave', ipam: {} }), 'DEL');
  t.equal(d.socket, DEFAULT_CNI_SOCKET, 'default socket');
  t.equal(d.hairpin, true, 'hairpin by default, as Weave');
  t.notOk('mtu' in d, 'mtu 0 means the daemon\'s');
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) t.equal(parseNetConf(conf({ cniVersion: v }), 'ADD').cniVersion, v);

  const cases: [string, string, number, RegExp][] = [
    ['{"cniVersion": "1.0.0",', 'ADD', 6, /not valid JSON/],
    ['', 'ADD', 6, /no network configuration on stdin/],
    ['[1]', 'ADD', 6, /must be a JSON object/],
    [conf({ cniVersion: '0.2.0' }), 'ADD', 1, /cniVersion 0.2.0 is not supported by weave-net \(it supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\)/],
    [conf({ cniVersion: '9.9.9' }), 'DEL', 1, /cniVersion 9.9.9 is not supported/],
    [conf({ cniVersion: undefined }), 'ADD', 1, /no "cniVersion" \(that means 0.1.0/],
    [conf({ cniVersion: 1 }), 'ADD', 4, /"cniVersion" must be a string/],
    [conf({ cniVersion: '0.3.1' }), 'CHECK', 1, /CHECK needs cniVersion 0.4.0 or later; this network configuration says 0.3.1/],
    [conf({ cniVersion: '1.0.0' }), 'GC', 1, /GC needs cniVersion 1.1.0 or later/],
    [conf({ cniVersion: '1.0.0' }), 'STATUS', 1, /STATUS needs cniVersion 1.1.0/],
    [conf({ name: undefined }), 'ADD', 4, /has no "name"/],
    [conf({ name: 'we ave' }), 'ADD', 4, /not a valid network name/],
    [conf({ type: '' }), 'ADD', 4, /"type" must name the plugin/],
    [conf({ socket: 'weave.sock' }), 'ADD', 4, /"socket" must be the absolute path/],
    [conf({ mtu: 20 }), 'ADD', 4, /"mtu" must be an integer from 576 to 65535/],
    [conf({ mtu: '1400' }), 'ADD', 4, /"mtu"/],
    [conf({ hairpinMode: 'yes' }), 'ADD', 4, /"hairpinMode" must be true or false/],
    [conf({ ipam: { type: 'host-local' } }), 'ADD', 2, /"ipam": .* is not supported/],
    [conf({ bridge: 'cni0' }), 'ADD', 2, /"bridge": "cni0" is not supported/],
    [conf({ isGateway: true }), 'ADD', 2, /"isGateway"/],
    [conf({ ipMasq: true }), 'ADD', 2, /"ipMasq"/],
    [conf({ runtimeConfig: { ips: ['10.32.0.9/12'] } }), 'ADD', 2, /"runtimeConfig.ips": .* is not supported/],
    [conf({ runtimeConfig: { Mac: 'aa:bb:cc:dd:ee:ff' } }), 'ADD', 2, /"runtimeConfig.mac"/],
    [conf({ runtimeConfig: 'x' }), 'ADD', 4, /"runtimeConfig" must be an object/],
    [conf({ runtimeConfig: { dns: { Servers: 'x' } } }), 'ADD', 4, /"runtimeConfig.dns.servers": want a list of strings/],
    [conf({ prevResult: [] }), 'CHECK', 4, /"prevResult" must be an object/],
    [conf({ cniVersion: '1.1.0' }), 'GC', 4, /GC needs "cni.dev\/valid-attachments"/],
    [conf({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'a' }] }), 'GC', 4, /\[0\] must be \{"containerID"/],
  ];
  for (const [text, command, code, msg] of cases) {
    const e = codeOf(() => parseNetConf(text, command as 'ADD'));
    t.equal(e.code, code, `code ${code}: ${text.slice(0, 90)} (${command})`);
    t.match(e.msg, msg);
  }
});

t.test('runtimeConfig with Kubernetes\' capitalised keys; dns from config and runtime', async (t) => {
  const c = parseNetConf(conf({
    dns: { nameservers: ['10.0.0.10'], domain: 'cluster.local', search: ['a.local'] },
    runtimeConfig: {
      dns: { Servers: ['10.96.0.10'], Searches: ['default.svc.cluster.local', 'svc.cluster.local'], Options: ['ndots:5'] },
      portMappings: [{ HostPort: 8080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }],
      bandwidth: { IngressRate: 1000, IngressBurst: 100, EgressRate: 1000, EgressBurst: 100 },
      Mac: '',
    },
  }), 'ADD');
  t.same(c.dns, { nameservers: ['10.96.0.10'], domain: 'cluster.local', search: ['default.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] });
  t.same(parseNetConf(conf({ runtimeConfig: { dns: { servers: ['1.1.1.1'] } } }), 'ADD').dns, { nameservers: ['1.1.1.1'] }, 'lower case too');
});

t.test('GC: the valid attachments under either of libcni\'s names; null is none', async (t) => {
  const att = [{ containerID: 'c1', ifname: 'eth0' }, { containerID: 'c2', ifname: 'net1' }];
  t.same(parseNetConf(conf({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': att }), 'GC').validAttachments,
    [{ containerId: 'c1', ifName: 'eth0' }, { containerId: 'c2', ifName: 'net1' }]);
  t.same(parseNetConf(conf({ cniVersion: '1.1.0', 'cni.dev/attachments': att.slice(0, 1) }), 'GC').validAttachments, [{ containerId: 'c1', ifName: 'eth0' }]);
  t.same(parseNetConf(conf({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': null }), 'GC').validAttachments, []);
});

const ADDED: CniAddResponse = {
  hostInterface: { name: 'vethwepla1b2c3d', mac: '12:34:56:78:9a:bc' },
  interface: { name: 'eth0', mac: '02:00:0a:20:00:05', sandbox: '/run/netns/x' },
  address: '10.32.0.5/12', gateway: '10.32.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }], mtu: 1376,
};

t.test('result: the shape of each version', async (t) => {
  const dns = { nameservers: ['10.96.0.10'] };
  t.same(buildResult('1.0.0', ADDED, {}), {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'vethwepla1b2c3d', mac: '12:34:56:78:9a:bc' }, { name: 'eth0', mac: '02:00:0a:20:00:05', sandbox: '/run/netns/x' }],
    ips: [{ address: '10.32.0.5/12', gateway: '10.32.0.1', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }],
    dns: {},
  });
  for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
    const r = buildResult(v, ADDED, dns);
    t.equal(r.cniVersion, v);
    t.same(r.ips, [{ version: '4', address: '10.32.0.5/12', gateway: '10.32.0.1', interface: 1 }], `${v}: ips carry version "4"`);
    t.same(r.dns, dns);
    t.notOk('mtu' in r.interfaces[1]!);
  }
  const r11 = buildResult('1.1.0', ADDED, {});
  t.same(r11.interfaces.map((i) => i.mtu), [1376, 1376], '1.1.0: interfaces carry their mtu');
  t.notOk('version' in r11.ips[0]!);
});

t.test('prevResult: the address of the interface asked about', async (t) => {
  const prev = parsePrevResult(JSON.parse(JSON.stringify(buildResult('1.0.0', ADDED, {}))));
  t.equal(addressOf(prev, 'eth0', '/run/netns/x'), '10.32.0.5/12');
  t.equal(addressOf(prev, 'eth1', '/run/netns/x'), undefined);
  t.equal(addressOf(prev, 'eth0', '/run/netns/other'), undefined, 'another sandbox');
  t.equal(addressOf(parsePrevResult({ ips: [{ version: '4', address: '10.32.0.9/12' }] }), 'eth0', '/x'), '10.32.0.9/12', 'a bare result');
});
