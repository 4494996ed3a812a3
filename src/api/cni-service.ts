// The daemon's side of the CNI plugin: ADD allocates the pod's address (the IPAM id is the
// container id, as Weave's) and makes its link; DEL undoes both and is fine with nothing to undo;
// CHECK compares link, address, route and IPAM with what ADD made; GC releases what the runtime no
// longer has. Every attachment is recorded on disk (<db-prefix>cni.json) before its link is made,
// so a daemon that dies in the middle of an ADD finds the record at start, sees no link, and frees
// the address: no address is ever held without a record that leads back to it.
import { readdir, readFile, rm } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import type { Result } from '../ipam/service.js';
import { StateStore } from '../ipam/state-store.js';
import { NetnsMissingError, type PodLinks } from '../dataplane/host/pod-link.js';
import { gratuitousArp, sendFrameOnLink } from '../dataplane/host/gratuitous-arp.js';
import { podVethNames, validateContainerId, validatePodIfName, type PodLinkSpec } from '../dataplane/host/pod-link-plan.js';
import {
  CniCode, pendingReleaseDir,
  type Attachment, type CniAddRequest, type CniAddResponse, type CniAttachmentKey, type CniCheckRequest, type CniDelRequest, type CniGcResponse, type CniRelay,
} from './cni-protocol.js';
import { pendingReleaseOf, replayVerdict, type PendingRelease } from './cni-exec-request.js';
import {
  attachmentKey, encodeRecordChange, gcVictims, orphans, recordsFromFiles, recordsToText, toAttachments,
  type AttachmentRecord, type RecordChange,
} from './cni-records.js';

/** A failure with the CNI code the plugin hands to the runtime. */
export class CniFailure extends Error {
  constructor(readonly code: number, message: string, readonly details?: string) {
    super(message);
  }
}

/** What the CNI service needs of IPAM (src/ipam/service.ts). */
export interface CniIpam {
  allocate(id: string): Promise<Result<string>>;
  release(id: string): Promise<Result<undefined>>;
  lookup(id: string): string | undefined;
  /** The allocator's `Status:` ("ready", "awaiting consensus ...", ...). */
  status(): string;
}

export interface CniServiceOptions {
  readonly ipam: CniIpam;
  readonly links: PodLinks;
  /** The bridge's address (weave:expose) without prefix, once it has one. */
  readonly gateway: () => string | undefined;
  readonly bridge: string;
  /** The overlay MTU, unless a request asks for another. */
  readonly mtu: number;
  /** `<db-prefix>cni.json`. */
  readonly statePath: string;
  /** The socket path, whose directory holds the releases the plugin wrote while we were down. */
  readonly socketPath: string;
  readonly log: Logger;
  /** Longest an ADD waits for IPAM before answering "try again later" (runtimes time out). */
  readonly addWaitMs?: number;
  /** Runs a relayed invocation (src/cni/relay.ts): the pending releases the executable wrote are replayed through it. */
  readonly relay?: CniRelay;
}

const DEFAULT_ADD_WAIT_MS = 3000;
/** Journal lines after which the records are written whole again (and the journal emptied). */
const JOURNAL_LIMIT = 100;

export class CniService {
  private readonly records = new Map<string, AttachmentRecord>();
  private readonly store: StateStore;
  /** Lines in the journal since the last snapshot. */
  private journalLines = 0;
  private readonly log: Logger;
  /** One operation at a time per container: the tail of each container's queue. */
  private readonly locks = new Map<string, Promise<void>>();
  /** Allocations an ADD gave up waiting for; a retry of the ADD joins them. */
  private readonly pendingAllocations = new Map<string, Promise<Result<string>>>();

  private constructor(private readonly options: CniServiceOptions) {
    this.store = new StateStore(options.statePath);
    this.log = options.log;
  }

  /** Loads the records (a damaged file is set aside with a log line, never silently dropped). */
  static async open(options: CniServiceOptions): Promise<CniService> {
    const service = new CniService(options);
    const loaded = await service.store.load();
    if (loaded.kind === 'found') {
      try {
        const { records, torn } = recordsFromFiles(loaded.text, loaded.journal);
        for (const r of records) service.records.set(attachmentKey(r), r);
        if (torn) service.log.warn({ path: service.store.journalPath }, 'the last CNI attachments journal line was cut short (a crash while it was written): ignored');
      } catch (err) {
        const aside = await service.store.setAside('unreadable');
        service.log.warn({ path: options.statePath, movedTo: aside }, `CNI attachments file set aside, starting without records: ${(err as Error).message}`);
      }
    }
    // A snapshot holding all of it, so that the journal starts empty beside an existing file
    // (the store reads a journal only beside a snapshot).
    await service.snapshot();
    return service;
  }

  attachments(): Attachment[] {
    return toAttachments(this.records.values());
  }

  /** Whether an ADD can succeed now; the reason when not. */
  readiness(): { ready: true } | { ready: false; reason: string } {
    const status = this.options.ipam.status();
    if (status !== 'ready') return { ready: false, reason: `IPAM is not ready: ${status}` };
    if (this.options.gateway() === undefined) return { ready: false, reason: `bridge ${this.options.bridge} has no address yet` };
    return { ready: true };
  }

  async add(req: CniAddRequest): Promise<CniAddResponse> {
    checkKey(req);
    if (typeof req.netns !== 'string' || req.netns === '') throw new CniFailure(CniCode.invalidEnvironment, 'CNI_NETNS is empty: ADD needs the pod\'s network namespace');
    if (!req.netns.startsWith('/')) throw new CniFailure(CniCode.invalidEnvironment, `CNI_NETNS "${req.netns.slice(0, 200)}" is not an absolute path`);
    if (req.hairpin !== undefined && typeof req.hairpin !== 'boolean') throw new CniFailure(CniCode.invalidNetworkConfig, 'hairpinMode must be true or false');
    const mtu = req.mtu ?? this.options.mtu;
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new CniFailure(CniCode.invalidNetworkConfig, `invalid mtu ${String(req.mtu)}: want 576-65535`);
    return this.locked(req.containerId, () => this.addLocked(req, mtu));
  }

  private async addLocked(req: CniAddRequest, mtu: number): Promise<CniAddResponse> {
    const key = attachmentKey(req);
    const hostIf = podVethNames(req.containerId).host;
    for (const r of this.records.values()) {
      if (r.containerId === req.containerId && r.ifName !== req.ifName) {
        throw new CniFailure(CniCode.internal, `container ${req.containerId} is attached already as ${r.ifName}: weave gives a container one interface`);
      }
      if (r.hostIf === hostIf && r.containerId !== req.containerId) {
        throw new CniFailure(CniCode.internal, `container ${req.containerId} would share veth ${hostIf} with container ${r.containerId} (same first 7 characters)`);
      }
    }
    const gateway = this.options.gateway();
    if (gateway === undefined) {
      throw new CniFailure(CniCode.tryAgainLater, `bridge ${this.options.bridge} has no address yet (IPAM: ${this.options.ipam.status()})`);
    }
    const before = this.records.get(key);
    // The record first, durable before IPAM is asked: a crash from here on leaves a record that
    // leads to the container's address (the IPAM id is the container id) and has no link, which
    // reconcile frees at start.
    const intent: AttachmentRecord = { containerId: req.containerId, ifName: req.ifName, netns: req.netns, hostIf, mac: before?.mac ?? '', cidr: before?.cidr ?? '' };
    const link = { containerId: req.containerId, ifName: req.ifName, netns: req.netns, gateway, mtu, hairpin: req.hairpin ?? true, bridge: this.options.bridge };
    // The address comes after the intent is on disk; the link work that needs no address runs
    // meanwhile (PodLinks.create), and every path below awaits it.
    const cidr = this.put(intent).then(() => this.address(req.containerId));
    try {
      // A container this node has no record of: made without probing first (PodLinks.create).
      let made = before === undefined ? await this.options.links.create(link, cidr) : undefined;
      const address = await cidr;
      made ??= await this.options.links.add({ ...link, address });
      if (made.repaired.length > 0) this.log.info({ containerId: req.containerId, repaired: made.repaired }, `pod link of ${req.containerId} repaired: ${made.repaired.join('; ')}`);
      // Not waited for: the intent already leads back to the address; address and MAC only feed
      // `weave ps` and CHECK, and the runtime's ADD need not wait for a second fdatasync.
      this.put({ ...intent, cidr: address, mac: made.podMac }).catch((err: unknown) => this.log.error({ err }, `cannot save the CNI attachments: ${(err as Error).message}`));
      if (made.created) {
        // After the answer is written: the runtime need not wait for the announcement.
        const podMac = made.podMac;
        setImmediate(() => this.announce(req.containerId, podMac, address));
      }
      this.log.info({ containerId: req.containerId, ifName: req.ifName, address, hostIf }, `attached ${req.containerId} (${req.ifName} ${address}) on ${hostIf}`);
      return {
        hostInterface: { name: made.hostName, mac: made.hostMac },
        interface: { name: req.ifName, mac: made.podMac, sandbox: req.netns },
        address,
        gateway,
        routes: [{ dst: '0.0.0.0/0', gw: gateway }],
        mtu,
      };
    } catch (err) {
      // An allocation still on its way must have arrived (or failed) before it is looked up.
      await cidr.catch(() => undefined);
      if (before === undefined) {
        // Nothing of this attachment existed before this ADD: nothing of it may stay.
        if (this.options.ipam.lookup(req.containerId) !== undefined) await this.options.ipam.release(req.containerId);
        await this.remove(req).catch((e: unknown) => this.log.error({ err: e }, 'cannot save the CNI attachments'));
      } else {
        await this.put(before).catch((e: unknown) => this.log.error({ err: e }, 'cannot save the CNI attachments'));
      }
      if (err instanceof CniFailure) throw err;
      if (err instanceof NetnsMissingError || err instanceof RangeError) throw new CniFailure(CniCode.invalidEnvironment, err.message);
      throw new CniFailure(CniCode.internal, `cannot attach ${req.containerId}: ${(err as Error).message}`);
    }
  }

  /** The pod's gratuitous ARP (gratuitous-arp.ts): best effort, a failure only logged. */
  private announce(containerId: string, mac: string, address: string): void {
    try {
      sendFrameOnLink(this.options.bridge, gratuitousArp(mac, address));
    } catch (err) {
      this.log.debug({ containerId, err: (err as Error).message }, `no gratuitous ARP for ${address}: ${(err as Error).message}`);
    }
  }

  /** The container's address: the one it has, or a new one, waiting for IPAM only a little. */
  private async address(containerId: string): Promise<string> {
    const held = this.options.ipam.lookup(containerId);
    if (held !== undefined) return held;
    let pending = this.pendingAllocations.get(containerId);
    if (pending === undefined) {
      pending = this.options.ipam.allocate(containerId);
      this.pendingAllocations.set(containerId, pending);
      const p = pending;
      void p.then((r) => {
        if (this.pendingAllocations.get(containerId) === p) this.pendingAllocations.delete(containerId);
        // An ADD that gave up on this allocation answered "try again later": unless an ADD has
        // since recorded the container, the address belongs to nobody.
        if (r.ok) void this.locked(containerId, async () => this.releaseUnrecorded(containerId));
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const waitMs = this.options.addWaitMs ?? DEFAULT_ADD_WAIT_MS;
    const gaveUp = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), waitMs); });
    const r = await Promise.race([pending, gaveUp]);
    clearTimeout(timer);
    if (r === undefined) throw new CniFailure(CniCode.tryAgainLater, `no address yet for ${containerId}: IPAM is ${this.options.ipam.status()}`);
    if (!r.ok) throw new CniFailure(CniCode.tryAgainLater, `no address for ${containerId}: ${r.error}`);
    return r.value;
  }

  private async releaseUnrecorded(containerId: string): Promise<void> {
    if ([...this.records.values()].some((r) => r.containerId === containerId)) return;
    if (this.options.ipam.lookup(containerId) === undefined) return;
    this.log.info({ containerId }, `released the address of ${containerId}: its ADD gave up waiting for it`);
    await this.options.ipam.release(containerId);
  }

  /** Idempotent: a container or link that is not there is fine, and so is a namespace that is gone. */
  async del(req: CniDelRequest): Promise<void> {
    checkKey(req);
    await this.locked(req.containerId, () => this.delLocked(req));
  }

  private async delLocked(req: CniAttachmentKey): Promise<boolean> {
    const key = attachmentKey(req);
    const mine = this.records.get(key);
    const others = [...this.records.values()].filter((r) => r.containerId === req.containerId && r.ifName !== req.ifName);
    if (mine === undefined && others.length > 0) return false; // another interface of the container: not this one
    const hostIf = podVethNames(req.containerId).host;
    const shared = [...this.records.values()].some((r) => r.hostIf === hostIf && r.containerId !== req.containerId);
    const removed = shared ? false : await this.options.links.removeHost(req.containerId);
    const held = this.options.ipam.lookup(req.containerId);
    if (held !== undefined) {
      const r = await this.options.ipam.release(req.containerId);
      if (!r.ok && this.options.ipam.lookup(req.containerId) !== undefined) throw new CniFailure(CniCode.tryAgainLater, `cannot release ${held} of ${req.containerId}: ${r.error}`);
    }
    if (mine !== undefined) {
      await this.remove(req);
    }
    if (mine !== undefined || removed || held !== undefined) {
      this.log.info({ containerId: req.containerId, ifName: req.ifName, address: held }, `detached ${req.containerId}${held ? ` and released ${held}` : ''}`);
    }
    return mine !== undefined || held !== undefined;
  }

  async check(req: CniCheckRequest): Promise<void> {
    checkKey(req);
    await this.locked(req.containerId, async () => {
      const r = this.records.get(attachmentKey(req));
      if (r === undefined || r.mac === '') throw new CniFailure(CniCode.unknownContainer, `container ${req.containerId} (${req.ifName}) is not attached to weave`);
      const held = this.options.ipam.lookup(req.containerId);
      if (held !== r.cidr) throw new CniFailure(CniCode.internal, `IPAM no longer holds ${r.cidr} for ${req.containerId}${held ? ` (it holds ${held})` : ''}`);
      if (req.address !== undefined && req.address !== r.cidr) throw new CniFailure(CniCode.internal, `the previous result's address ${req.address} is not the pod's ${r.cidr}`);
      const gateway = this.options.gateway();
      if (gateway === undefined) throw new CniFailure(CniCode.tryAgainLater, `bridge ${this.options.bridge} has no address yet`);
      const spec: PodLinkSpec = { containerId: r.containerId, ifName: r.ifName, netns: req.netns, address: r.cidr, gateway, mtu: this.options.mtu, hairpin: true, bridge: this.options.bridge };
      let problems: string[];
      try {
        // MTU and hairpin as ADD made them: the pod's current MTU is what it was given.
        const link = await this.options.links.hostLink(r.containerId);
        problems = await this.options.links.check({ ...spec, mtu: link?.mtu ?? spec.mtu, hairpin: link?.hairpin ?? true });
      } catch (err) {
        if (err instanceof NetnsMissingError || err instanceof RangeError) throw new CniFailure(CniCode.invalidEnvironment, err.message);
        throw err;
      }
      if (problems.length > 0) throw new CniFailure(CniCode.internal, `pod ${req.containerId} is not as ADD left it: ${problems.join('; ')}`);
    });
  }

  /** Releases every recorded attachment the runtime did not list, and removes its link. */
  async gc(valid: readonly CniAttachmentKey[]): Promise<CniGcResponse> {
    const released: CniAttachmentKey[] = [];
    for (const r of gcVictims(this.records.values(), valid)) {
      await this.locked(r.containerId, async () => {
        if (!this.records.has(attachmentKey(r)) || valid.some((v) => attachmentKey(v) === attachmentKey(r))) return;
        await this.delLocked(r);
        released.push({ containerId: r.containerId, ifName: r.ifName });
      });
    }
    if (released.length > 0) this.log.info({ released }, `CNI GC released ${released.length} attachment(s)`);
    return { released };
  }

  /**
   * Replays the releases the plugin recorded while the daemon was down, then frees the records
   * whose host link is gone. At start and periodically.
   */
  async reconcile(): Promise<void> {
    await this.replayPendingReleases();
    const veths = await this.options.links.hostVeths();
    for (const r of orphans(this.records.values(), veths, new Set(this.locks.keys()))) {
      await this.locked(r.containerId, async () => {
        if (!this.records.has(attachmentKey(r))) return;
        if ((await this.options.links.hostLink(r.containerId)) !== undefined) return;
        this.log.info({ containerId: r.containerId, hostIf: r.hostIf }, `${r.hostIf} of ${r.containerId} is gone: releasing ${r.cidr}`);
        await this.delLocked(r);
      });
    }
  }

  private async replayPendingReleases(): Promise<void> {
    const dir = pendingReleaseDir(this.options.socketPath);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    // Names starting with '.' are the plugin's files still being written.
    for (const name of names.filter((n) => n.endsWith('.json') && !n.startsWith('.'))) {
      const path = `${dir}/${name}`;
      let record: PendingRelease | undefined;
      try {
        record = pendingReleaseOf(JSON.parse(await readFile(path, 'utf8')));
      } catch {
        record = undefined;
      }
      if (record === undefined) {
        this.log.warn({ path }, `pending CNI release ${path} is unreadable: removed`);
      } else if (!(await this.replay(record, path))) {
        continue;
      }
      await rm(path, { force: true });
    }
  }

  /** Replays one release; false when it failed in a way worth retrying (the record is kept). */
  private async replay(record: PendingRelease, path: string): Promise<boolean> {
    try {
      if (record.kind === 'del') {
        await this.del(record.req);
      } else {
        if (this.options.relay === undefined) throw new Error('this daemon does not run relayed CNI commands');
        const out = await this.options.relay(record.req);
        const verdict = replayVerdict(out);
        if (verdict === 'retry') throw new Error(out.stderr ?? out.stdout);
        if (verdict === 'refused') {
          this.log.warn({ path }, `pending CNI release ${path} was refused, removed: ${out.stderr ?? out.stdout}`);
          return true;
        }
      }
    } catch (err) {
      this.log.warn({ err, path }, `pending CNI release ${path} failed, kept for the next round: ${(err as Error).message}`);
      return false;
    }
    const who = record.kind === 'del' ? record.req.containerId : record.req.env.CNI_CONTAINERID ?? '?';
    this.log.info({ containerId: who }, `replayed the DEL of ${who} the plugin recorded while the daemon was down`);
    return true;
  }

  /** Sets a record and makes it durable: one journal line, and a snapshot now and then. */
  private put(record: AttachmentRecord): Promise<void> {
    this.records.set(attachmentKey(record), record);
    return this.journal({ put: record });
  }

  /** Deletes a record durably. */
  private remove(key: CniAttachmentKey): Promise<void> {
    this.records.delete(attachmentKey(key));
    return this.journal({ del: { containerId: key.containerId, ifName: key.ifName } });
  }

  private async journal(change: RecordChange): Promise<void> {
    await this.store.append(encodeRecordChange(change));
    if (++this.journalLines >= JOURNAL_LIMIT) {
      // Not waited for: the change is durable already; the snapshot only keeps the journal short.
      this.snapshot().catch((err: unknown) => this.log.error({ err }, `cannot save the CNI attachments: ${(err as Error).message}`));
    }
  }

  /** Writes every record as the snapshot, which empties the journal. */
  private snapshot(): Promise<void> {
    this.journalLines = 0;
    return this.store.save(() => recordsToText(this.records.values()));
  }

  /** Runs fn after every earlier operation on the same container. */
  private locked<T>(containerId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(containerId) ?? Promise.resolve();
    const run = prev.then(fn);
    const tail = run.then(() => undefined, () => undefined);
    this.locks.set(containerId, tail);
    void tail.then(() => {
      if (this.locks.get(containerId) === tail) this.locks.delete(containerId);
    });
    return run;
  }
}

function checkKey(k: CniAttachmentKey): void {
  try {
    if (typeof k.containerId !== 'string') throw new RangeError('CNI_CONTAINERID is missing');
    if (typeof k.ifName !== 'string') throw new RangeError('CNI_IFNAME is missing');
    validateContainerId(k.containerId);
    validatePodIfName(k.ifName);
  } catch (err) {
    throw new CniFailure(CniCode.invalidEnvironment, (err as Error).message);
  }
}

