// The node's data plane: bridge `weave`, its TAP port `vethwe-tap`, and the sleeve on UDP 6783
// (DESIGN §6). A shell around the pure parts: the forwarder decides where a frame goes, the
// sleeve links pack and unpack it, the host plumbing keeps bridge and rules as configured.
//
// A captured frame meets, in order:
//   1. the TAP reader (a Worker) hands [virtio_net_hdr][frame] to onCaptured;
//   2. the forwarder learns its source MAC and picks next hops (unicast or the broadcast tree);
//   3. each next hop's OutboundLink numbers, seals (with a password) and chunks it; one send each.
// A datagram meets, in order (in the TAP reader Worker, which alone reads the socket too: receiver/):
//   1. splitDatagram cuts it into chunks (UDP_GRO may have coalesced several);
//   2. the chunk's connection UID picks the InboundLink, which reassembles, opens and checks replay;
//   3. a frame for one of our MACs (or a group MAC) is written into the TAP by the Worker itself;
//      everything else, and group frames to flood on, is posted to this thread decoded;
//   4. here heartbeats are answered; frames go to the forwarder, which injects them into the TAP
//      and/or relays them toward their destination peer.
// The common case of the first list, a unicast from one of our MACs to a MAC at a peer whose
// link is established, never reaches this thread: the TAP reader Worker decides, packs and sends it
// itself (sender/), from a snapshot of the forwarder's state this thread posts when it changes.
// Both threads number a link's messages from one shared counter (sleeve/sequence-counter.ts).
// With the fast path (fastdp/), frames to MACs at peers whose connection is on fastdp never reach
// the TAP: the bridge sends them into vxlan-6784. Only the fast path's heartbeats, addressed to
// our heartbeat MAC, are taken out of the captured frames before the forwarder sees them.
import type { Logger } from '../log/logger.js';
import { peerNameFromNumber, peerNameToNumber, type PeerName } from '../net/peer-name.js';
import type { Routes } from '../mesh/routes.js';
import type { LinkState, Overlay, OverlayConnection as PeerLink } from '../mesh/overlay.js';
import { TapDevice } from './tap/tap-device.js';
import { VIRTIO_NET_HDR_LEN } from './tap/virtio-net-hdr.js';
import { createOffloadUdpFd, encodeSockaddr } from './tap/udp-offload.js';
import { closeFd, errnoName, sendToFd } from './tap/libc.js';
import { Forwarder } from './forwarder/forwarder.js';
import { frameMacs, isGroupMac, type Mac } from './forwarder/mac.js';
import { describeForwarderEvent } from './forwarder/events.js';
import { HostBridge } from './host/bridge.js';
import { HostIptables, type IptablesMode } from './host/iptables.js';
import { localRunner, runChecked, type Runner } from './host/runner.js';
import { readBridgeView, type BridgeView } from './host/bridge-view.js';
import { MessageKind, chunkStride, overlayMtu } from './sleeve/header.js';
import { OutboundLink, singleChunkBody } from './sleeve/outbound.js';
import { gsoSplit, GsoSplitError } from './sleeve/gso-split.js';
import { FrameSealer, deriveFrameKeys } from './sleeve/frame-crypto.js';
import { SequenceCounter } from './sleeve/sequence-counter.js';
import { planSnapshot, snapshotSignature, type LinkView } from './sender/snapshot.js';
import type { SenderNote } from './sender/worker-sender.js';
import type { ReceiverLink } from './receiver/plan.js';
import type { ReceiverNote } from './receiver/sleeve-receiver.js';
import { formatCidr, type Cidr } from '../net/ipv4.js';
import { FastPath } from './fastdp/fast-path.js';
import { vxlanFits, VXLAN_OVERHEAD } from './fastdp/vxlan-plan.js';
import { LRUCache } from 'lru-cache';

export const BRIDGE_NAME = 'weave';
export const TAP_NAME = 'vethwe-tap';
const FAST_HEARTBEAT_MS = 500;
const SLOW_HEARTBEAT_MS = 10_000;
/** Silence on the sleeve for this long and the link is no longer established (Weave: 60 s). */
const HEARTBEAT_TIMEOUT_MS = 60_000;
const REPAIR_INTERVAL_MS = 10_000;
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Heartbeats unanswered this long get one log line with the likely causes. */
const UNANSWERED_WARNING_MS = 10_000;
/** A drop reason reaching this count gets one log line (a few drops are normal; many are a fault). */
export const DROP_LOG_THRESHOLD = 100;
const BRIDGE_VIEW_CACHE_MS = 1000;
/**
 * The Worker's snapshot is replanned on every change, and at least this often, so that MAC
 * entries that expired on this thread stop being sent to by the Worker too.
 */
const SNAPSHOT_REFRESH_MS = 1000;
/**
 * Peer names converted to and from their 48-bit numbers, remembered: every frame needs two each
 * way (string parsing and formatting, ~0.5 us each). Bounded (LRU), since numbers come off the
 * network; a mesh has far fewer peers than this.
 */
const PEER_NAME_CACHE_SIZE = 4096;
/** Host ends of pod veths made by the CNI plugin: `weave reset` removes them with the bridge. */
const POD_VETH_PREFIX = 'vethwepl';

export interface DataPlaneOptions {
  readonly self: PeerName;
  /** Address the sleeve's UDP socket binds ('' = all). */
  readonly host: string;
  readonly port: number;
  /** Overlay MTU of the bridge and pods (WEAVE_MTU). */
  readonly mtu: number;
  /** The underlay's MTU, which decides the chunk size on the wire. */
  readonly underlayMtu: number;
  readonly range: Cidr;
  /**
   * TAP offloads (virtio_net_hdr, checksum and TSO): on by default. Off, the TAP carries plain
   * frames, and super-frames from peers that have offloads are segmented here, in userspace.
   */
  readonly offloads?: boolean;
  /** The iptables backend to use; detected from the host's rules when absent. */
  readonly iptablesBackend?: IptablesMode;
  /**
   * The kernel VXLAN fast path (UDP 6784) to peers that offer it too; off with --no-fastdp, and
   * never used on an encrypted connection (it would carry pod traffic in clear).
   */
  readonly fastdp?: boolean;
  readonly log: Logger;
  readonly now?: () => number;
  /**
   * How host commands (ip, tc, iptables) are run: the daemon gives its Spawner's, so that they are
   * not forks of the daemon (host/spawner.ts); in this process's namespaces by default.
   */
  readonly runner?: Runner;
}


interface Link {
  readonly info: PeerLink;
  /** What the TAP reader Worker needs to send on this link too. */
  readonly view: LinkView['link'];
  readonly out: OutboundLink;
  /** What the TAP reader Worker needs to open this link's datagrams. */
  readonly receive: ReceiverLink;
  readonly sockaddr: Uint8Array;
  established: boolean;
  lastHeard: number;
  since: number;
  warned: boolean;
  timer?: NodeJS.Timeout;
}

export class DataPlane implements Overlay {
  readonly stats = {
    captured: 0, injected: 0, sent: 0, sendErrors: 0, received: 0, dropped: 0, malformed: 0, unknownConnection: 0,
    capturedBytes: 0, injectedBytes: 0, sentBytes: 0, receivedBytes: 0,
  };
  /** Datagrams and frames dropped, by reason (sleeve refusals such as 'replay' or 'authentication' too). */
  readonly drops = new Map<string, number>();
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly runner: Runner;
  private readonly forwarder: Forwarder;
  private readonly links = new Map<PeerName, Link>();
  /** Links by connection uid in decimal, as the TAP reader Worker names them. */
  private readonly byKey = new Map<string, Link>();
  private readonly peerNumbers = new LRUCache<PeerName, number>({ max: PEER_NAME_CACHE_SIZE });
  private readonly peerNames = new LRUCache<number, PeerName>({ max: PEER_NAME_CACHE_SIZE });
  private readonly stride: number;
  private bridge: HostBridge;
  private fastPath?: FastPath;
  private repairTimer?: NodeJS.Timeout;
  private snapshotTimer?: NodeJS.Timeout;
  private snapshotPending = false;
  private snapshotSent = '';
  private stopped = false;
  /** Told when a link becomes established or stops being so. */
  onLinkState?: (peer: PeerName, state: LinkState) => void;

  private constructor(
    private readonly options: DataPlaneOptions,
    private readonly tap: TapDevice,
    /** The sleeve's UDP socket: the TAP reader Worker reads it, both threads send on it. */
    private readonly udpFd: number,
    private readonly iptables: HostIptables,
  ) {
    this.log = options.log;
    this.runner = options.runner ?? localRunner();
    this.now = options.now ?? Date.now;
    this.stride = chunkStride(options.underlayMtu);
    this.forwarder = new Forwarder({ self: options.self, routes: { unicast: new Map(), broadcast: () => [] } });
    this.bridge = new HostBridge(this.runner, { name: BRIDGE_NAME, mtu: options.mtu, port: TAP_NAME });
  }

  /** Creates the TAP, the bridge, the rules and the sleeve socket. Rejects with a clear message. */
  static async start(options: DataPlaneOptions): Promise<DataPlane> {
    const offloads = options.offloads ?? true;
    const udpFd = createOffloadUdpFd({
      address: options.host || '0.0.0.0', port: options.port, gro: true, dontFragment: true,
      segmentSize: chunkStride(options.underlayMtu),
      recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES,
    });
    let tap;
    try {
      // The reader sends the common frames itself on the sleeve socket (stop() closes it after the TAP).
      // ...and receives on it, injecting the common frames itself (receiver/).
      tap = await TapDevice.open({ name: TAP_NAME, vnetHdr: offloads, offloads, sender: { udpFd }, receiver: { udpFd } });
    } catch (err) {
      closeFd(udpFd);
      throw err;
    }
    let dp: DataPlane;
    try {
      const iptables = await HostIptables.create(options.runner ?? localRunner(), { range: formatCidr(options.range), bridge: BRIDGE_NAME }, options.iptablesBackend);
      dp = new DataPlane(options, tap, udpFd, iptables);
    } catch (err) {
      await tap.close();
      closeFd(udpFd);
      throw err;
    }
    try {
      await dp.repair('initial setup');
      if (options.fastdp === true) await dp.startFastPath();
    } catch (err) {
      await dp.stop(); // the Workers, the TAP and the socket: nothing left running
      throw err;
    }
    tap.onError((err) => dp.log.error({ err }, 'TAP reader failed'));
    tap.onFrames((packet) => dp.onCaptured(packet));
    tap.onSenderNote((note) => dp.onSenderNote(note));
    tap.onReceiverNote((note) => dp.onReceiverNote(note));
    dp.snapshotTimer = setInterval(() => dp.publishSnapshot(), SNAPSHOT_REFRESH_MS);
    dp.snapshotTimer.unref();
    dp.repairTimer = setInterval(() => void dp.repair('periodic check'), REPAIR_INTERVAL_MS);
    dp.repairTimer.unref();
    return dp;
  }

  /**
   * The bridge's MAC and neighbour table, for `weave ps`. One read serves every request within a
   * second: ps is served on the metrics address too, and must not let callers spawn processes at will.
   */
  bridgeView(): Promise<BridgeView> {
    const now = this.now();
    if (this.bridgeViewCache === undefined || now - this.bridgeViewCache.at >= BRIDGE_VIEW_CACHE_MS) {
      this.bridgeViewCache = { at: now, view: readBridgeView(this.runner, BRIDGE_NAME) };
    }
    return this.bridgeViewCache.view;
  }

  private bridgeViewCache?: { at: number; view: Promise<BridgeView> };

  /**
   * `weave reset`: stops the data path, then removes what it made on the host: the bridge, the
   * TAP (deleted when its fd closes), the pods' `vethwepl*` links and the iptables chains.
   * Returns what it removed, for the operator's message; a step that fails is reported, not thrown.
   */
  async teardown(): Promise<string[]> {
    await this.stop();
    const runner = this.runner;
    const done: string[] = [];
    const step = async (what: string, fn: () => Promise<boolean>): Promise<void> => {
      try {
        if (await fn()) done.push(what);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, `reset: cannot remove ${what}`);
        done.push(`${what} NOT removed (${(err as Error).message})`);
      }
    };
    done.push(`TAP ${TAP_NAME}`);
    await step(`bridge ${BRIDGE_NAME}`, () => this.bridge.remove());
    await step('pod veths', async () => {
      const links = JSON.parse(await runChecked(runner, ['ip', '-j', 'link', 'show', 'type', 'veth'])) as { ifname?: string }[];
      const pods = links.map((l) => l.ifname ?? '').filter((n) => n.startsWith(POD_VETH_PREFIX));
      for (const name of pods) await runChecked(runner, ['ip', 'link', 'del', name]);
      return pods.length > 0;
    });
    await step('iptables chains', async () => (await this.iptables.remove()).length > 0);
    return done;
  }

  /** Whether this node offers fastdp to its peers (it was asked to, and the MTU allows). */
  get fastdpOffered(): boolean {
    return this.fastPath !== undefined;
  }

  private async startFastPath(): Promise<void> {
    const o = this.options;
    if (!vxlanFits(o.mtu, o.underlayMtu)) {
      this.log.warn({ mtu: o.mtu, underlayMtu: o.underlayMtu },
        `fastdp off: the overlay MTU ${o.mtu} plus ${VXLAN_OVERHEAD} bytes of VXLAN does not fit the underlay MTU ${o.underlayMtu} (lower --mtu or raise --underlay-mtu); every connection uses sleeve`);
      return;
    }
    try {
      this.fastPath = await FastPath.start({
        self: o.self, bridge: BRIDGE_NAME, tap: TAP_NAME, mtu: o.mtu, local: o.host, runner: this.runner, log: this.log,
        inject: (frame) => this.tap.writeFrame(frame),
        macs: () => this.forwarder.macs.entries(this.now()),
        now: this.now,
      });
    } catch (err) {
      this.log.error({ err: (err as Error).message }, `fastdp off: cannot set up its VXLAN device: ${(err as Error).message}; every connection uses sleeve`);
      return;
    }
    this.fastPath.onChange = (peer, healthy, reason) => {
      const link = this.links.get(peer);
      if (link?.established) this.reportLink(link, healthy ? `fastdp: ${reason}` : `fastdp: ${reason}; sleeve carries the frames`);
    };
  }

  /** For the metrics endpoint. */
  counters(): { stats: Readonly<Record<string, number>>; drops: ReadonlyMap<string, number> } {
    // This thread's counts plus the TAP reader's, which sends most unicast frames itself, and the
    // receiver's, which receives everything and injects most frames itself.
    const stats: Record<string, number> = { ...this.stats };
    const drops = new Map(this.drops);
    for (const worker of [this.tap.senderCounters(), this.tap.receiverCounters()]) {
      if (worker === undefined) continue;
      for (const [k, v] of Object.entries(worker.stats)) stats[k] = (stats[k] ?? 0) + v;
      for (const [reason, n] of worker.drops) {
        drops.set(reason, (drops.get(reason) ?? 0) + n);
        stats['dropped'] = (stats['dropped'] ?? 0) + n;
      }
    }
    return { stats, drops };
  }

  /** The bridge's own address from IPAM (weave:expose): the pods' gateway. */
  async setBridgeAddress(cidr: string): Promise<void> {
    this.bridge = new HostBridge(this.runner, { name: BRIDGE_NAME, mtu: this.options.mtu, port: TAP_NAME, address: cidr });
    await this.repair(`bridge address ${cidr}`);
  }

  setRoutes(routes: Routes): void {
    this.forwarder.setRoutes(routes);
    this.scheduleSnapshot();
  }

  /** A mesh connection is up: start heartbeats on the sleeve. */
  connectionUp(info: PeerLink): void {
    this.connectionDown(info.peer);
    let sealer: FrameSealer | undefined;
    let sendKey: Uint8Array | undefined;
    let receiveKey: Uint8Array | undefined;
    // One counter for this thread and the TAP reader, which sends on the link too.
    const sequence = SequenceCounter.create();
    if (info.sessionKey) {
      const keys = deriveFrameKeys(info.sessionKey, info.connectionUid, info.weDialled);
      sendKey = keys.send;
      sealer = new FrameSealer(keys.send, info.weDialled, { sequence });
      receiveKey = keys.receive;
    }
    let sockaddr: Uint8Array;
    try {
      sockaddr = encodeSockaddr(info.remoteIp, info.remotePort);
    } catch (err) {
      this.log.error({ peer: info.peer, err: (err as Error).message }, `no sleeve to ${info.peer}: ${(err as Error).message}`);
      return;
    }
    const link: Link = {
      info,
      view: {
        key: info.connectionUid.toString(), connectionUid: info.connectionUid, weDialled: info.weDialled, stride: this.stride,
        remoteIp: info.remoteIp, remotePort: info.remotePort, sequence: sequence.buffer, ...(sendKey ? { sendKey } : {}),
      },
      out: new OutboundLink({ connectionUid: info.connectionUid, weDialled: info.weDialled, stride: this.stride, ...(sealer ? { sealer } : { sequence }) }),
      receive: { key: info.connectionUid.toString(), connectionUid: info.connectionUid, weDialled: info.weDialled, ...(receiveKey ? { receiveKey } : {}) },
      sockaddr,
      established: false,
      lastHeard: this.now(),
      since: this.now(),
      warned: false,
    };
    this.links.set(info.peer, link);
    this.byKey.set(link.receive.key, link);
    this.publishSnapshot(); // at once: the TAP reader must know the link before its first heartbeat
    this.scheduleHeartbeat(link, 0);
    if (this.fastPath && info.sessionKey === undefined && (info.remoteOverlays ?? []).includes('fastdp')) {
      this.fastPath.peerUp({ peer: info.peer, ip: info.remoteIp, connectionUid: info.connectionUid });
    }
  }

  connectionDown(peer: PeerName): void {
    const link = this.links.get(peer);
    if (!link) return;
    clearTimeout(link.timer);
    this.links.delete(peer);
    this.byKey.delete(link.receive.key);
    this.fastPath?.peerDown(peer);
    const gone = this.forwarder.peerGone(peer);
    if (gone > 0) this.log.debug({ peer, macs: gone }, 'forgot the MACs of a peer');
    this.publishSnapshot(); // at once: the Worker must stop sending on this link
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.repairTimer);
    clearInterval(this.snapshotTimer);
    for (const peer of [...this.links.keys()]) this.connectionDown(peer);
    await this.fastPath?.stop();
    // The TAP reader sends and receives on the socket's fd: it must have stopped before the fd is closed.
    await this.tap.close();
    closeFd(this.udpFd);
  }

  /** Keeps bridge and rules as configured; logs what had to be fixed. */
  private async repair(why: string): Promise<void> {
    if (this.stopped) return;
    try {
      const bridge = await this.bridge.ensure();
      if (bridge.fixed.length > 0) this.log.info({ fixed: bridge.fixed, why }, `bridge repaired: ${bridge.fixed.join('; ')}`);
      for (const w of bridge.warnings) this.log.warn({ why }, w);
      for (const u of bridge.unfixable) this.log.error({ why }, `bridge problem: ${u}`);
      const rules = await this.iptables.ensure();
      if (rules.length > 0) this.log.info({ fixed: rules, why }, `iptables rules repaired: ${rules.join('; ')}`);
    } catch (err) {
      this.log.error({ err, why }, 'cannot set up the bridge or the iptables rules');
      if (why === 'initial setup') throw err;
    }
  }

  // ---- frames from our pods ----

  private onCaptured(packet: Uint8Array): void {
    this.stats.captured++;
    this.stats.capturedBytes += packet.length;
    const offset = this.tap.headerLength;
    if (packet.length < offset + 14) return;
    const macs = frameMacs(packet, offset);
    if (this.fastPath?.isHeartbeatFor(macs.dst)) {
      this.fastPath.onFrame(packet, offset);
      return;
    }
    const decision = this.forwarder.onCaptured(macs, this.now());
    this.logEvents(decision.events);
    if (decision.sends.length === 0) {
      if (decision.dropped !== undefined) this.drop(decision.dropped);
      return;
    }
    // One copy out of the shared ring first: it starts aligned, so V8 copies it fast, while the
    // chunker's many small copies straight from shared memory were slow (measured 35 us vs 4.5).
    const frame = Buffer.allocUnsafe(packet.length);
    frame.set(packet);
    for (const send of decision.sends) this.sendFrame(send.nextHop, send.srcPeer, send.dstPeer, frame, this.tap.vnetHdr);
  }

  private sendFrame(nextHop: PeerName, srcPeer: PeerName, dstPeer: PeerName, packet: Uint8Array, vnetHdr: boolean): void {
    const link = this.links.get(nextHop);
    if (!link || !link.established) {
      this.drop('no-established-link');
      return;
    }
    this.send(link, MessageKind.Frame, packet, vnetHdr, srcPeer, dstPeer);
  }

  private send(link: Link, kind: MessageKind, body: Uint8Array, vnetHdr: boolean, src: PeerName = this.options.self, dst: PeerName = link.info.peer): void {
    let buffers: Buffer[];
    try {
      buffers = link.out.pack({ kind, srcPeer: this.peerNumber(src), dstPeer: this.peerNumber(dst), vnetHdr, body });
    } catch (err) {
      this.drop('cannot-pack');
      this.log.warn({ peer: link.info.peer, err: (err as Error).message }, 'cannot send on the sleeve');
      return;
    }
    for (const b of buffers) {
      // Synchronous, as the TAP reader's: a full socket buffer (EAGAIN) drops the datagram, as the
      // kernel would further on.
      const n = sendToFd(this.udpFd, b, b.length, link.sockaddr);
      if (n < 0) {
        this.countSendError(link, errnoName(-n));
        continue;
      }
      this.stats.sent++;
      this.stats.sentBytes += b.length;
    }
  }

  // ---- datagrams from peers (opened by the TAP reader Worker) ----

  private onReceiverNote(note: ReceiverNote): void {
    switch (note.type) {
      case 'message': {
        const link = this.byKey.get(note.link);
        if (link === undefined) return; // the connection went down meanwhile
        const now = this.now();
        link.lastHeard = now;
        switch (note.kind) {
          case MessageKind.Heartbeat:
            this.send(link, MessageKind.HeartbeatAck, this.heartbeatBody(link), false);
            return;
          case MessageKind.HeartbeatAck:
            if (!link.established) this.setEstablished(link, true, 'heartbeat answered');
            return;
          case MessageKind.Frame:
            this.onFrame(link, note.body, note.vnetHdr, this.peerName(note.srcPeer), this.peerName(note.dstPeer), now, note.injected);
            return;
        }
        return;
      }
      case 'seen':
        // The Worker injected frames from this MAC: learn or refresh it as if they had passed here.
        this.onAnnouncement(note.mac, this.peerName(note.peer), this.now());
        return;
      case 'malformed':
        this.log.warn({ from: note.from, reason: note.reason, total: note.total }, `dropped malformed sleeve datagrams (${note.total} so far)`);
        return;
      case 'drops':
        this.log.warn({ reason: note.reason, total: note.total }, `sleeve dropped ${note.total} frames or datagrams for reason ${note.reason}; see weave_sleeve_dropped_total`);
        return;
      case 'snapshot-error':
        this.log.error({ err: note.message }, `the sleeve receiver cannot use the links it was given: ${note.message}; datagrams are dropped until the next change`);
        return;
    }
  }

  /** `injected`: the TAP reader Worker has injected it already (a group frame): only flood it on. */
  private onFrame(link: Link, packet: Uint8Array, vnetHdr: boolean, srcPeer: PeerName, dstPeer: PeerName, now: number, injected: boolean): void {
    const offset = vnetHdr ? VIRTIO_NET_HDR_LEN : 0;
    if (packet.length < offset + 14) return;
    const macs = frameMacs(packet, offset);
    if (dstPeer === this.options.self && this.fastPath?.isHeartbeatFor(macs.dst)) {
      this.onAnnouncement(macs.src, srcPeer, now);
      return;
    }
    const decision = this.forwarder.onReceived(macs, { srcPeer, dstPeer }, link.info.peer, now);
    this.logEvents(decision.events);
    if (decision.inject && !injected) this.inject(packet, vnetHdr);
    // A unicast for one of our MACs over the sleeve from a peer on a healthy fast path: that peer
    // has no forwarding entry for the MAC (see heartbeat-frame.ts), so tell it where the MAC is.
    if (this.fastPath && decision.inject && decision.sends.length === 0 && srcPeer === link.info.peer && !isGroupMac(macs.dst) &&
      this.forwarder.macs.lookup(macs.dst, now) === this.options.self) {
      const announcement = this.fastPath.announcement(macs.dst, srcPeer);
      if (announcement) this.send(link, MessageKind.Frame, announcement, false);
    }
    for (const send of decision.sends) this.sendFrame(send.nextHop, send.srcPeer, send.dstPeer, packet, vnetHdr);
  }

  /** A peer says `mac` is at it: learned as if a frame from `mac` had come over the sleeve. */
  private onAnnouncement(mac: Mac, peer: PeerName, now: number): void {
    if (isGroupMac(mac)) return;
    const learned = this.forwarder.macs.learnRemote(mac, peer, now);
    if (learned.kind === 'new') this.logEvents([{ kind: 'remote-mac', mac, peer }]);
    else if (learned.kind === 'moved') this.logEvents([{ kind: 'remote-mac', mac, peer, was: learned.from }]);
  }

  /** Writes a received frame into our TAP, converting between peers with and without offloads. */
  private inject(packet: Uint8Array, vnetHdr: boolean): void {
    let ok: boolean;
    if (vnetHdr === this.tap.vnetHdr) {
      ok = this.tap.write(packet);
    } else if (!vnetHdr) {
      ok = this.tap.writeFrame(packet); // a plain frame into our offload TAP: an empty header
    } else {
      // A super-frame (or one awaiting its checksum) for a TAP without offloads: finish it here.
      const frames = gsoSplit(packet);
      if (frames instanceof GsoSplitError) {
        this.drop('gso-split');
        return;
      }
      ok = frames.every((f) => this.tap.write(f));
    }
    if (ok) {
      this.stats.injected++;
      this.stats.injectedBytes += packet.length;
    } else {
      this.drop('tap-write');
    }
  }

  // ---- heartbeats ----

  private scheduleHeartbeat(link: Link, delay: number): void {
    clearTimeout(link.timer);
    link.timer = setTimeout(() => {
      if (this.stopped || this.links.get(link.info.peer) !== link) return;
      if (link.established && this.now() - link.lastHeard > HEARTBEAT_TIMEOUT_MS) {
        this.setEstablished(link, false, `timed out waiting for UDP heartbeat (${HEARTBEAT_TIMEOUT_MS / 1000} s)`);
      }
      if (!link.established && !link.warned && this.now() - link.since > UNANSWERED_WARNING_MS) {
        link.warned = true;
        this.log.warn({ peer: link.info.peer, to: `${link.info.remoteIp}:${link.info.remotePort}`, size: this.stride },
          `sleeve heartbeats to ${link.info.peer} unanswered for ${UNANSWERED_WARNING_MS / 1000} s: is UDP ${link.info.remotePort} blocked, or is the path MTU below ${this.options.underlayMtu} (--underlay-mtu)?`);
      }
      // Full-size and never fragmented: an answered heartbeat verifies the path MTU as well.
      this.send(link, MessageKind.Heartbeat, this.heartbeatBody(link), false);
      this.scheduleHeartbeat(link, link.established ? SLOW_HEARTBEAT_MS : FAST_HEARTBEAT_MS);
    }, delay);
    link.timer.unref();
  }

  private heartbeatBody(link: Link): Uint8Array {
    return new Uint8Array(singleChunkBody(this.stride, link.info.sessionKey !== undefined));
  }

  private setEstablished(link: Link, established: boolean, reason: string): void {
    link.established = established;
    if (established) this.scheduleSnapshot();
    else this.publishSnapshot();
    const mtu = overlayMtu(this.options.underlayMtu, { encrypted: link.info.sessionKey !== undefined });
    this.log.info({ peer: link.info.peer, reason, mtu }, established ? `sleeve connection established (${reason}); mtu=${mtu}` : `sleeve connection lost: ${reason}`);
    this.reportLink(link, reason);
  }

  /**
   * Tells the mesh how the connection carries frames: established once the sleeve answers (the
   * sleeve carries broadcasts and relays whatever the fast path does), on fastdp while its
   * heartbeats are answered, with the MTU that path verified.
   */
  private reportLink(link: Link, reason: string): void {
    const fast = link.established && this.fastPath?.healthy(link.info.peer) === true;
    const mtu = fast ? this.options.mtu : overlayMtu(this.options.underlayMtu, { encrypted: link.info.sessionKey !== undefined });
    this.onLinkState?.(link.info.peer, { established: link.established, reason, attrs: { name: fast ? 'fastdp' : 'sleeve', mtu } });
  }

  private logEvents(events: readonly Parameters<typeof describeForwarderEvent>[0][]): void {
    if (events.length > 0) this.scheduleSnapshot();
    let macsMoved = false;
    for (const e of events) {
      this.log.info({ event: e.kind }, describeForwarderEvent(e));
      if (e.kind === 'remote-mac' || e.kind === 'local-mac-moved') macsMoved = true;
    }
    if (macsMoved) this.fastPath?.macsChanged();
  }

  // ---- the TAP reader's send path ----

  /** Replans the Worker's snapshot once this turn's changes are done. */
  private scheduleSnapshot(): void {
    if (this.snapshotPending || this.stopped) return;
    this.snapshotPending = true;
    setImmediate(() => {
      this.snapshotPending = false;
      this.publishSnapshot();
    });
  }

  /** Plans what the TAP reader may send and the receiver may inject itself, and posts what changed. */
  private publishSnapshot(): void {
    if (this.stopped) return;
    const now = this.now();
    const links = new Map<PeerName, LinkView>();
    for (const [peer, link] of this.links) links.set(peer, { established: link.established, link: link.view });
    const snapshot = planSnapshot({
      self: this.options.self,
      macs: this.forwarder.macs.entries(now),
      unicast: this.forwarder.routes.unicast,
      links,
      peerNumber: (p) => this.peerNumber(p),
      reserved: (mac) => this.fastPath?.isHeartbeatFor(mac) === true,
    });
    // The receiver: every link (heartbeats come before a link is established), the same local MACs.
    this.tap.updateReceiver({
      self: snapshot.self, links: [...this.links.values()].map((l) => l.receive), locals: snapshot.locals,
      handAllFrames: this.fastPath !== undefined,
    });
    const signature = snapshotSignature(snapshot);
    if (signature === this.snapshotSent) return;
    this.snapshotSent = signature;
    this.tap.updateSender(snapshot);
  }

  private sendErrorsReported = new Set<string>();

  private onSenderNote(note: SenderNote): void {
    if (note.type === 'seen') {
      // Frames from these MACs went out through the Worker: refresh them as if they had passed here.
      const now = this.now();
      for (const mac of note.macs) {
        const learned = this.forwarder.macs.learnLocal(mac, now);
        if (learned.kind === 'new') this.logEvents([{ kind: 'local-mac', mac }]);
        else if (learned.kind === 'moved') this.logEvents([{ kind: 'local-mac-moved', mac, from: learned.from }]);
      }
      return;
    }
    if (note.type === 'snapshot-error') {
      this.log.error({ err: note.message }, `the TAP reader cannot send frames itself: ${note.message}; the main thread sends them`);
      return;
    }
    if (this.sendErrorsReported.has(note.code)) return;
    this.sendErrorsReported.add(note.code);
    this.log.warn({ to: note.link, err: note.code }, `sleeve send failed in the TAP reader: ${note.code}; counted in the sleeve's send errors`);
  }

  private peerNumber(name: PeerName): number {
    return remembered(this.peerNumbers, name, peerNameToNumber);
  }

  private peerName(n: number): PeerName {
    return remembered(this.peerNames, n, peerNameFromNumber);
  }

  private drop(reason: string): void {
    this.stats.dropped++;
    const count = (this.drops.get(reason) ?? 0) + 1;
    this.drops.set(reason, count);
    // Once per reason: the counter (weave_sleeve_dropped_total) carries the rest.
    if (count === DROP_LOG_THRESHOLD) {
      this.log.warn({ reason, total: count }, `sleeve dropped ${count} frames or datagrams for reason ${reason}; see weave_sleeve_dropped_total`);
    }
  }

  private sendErrorsLogged = 0;

  private countSendError(link: Link, code: string): void {
    this.stats.sendErrors++;
    if (this.stats.sendErrors >= 10 ** this.sendErrorsLogged) {
      this.sendErrorsLogged++;
      this.log.warn({ peer: link.info.peer, err: code, total: this.stats.sendErrors }, `sleeve send failed (${this.stats.sendErrors} so far): ${code}`);
    }
  }
}

/** `cache`'s value for `key`, computed and kept the first time. */
function remembered<K extends {}, V extends {}>(cache: LRUCache<K, V>, key: K, compute: (key: K) => V): V {
  let value = cache.get(key);
  if (value === undefined) {
    value = compute(key);
    cache.set(key, value);
  }
  return value;
}
