// The kernel fast path (UDP 6784): the shell around the pure parts. It keeps the VXLAN device as
// planned (vxlan-plan.ts), runs one heartbeat state machine per connection that offers fastdp
// (health.ts) with frames injected into and read from our TAP (heartbeat-frame.ts), and keeps the
// forwarding entries as planned from the forwarder's MAC table and those states (fdb-plan.ts).
//
// The entries are brought in line whenever something they depend on changes (a MAC learned or
// moved, a connection up or down, a health change) and every few seconds anyway, which also
// repairs whatever someone else changed and drops the entries of MACs that expired. Frames never
// pass through here: once the entries are in, the kernel carries them bridge to bridge.
import type { Logger } from '../../log/logger.js';
import type { PeerName } from '../../net/peer-name.js';
import type { Mac } from '../forwarder/mac.js';
import { runChecked, type Runner } from '../host/runner.js';
import { FastdpHealth, type HealthChange } from './health.js';
import { decodeHeartbeat, encodeHeartbeat, heartbeatMac, SMALL_HEARTBEAT_PAYLOAD, type Heartbeat } from './heartbeat-frame.js';
import { parseFdb, planFdb, type FdbPeer } from './fdb-plan.js';
import { parseVxlanProbe, planVxlan, VXLAN_NAME, VXLAN_PORT, VXLAN_VNI, type VxlanAction, type VxlanConfig } from './vxlan-plan.js';

export const FASTDP_HEARTBEAT_INTERVAL_MS = 500;
export const FASTDP_FAST_HEARTBEAT_MS = 200;
/** Heartbeats unanswered this long and the connection falls back to sleeve (Weave: 60 s). */
export const FASTDP_HEARTBEAT_TIMEOUT_MS = 4_000;
const RESYNC_INTERVAL_MS = 5_000;
/** At most one announcement of a MAC to a peer this often. */
const ANNOUNCE_INTERVAL_MS = 1_000;
const ANNOUNCE_MEMORY = 4_096;

export interface FastPathOptions {
  readonly self: PeerName;
  readonly bridge: string;
  readonly tap: string;
  /** The overlay MTU: the VXLAN device's, and the full heartbeat's size. */
  readonly mtu: number;
  /** Source address of the VXLAN packets ('' = chosen by the routes). */
  readonly local: string;
  readonly runner: Runner;
  readonly log: Logger;
  /** Writes a frame (no virtio header) into our TAP; false if it was dropped. */
  readonly inject: (frame: Buffer) => boolean;
  /** The forwarder's MAC table now. */
  readonly macs: () => Iterable<{ readonly mac: Mac; readonly peer: PeerName }>;
  readonly now?: () => number;
}

export interface FastPathPeer {
  readonly peer: PeerName;
  readonly ip: string;
  readonly connectionUid: bigint;
}

interface PeerState {
  readonly info: FastPathPeer;
  readonly health: FastdpHealth;
  readonly mac: Mac;
  timer?: NodeJS.Timeout;
}

export class FastPath {
  readonly stats = { heartbeatsSent: 0, heartbeatsAnswered: 0, answersSent: 0, toFastdp: 0, toSleeve: 0, fdbChanges: 0, fdbErrors: 0, announcements: 0 };
  readonly selfMac: Mac;
  /** Told when a peer's connection moves between fastdp and sleeve. */
  onChange?: (peer: PeerName, healthy: boolean, reason: string) => void;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly peers = new Map<PeerName, PeerState>();
  private readonly byUid = new Map<bigint, PeerState>();
  private readonly device: VxlanConfig;
  private syncing = false;
  private syncAgain = false;
  private syncTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private stopped = false;
  private readonly announced = new Map<string, number>();

  private constructor(private readonly options: FastPathOptions) {
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.selfMac = heartbeatMac(options.self);
    this.device = { name: VXLAN_NAME, vni: VXLAN_VNI, port: VXLAN_PORT, mtu: options.mtu, bridge: options.bridge, local: options.local };
  }

  /** Creates the VXLAN device on the bridge (which must exist). Rejects with what failed. */
  static async start(options: FastPathOptions): Promise<FastPath> {
    const fp = new FastPath(options);
    await fp.ensureDevice('initial setup');
    await fp.sync();
    fp.resyncTimer = setInterval(() => void fp.repair(), RESYNC_INTERVAL_MS);
    fp.resyncTimer.unref();
    return fp;
  }

  /** A connection that both ends offer fastdp on: heartbeats start. */
  peerUp(info: FastPathPeer): void {
    this.peerDown(info.peer);
    const state: PeerState = {
      info,
      mac: heartbeatMac(info.peer),
      health: new FastdpHealth({
        timeoutMs: FASTDP_HEARTBEAT_TIMEOUT_MS, intervalMs: FASTDP_HEARTBEAT_INTERVAL_MS, fastIntervalMs: FASTDP_FAST_HEARTBEAT_MS,
        mtu: this.options.mtu, port: VXLAN_PORT,
      }, this.now()),
    };
    this.peers.set(info.peer, state);
    this.byUid.set(info.connectionUid, state);
    this.scheduleSync();
    // The first heartbeat waits for the entries that carry it.
    this.scheduleHeartbeat(state, FASTDP_FAST_HEARTBEAT_MS);
  }

  peerDown(peer: PeerName): void {
    const state = this.peers.get(peer);
    if (!state) return;
    clearTimeout(state.timer);
    this.peers.delete(peer);
    this.byUid.delete(state.info.connectionUid);
    this.scheduleSync();
  }

  healthy(peer: PeerName): boolean {
    return this.peers.get(peer)?.health.healthy ?? false;
  }

  /** The forwarder learned, moved or forgot MACs: the entries follow soon. */
  macsChanged(): void {
    this.scheduleSync();
  }

  /**
   * A frame for our local MAC `mac` came over the sleeve from `peer` although the fast path to it
   * is healthy: `peer` does not know where `mac` is. Returns the announcement to send it over the
   * sleeve (at most one per MAC and peer a second), or undefined.
   */
  announcement(mac: Mac, peer: PeerName): Buffer | undefined {
    const state = this.peers.get(peer);
    if (state === undefined || !state.health.healthy) return undefined;
    const now = this.now();
    const key = `${mac}/${peer}`;
    if (now - (this.announced.get(key) ?? -Infinity) < ANNOUNCE_INTERVAL_MS) return undefined;
    if (this.announced.size >= ANNOUNCE_MEMORY) this.announced.clear();
    this.announced.set(key, now);
    this.stats.announcements++;
    return encodeHeartbeat({ dst: state.mac, src: mac, kind: 'announce', full: false, connectionUid: state.info.connectionUid, seq: 0 }, SMALL_HEARTBEAT_PAYLOAD);
  }

  /** Whether a captured frame is addressed to our heartbeat MAC (then give it to onFrame). */
  isHeartbeatFor(dst: Mac): boolean {
    return dst === this.selfMac;
  }

  /** A frame our TAP read that was addressed to our heartbeat MAC. */
  onFrame(packet: Uint8Array, offset: number): void {
    const hb = decodeHeartbeat(packet, offset);
    if (hb === undefined) return;
    const state = this.byUid.get(hb.connectionUid);
    if (state === undefined || hb.src !== state.mac) return;
    if (hb.kind === 'announce') return; // only ever sent over the sleeve
    if (hb.kind === 'request') {
      const size = hb.full ? this.options.mtu : SMALL_HEARTBEAT_PAYLOAD;
      this.send({ dst: state.mac, src: this.selfMac, kind: 'answer', full: hb.full, connectionUid: hb.connectionUid, seq: hb.seq }, size);
      this.stats.answersSent++;
      return;
    }
    if (hb.full) this.stats.heartbeatsAnswered++;
    this.changed(state, state.health.answered(hb.seq, hb.full, this.now()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.syncTimer);
    for (const s of this.peers.values()) clearTimeout(s.timer);
    this.peers.clear();
    this.byUid.clear();
    // Entries that outlive the daemon would carry frames nobody answers for: the device goes too.
    await this.options.runner(['ip', 'link', 'del', VXLAN_NAME]).catch(() => undefined);
  }

  // ---- heartbeats ----

  private scheduleHeartbeat(state: PeerState, delay: number): void {
    clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      if (this.stopped || this.peers.get(state.info.peer) !== state) return;
      this.changed(state, state.health.check(this.now()));
      const seq = state.health.nextSeq();
      const hb = { dst: state.mac, src: this.selfMac, kind: 'request', connectionUid: state.info.connectionUid, seq } as const;
      this.send({ ...hb, full: true }, this.options.mtu);
      this.send({ ...hb, full: false }, SMALL_HEARTBEAT_PAYLOAD);
      this.stats.heartbeatsSent++;
      this.scheduleHeartbeat(state, state.health.delayMs);
    }, delay);
    state.timer.unref();
  }

  private send(hb: Heartbeat, payload: number): void {
    this.options.inject(encodeHeartbeat(hb, payload));
  }

  private changed(state: PeerState, change: HealthChange | undefined): void {
    if (change === undefined) return;
    const peer = state.info.peer;
    const healthy = change.to === 'healthy';
    if (healthy) this.stats.toFastdp++;
    else this.stats.toSleeve++;
    const line = healthy
      ? `fastdp to ${peer} healthy: ${change.reason}; using fastdp (mtu ${this.options.mtu})`
      : `fastdp to ${peer} unhealthy: ${change.reason}; using sleeve`;
    this.log.info({ peer, from: change.from, to: change.to, reason: change.reason }, line);
    this.scheduleSync();
    this.onChange?.(peer, healthy, change.reason);
  }

  // ---- the device and the entries ----

  private async ensureDevice(why: string): Promise<void> {
    const r = await this.options.runner(['ip', '-d', '-j', 'link', 'show', 'dev', VXLAN_NAME]);
    const fixes = planVxlan(r.code === 0 ? parseVxlanProbe(r.stdout) : undefined, this.device);
    if (fixes.length === 0) return;
    await this.apply(fixes.flatMap((f) => f.actions));
    const problems = fixes.map((f) => f.problem);
    if (why === 'initial setup') this.log.debug({ fixed: problems }, `${VXLAN_NAME} set up`);
    else this.log.info({ fixed: problems, why }, `${VXLAN_NAME} repaired: ${problems.join('; ')}`);
  }

  private async apply(actions: readonly VxlanAction[]): Promise<void> {
    for (const a of actions) await runChecked(this.options.runner, [a.tool, ...a.line.split(' ')]);
  }

  private async repair(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.ensureDevice('periodic check');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, `cannot repair ${VXLAN_NAME}`);
    }
    this.scheduleSync(0);
  }

  private scheduleSync(delay = 20): void {
    if (this.stopped || this.syncTimer !== undefined) return;
    // A short delay gathers a burst of learned MACs into one batch.
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      void this.sync();
    }, delay);
    this.syncTimer.unref();
  }

  /** Brings the entries in line with the MAC table and the peers' health. Never runs twice at once. */
  private async sync(): Promise<void> {
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = true;
    try {
      do {
        this.syncAgain = false;
        await this.syncOnce();
      } while (this.syncAgain && !this.stopped);
    } catch (err) {
      this.stats.fdbErrors++;
      this.log.warn({ err: (err as Error).message }, `cannot program the forwarding entries of ${VXLAN_NAME}: ${(err as Error).message}`);
    } finally {
      this.syncing = false;
    }
  }

  private async syncOnce(): Promise<void> {
    const o = this.options;
    const shown = await runChecked(o.runner, ['bridge', '-j', 'fdb', 'show', 'br', o.bridge]);
    const peers = new Map<PeerName, FdbPeer>();
    for (const [name, s] of this.peers) peers.set(name, { ip: s.info.ip, offered: true, healthy: s.health.healthy, heartbeatMac: s.mac });
    const plan = planFdb({ vxlan: VXLAN_NAME, tap: o.tap, selfHeartbeatMac: this.selfMac, peers, macs: o.macs() }, parseFdb(shown, VXLAN_NAME, o.tap));
    if (plan.lines.length === 0 || this.stopped) return;
    // -force: one entry that cannot be changed (e.g. removed meanwhile) does not stop the others.
    const r = await o.runner(['bridge', '-force', '-batch', '-'], { input: `${plan.lines.join('\n')}\n` });
    this.stats.fdbChanges += plan.lines.length;
    if (r.code !== 0) throw new Error(`bridge -batch exited ${r.code}: ${r.stderr.trim().split('\n').slice(0, 3).join('; ')}`);
    this.log.debug({ added: plan.added, moved: plan.moved, removed: plan.removed, lines: plan.lines.length }, 'forwarding entries updated');
  }
}
