// The CNI service's decisions that need no kernel: an ADD never waits on IPAM for long (CNI
// runtimes time out), an allocation it gave up on is released when it arrives, STATUS says why
// ADD cannot succeed, and the attachments file round-trips and is set aside when damaged.
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniService, CniFailure, type CniIpam } from '../../src/api/cni-service.js';
import {
  applyRecordJournal, encodeRecordChange, gcVictims, orphans, parseRecords, recordsFromFiles, recordsToText, toAttachments, type AttachmentRecord,
} from '../../src/api/cni-records.js';
import { PodLinks } from '../../src/dataplane/host/pod-link.js';
import { recordsOnDisk } from '../lib/cni-records-on-disk.js';
import type { Result } from '../../src/ipam/service.js';
import { createLogger } from '../../src/log/logger.js';

const log = createLogger({ level: 'silent' });

/** An IPAM whose allocations complete only when the test says so. */
class SlowIpam implements CniIpam {
  readonly held = new Map<string, string>();
  private waiting = new Map<string, (r: Result<string>) => void>();
  statusText = 'awaiting consensus (quorum: 2, known: 1)';
  allocate(id: string): Promise<Result<string>> {
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }
  grant(id: string, cidr: string): void {
    this.held.set(id, cidr);
    this.waiting.get(id)!({ ok: true, value: cidr });
  }
  async release(id: string): Promise<Result<undefined>> {
    return this.held.delete(id) ? { ok: true, value: undefined } : { ok: false, status: 404, error: `no address for ${id}` };
  }
  lookup(id: string): string | undefined {
    return this.held.get(id);
  }
  status(): string {
    return this.statusText;
  }
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cni-service-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A runner that must not be reached: ADD fails before any link work in these tests.
const noLinks = new PodLinks(async (argv) => ({ code: 1, stdout: '', stderr: `unexpected command ${argv.join(' ')}` }));

t.test('ADD answers "try again later" with IPAM\'s status when IPAM cannot allocate in time', async (t) => {
  const dir = tempDir(t);
  const ipam = new SlowIpam();
  const svc = await CniService.open({
    ipam, links: noLinks, gateway: () => '10.32.0.1', bridge: 'weave', mtu: 1376,
    statePath: join(dir, 'cni.json'), socketPath: join(dir, 'weave.sock'), log, addWaitMs: 50,
  });
  t.same(svc.readiness(), { ready: false, reason: 'IPAM is not ready: awaiting consensus (quorum: 2, known: 1)' });
  const err = await svc.add({ containerId: 'c1', ifName: 'eth0', netns: '/run/netns/x' }).catch((e: unknown) => e);
  t.ok(err instanceof CniFailure);
  t.equal((err as CniFailure).code, 11);
  t.match((err as CniFailure).message, /no address yet for c1: IPAM is awaiting consensus/);
  // The allocation arrives after the ADD gave up: nobody holds it, so it is released.
  ipam.grant('c1', '10.32.0.9/12');
  await t.resolves(async () => {
    for (let i = 0; i < 100 && ipam.held.has('c1'); i++) await new Promise((r) => setTimeout(r, 10));
  });
  t.notOk(ipam.held.has('c1'), 'the late allocation is released');
  t.same(svc.attachments(), []);
});

t.test('STATUS: not ready until the bridge has its address', async (t) => {
  const dir = tempDir(t);
  const ipam = new SlowIpam();
  ipam.statusText = 'ready';
  let gateway: string | undefined;
  const svc = await CniService.open({ ipam, links: noLinks, gateway: () => gateway, bridge: 'weave', mtu: 1376, statePath: join(dir, 'cni.json'), socketPath: join(dir, 's.sock'), log });
  t.same(svc.readiness(), { ready: false, reason: 'bridge weave has no address yet' });
  const err = await svc.add({ containerId: 'c1', ifName: 'eth0', netns: '/run/netns/x' }).catch((e: unknown) => e);
  t.equal((err as CniFailure).code, 11);
  gateway = '10.32.0.1';
  t.same(svc.readiness(), { ready: true });
});

const rec = (id: string, mac = '02:00:00:00:00:01'): AttachmentRecord => ({ containerId: id, ifName: 'eth0', netns: `/run/netns/${id}`, hostIf: `vethwepl${id.slice(0, 7)}`, mac, cidr: '10.32.0.2/12' });

t.test('records: round trip, GC victims, orphans, weave ps', async (t) => {
  const records = [rec('bbbbbbbbbbbbbbbb'), rec('aaaaaaaaaaaaaaaa', '')];
  t.same(parseRecords(recordsToText(records)), [records[1], records[0]], 'sorted and complete');
  t.throws(() => parseRecords('{'), /not JSON/);
  t.throws(() => parseRecords('{"version":2,"attachments":[]}'), /not a version 1/);
  t.throws(() => parseRecords('{"version":1,"attachments":[{"containerId":1}]}'), /attachment 0 is malformed/);
  t.same(gcVictims(records, [{ containerId: 'aaaaaaaaaaaaaaaa', ifName: 'eth0' }]).map((r) => r.containerId), ['bbbbbbbbbbbbbbbb']);
  t.same(gcVictims(records, [{ containerId: 'aaaaaaaaaaaaaaaa', ifName: 'eth1' }]).length, 2, 'the interface name counts');
  t.same(orphans(records, new Set(['vethweplbbbbbbb']), new Set()).map((r) => r.containerId), ['aaaaaaaaaaaaaaaa']);
  t.same(orphans(records, new Set(), new Set(['aaaaaaaaaaaaaaaa'])).map((r) => r.containerId), ['bbbbbbbbbbbbbbbb'], 'a container being worked on is left alone');
  t.same(toAttachments(records).map((a) => [a.containerId, a.mac, a.cidr]), [['bbbbbbbbbbbbbbbb', '02:00:00:00:00:01', '10.32.0.2/12']], 'an ADD under way is not listed');
});

t.test('records journal: changes replay in order onto the snapshot; a torn last line is dropped, a bad one refused', async (t) => {
  const a = rec('aaaaaaaaaaaaaaaa');
  const b = rec('bbbbbbbbbbbbbbbb');
  const lines = [{ put: { ...b, mac: '', cidr: '' } }, { put: b }, { del: { containerId: a.containerId, ifName: 'eth0' } }, { put: { ...a, netns: '/run/netns/new' } }]
    .map((c) => encodeRecordChange(c)).join('');
  t.same(applyRecordJournal([a], lines), { records: [b, { ...a, netns: '/run/netns/new' }], applied: 4, torn: false });
  t.same(applyRecordJournal([a], `${lines}{"put":{"contai`), { records: [b, { ...a, netns: '/run/netns/new' }], applied: 4, torn: true }, 'a write cut short');
  t.same(applyRecordJournal([a], ''), { records: [a], applied: 0, torn: false });
  t.throws(() => applyRecordJournal([a], 'x\n'), /journal line 1 is not JSON/);
  t.throws(() => applyRecordJournal([a], `${lines}{"put":{"containerId":"c"}}\n`), /journal line 5 is malformed/);
  t.same(recordsFromFiles(recordsToText([a]), encodeRecordChange({ put: b })).records, [a, b]);
});

t.test('records made durable by the journal alone are there after a restart, and a snapshot empties the journal', async (t) => {
  const dir = tempDir(t);
  const statePath = join(dir, 'cni.json');
  const a = rec('aaaaaaaaaaaaaaaa');
  const b = rec('bbbbbbbbbbbbbbbb');
  writeFileSync(statePath, recordsToText([a]));
  writeFileSync(`${statePath}.journal`, `${encodeRecordChange({ put: b })}${encodeRecordChange({ del: a })}{"put":`);
  const svc = await CniService.open({ ipam: new SlowIpam(), links: noLinks, gateway: () => undefined, bridge: 'weave', mtu: 1376, statePath, socketPath: join(dir, 's.sock'), log });
  t.same(svc.attachments().map((x) => x.containerId), ['bbbbbbbbbbbbbbbb'], 'the journal applied, the torn line ignored');
  t.same(parseRecords(readFileSync(statePath, 'utf8')), [b], 'written whole at start');
  t.equal(readFileSync(`${statePath}.journal`, 'utf8'), '', 'and the journal emptied');
});

t.test('a damaged attachments file is set aside, not silently dropped', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'cni.json'), '{"version":1,"attachments":[');
  const svc = await CniService.open({ ipam: new SlowIpam(), links: noLinks, gateway: () => undefined, bridge: 'weave', mtu: 1376, statePath: join(dir, 'cni.json'), socketPath: join(dir, 's.sock'), log });
  t.same(svc.attachments(), []);
  t.match(readdirSync(dir).sort(), ['cni.json', 'cni.json.journal', /^cni\.json\.unreadable-/], 'kept aside; a new empty file in its place');
  t.same(parseRecords(readFileSync(join(dir, 'cni.json'), 'utf8')), []);
});

t.test('at start, a record left by an ADD that died before its link is made frees the address', async (t) => {
  const dir = tempDir(t);
  const ipam = new SlowIpam();
  ipam.statusText = 'ready';
  ipam.held.set('dead0000111', '10.32.0.4/12');
  ipam.held.set('alive000222', '10.32.0.5/12');
  ipam.held.set('other-use', '10.32.0.6/12');
  writeFileSync(join(dir, 'cni.json'), recordsToText([
    { ...rec('dead0000111', ''), cidr: '' },
    { ...rec('alive000222'), cidr: '10.32.0.5/12' },
  ]));
  // The host: only the live container's veth exists.
  const links = new PodLinks(async (argv) => {
    if (argv.join(' ') === 'ip -j link show type veth') return { code: 0, stdout: JSON.stringify([{ ifname: 'vethweplalive00' }, { ifname: 'eth9' }]), stderr: '' };
    if (argv[1] === '-d' && argv.at(-1) === 'vethwepldead000') return { code: 1, stdout: '', stderr: 'Device "vethwepldead000" does not exist.' };
    if (argv[0] === 'ip' && argv[1] === 'link' && argv[2] === 'del') return { code: 1, stdout: '', stderr: 'Cannot find device' };
    return { code: 1, stdout: '', stderr: `unexpected ${argv.join(' ')}` };
  });
  const svc = await CniService.open({ ipam, links, gateway: () => '10.32.0.1', bridge: 'weave', mtu: 1376, statePath: join(dir, 'cni.json'), socketPath: join(dir, 'weave.sock'), log });
  t.same(svc.attachments().map((a) => a.containerId), ['alive000222'], 'the unfinished ADD is not listed');
  await svc.reconcile();
  t.same([...ipam.held.keys()].sort(), ['alive000222', 'other-use'], 'the dead ADD\'s address is released; the live one and non-CNI ids are kept');
  t.same(recordsOnDisk(join(dir, 'cni.json')).map((r) => r.containerId), ['alive000222'], 'and its record is gone from disk');
});
