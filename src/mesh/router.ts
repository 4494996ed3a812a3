// The mesh peer: listens on TCP 6783, dials targets, keeps one connection per pair of peers, runs
// the gossip channels (topology first) and publishes a status snapshot (DESIGN §4).
//
// This is a shell: what to dial is decided by ConnectionMakerCore, what the mesh looks like and
// what to gossip by TopologyGossip, how to relay by Routes. Here live sockets, timers and logs.
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { randomUid, type Uid, formatUid } from '../net/uid.js';
import { formatHostPort, parseHostPort, unmapIpv4 } from '../net/address.js';
import { isPeerName, parsePeerName, type PeerName } from '../net/peer-name.js';
import type { Logger } from '../log/logger.js';
import { Connection } from './connection.js';
import type { Hello, Message, GossipMessage } from './envelope.js';
import { ProtocolError } from './protocol-error.js';
import { PROTOCOL_MIN_VERSION, PROTOCOL_MAX_VERSION } from './preamble.js';
import { ConnectionMakerCore } from './connection-maker.js';
import { TopologyGossip, type Step } from './topology-gossip.js';
import type { ConnectionSummary, Topology } from './topology.js';
import type { Routes } from './routes.js';
import { encodeTopologyMessage, decodeTopologyMessage, type TopologyMessage } from './topology-codec.js';
import type { GossipChannel, GossipHandler } from './gossip-channel.js';
import type { ConnectionReport, RouterStatus } from './status.js';
import type { LinkState, Overlay } from './overlay.js';

export const TOPOLOGY_CHANNEL = 'topology';
/** Handshakes in progress at once; more are refused so that a flood cannot exhaust us. */
const MAX_HANDSHAKES = 64;
const DIAL_TIMEOUT_MS = 10_000;
/**
 * Connection changes within this window go out as one new version of our record: a peer that
 * comes up and connects to many others at once would otherwise flood a version per connection.
 */
const LOCAL_CHANGE_DELAY_MS = 200;
const TOPOLOGY_NOTIFY_MS = 100;
const PLAN_DELAY_MS = 50;

export interface RouterOptions {
  readonly name: PeerName;
  readonly nickname: string;
  readonly uid: Uid;
  readonly shortId: number;
  readonly port: number;
  readonly host: string;
  readonly password?: string;
  readonly connLimit: number;
  readonly discovery: boolean;
  readonly heartbeatIntervalMs: number;
  readonly gossipIntervalMs: number;
  readonly handshakeTimeoutMs?: number;
  /** Data paths this peer offers, most preferred first (none yet for a control-plane-only peer). */
  readonly overlays: readonly string[];
  readonly software: string;
  readonly log: Logger;
  readonly now?: () => number;
  readonly random?: () => number;
  /** The data path; without one a connection is established as soon as both sides said Hello. */
  readonly overlay?: Overlay;
}

export class Router {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly server: Server;
  private readonly live = new Map<PeerName, Connection>();
  private readonly handshaking = new Set<Connection>();
  /** Outbound connections whose target must never be dialled again (ourselves, a name collision). */
  private readonly neverRetry = new WeakSet<Connection>();
  private readonly topology: TopologyGossip;
  private readonly maker: ConnectionMakerCore;
  private readonly channels = new Map<string, GossipHandler>();
  private terminationCount = 0;
  private planTimer?: NodeJS.Timeout;
  private planScheduled = false;
  private gossipTimer?: NodeJS.Timeout;
  private snapshot?: RouterStatus;
  private stopped = false;
  private readonly topologyListeners: (() => void)[] = [];
  private localChangeTimer?: NodeJS.Timeout;
  private notifyTimer?: NodeJS.Timeout;
  /** Neighbours that came up since our record was last updated: they get a sync after it. */
  private readonly newNeighbours: PeerName[] = [];
  /** Nicknames of every peer ever seen, so that dead peers keep theirs (for rmpeer, status ipam). */
  private readonly nicknames = new Map<PeerName, string>();

  constructor(private readonly options: RouterOptions) {
    this.log = options.log.child({ component: 'mesh' });
    this.now = options.now ?? Date.now;
    const random = options.random ?? Math.random;
    this.topology = new TopologyGossip(
      { name: options.name, nickname: options.nickname, uid: options.uid, shortId: options.shortId },
      random,
    );
    this.maker = new ConnectionMakerCore(random, undefined, options.name);
    this.server = createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => this.log.error({ err }, 'listener error'));
  }

  get name(): PeerName {
    return this.options.name;
  }

  /** Starts listening; rejects when the port cannot be bound. */
  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port: this.options.port, host: this.options.host || undefined }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.gossipTimer = setInterval(() => this.apply(this.topology.tick()), this.options.gossipIntervalMs);
    this.schedulePlan();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.gossipTimer);
    clearTimeout(this.planTimer);
    clearTimeout(this.localChangeTimer);
    clearTimeout(this.notifyTimer);
    for (const c of [...this.live.values(), ...this.handshaking]) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** `weave connect`: adds direct targets (or replaces them all). Throws RangeError on a bad address. */
  connect(peers: readonly string[], replace = false): void {
    const addresses = peers.map((p) => formatHostPort(parseHostPort(p)));
    this.maker.connect(addresses, replace);
    this.log.info({ peers: addresses, replace }, 'direct peers added');
    this.changed();
  }

  /** `weave forget`: removes direct targets. */
  forget(peers: readonly string[]): void {
    const addresses = peers.map((p) => formatHostPort(parseHostPort(p)));
    this.maker.forget(addresses);
    this.log.info({ peers: addresses }, 'direct peers forgotten');
    this.changed();
  }

  /** Registers a gossip channel (e.g. IPAM). */
  channel(name: string, handler: GossipHandler): GossipChannel {
    if (name === TOPOLOGY_CHANNEL || this.channels.has(name)) throw new Error(`gossip channel ${name} exists`);
    this.channels.set(name, handler);
    const send = (conn: Connection | undefined, gossip: GossipMessage): boolean => {
      if (!conn?.isOpen) return false;
      conn.send({ type: 'gossip', gossip });
      return true;
    };
    const self = this.options.name;
    return {
      name,
      sendToNeighbour: (peer, payload) => send(this.live.get(peer), { kind: 'neighbour', channel: name, src: self, payload }),
      sendToNeighbours: (payload, except) => {
        for (const [peer, conn] of this.live) {
          if (peer !== except) send(conn, { kind: 'neighbour', channel: name, src: self, payload });
        }
      },
      broadcast: (payload) => this.relayBroadcast({ kind: 'broadcast', channel: name, src: self, payload }),
      unicast: (dst, payload) => this.relayUnicast({ kind: 'unicast', channel: name, src: self, dst, payload }),
      neighbours: () => [...this.live.keys()],
    };
  }

  /** The data path's word on a connection: established (heartbeats answered) or not. */
  setLinkState(peer: PeerName, state: LinkState): void {
    const conn = this.live.get(peer);
    if (!conn) return;
    if (conn.established === state.established) {
      // Still established, on another path (fastdp <-> sleeve) or with another MTU: status changes.
      if (state.established && !sameAttrs(conn.linkAttrs, state.attrs)) {
        conn.linkAttrs = state.attrs;
        conn.log.info({ reason: state.reason, attrs: state.attrs }, `connection now using ${String(state.attrs.name)}: ${state.reason}`);
        this.changed();
      }
      return;
    }
    conn.established = state.established;
    conn.linkAttrs = state.attrs;
    conn.log.info({ reason: state.reason }, state.established ? 'connection fully established' : `connection no longer established: ${state.reason}`);
    this.localConnectionsChanged();
    this.changed();
  }

  /** The routes the data path forwards by (established symmetric connections). */
  get routes(): Routes {
    return this.topology.routes;
  }

  /**
   * Called after the topology changed, at most every TOPOLOGY_NOTIFY_MS: while a mesh forms the
   * topology changes with nearly every message, and listeners (IPAM's reachability) need only
   * the latest state, not every step.
   */
  onTopologyChange(listener: () => void): void {
    this.topologyListeners.push(listener);
  }

  /** Peers we have a route to (over any connection), not counting ourselves. */
  reachablePeers(): Set<PeerName> {
    return new Set(this.topology.routes.unicastAll.keys());
  }

  /** The nickname of a peer seen at any time since we started. */
  nickname(peer: PeerName): string | undefined {
    if (peer === this.options.name) return this.options.nickname;
    return this.topology.topology.peers.get(peer)?.nickname ?? this.nicknames.get(peer);
  }

  /** A peer by name or nickname (a live peer's nickname wins over a dead one's). */
  resolvePeer(nameOrNickname: string): PeerName | undefined {
    // A name need not have been seen: after a restart the ring may name peers we never met.
    if (isPeerName(nameOrNickname)) return parsePeerName(nameOrNickname);
    const live = [...this.topology.topology.peers.values()].find((r) => r.nickname === nameOrNickname);
    if (live) return live.name;
    return [...this.nicknames].find(([, nick]) => nick === nameOrNickname)?.[0];
  }

  /** The current topology (immutable). */
  get currentTopology(): Topology {
    return this.topology.topology;
  }

  /** The status snapshot; rebuilt lazily after changes, never waits on anything. */
  status(): RouterStatus {
    this.snapshot ??= this.buildStatus();
    return this.snapshot;
  }

  // ---- connections ----

  private accept(socket: Socket): void {
    if (this.stopped || this.handshaking.size >= MAX_HANDSHAKES) {
      socket.destroy();
      return;
    }
    const address = formatHostPort({ host: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 });
    this.startConnection(socket, false, address);
  }

  private dial(address: string): void {
    const { host, port } = parseHostPort(address);
    this.log.info({ conn: `->[${address}]` }, 'attempting connection');
    const socket = netConnect({ host, port, ...(this.options.host ? { localAddress: this.options.host } : {}) });
    const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), DIAL_TIMEOUT_MS);
    const failed = (err: Error): void => {
      clearTimeout(timer);
      this.log.info({ conn: `->[${address}]`, err: err.message }, 'connection attempt failed');
      this.maker.attemptFailed(address, err.message, this.now());
      this.changed();
    };
    socket.once('error', failed);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', failed);
      this.startConnection(socket, true, address);
    });
  }

  private startConnection(socket: Socket, outbound: boolean, address: string): void {
    const o = this.options;
    const conn = new Connection({
      socket,
      outbound,
      address,
      connId: randomUid(),
      hello: {
        name: o.name, nickname: o.nickname, uid: o.uid, shortId: o.shortId,
        overlays: o.overlays, listenPort: o.port, software: o.software,
      },
      ...(o.password !== undefined ? { password: o.password } : {}),
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
      log: this.options.log.child({ component: 'mesh' }),
      callbacks: {
        onHello: (c, hello) => this.onHello(c, hello),
        onMessage: (c, m) => this.onMessage(c, m),
        onClose: (c, err) => this.onClose(c, err),
      },
    });
    this.handshaking.add(conn);
  }

  /** Decides whether a connection that said Hello stays. Returns the reason when it must not. */
  private onHello(conn: Connection, hello: Hello): string | undefined {
    const o = this.options;
    conn.log.info({ version: conn.protocolVersion }, `connection ready; using protocol version ${conn.protocolVersion}`);
    if (hello.name === o.name) {
      this.neverRetry.add(conn);
      return hello.uid === o.uid
        ? 'cannot connect to ourself'
        : `local "${o.name}(${o.nickname})" and remote "${hello.name}(${hello.nickname})" peer names collision`;
    }
    const existing = this.live.get(hello.name);
    if (existing) {
      // Both ends compute the same connection UIDs and keep the lower one.
      if ((existing.connectionUid ?? 0n) <= (conn.connectionUid ?? 0n)) {
        return `Multiple connections to ${hello.name}(${hello.nickname}) added to ${o.name}(${o.nickname})`;
      }
      existing.close(`Multiple connections to ${hello.name}(${hello.nickname}) added to ${o.name}(${o.nickname})`);
    }
    if (o.connLimit > 0 && this.live.size >= o.connLimit) {
      return `Connection limit reached (${o.connLimit})`;
    }
    const known = this.topology.topology.peers.get(hello.name);
    // Known from its Hello already: rmpeer by nickname works even if it dies before its gossip arrives.
    this.nicknames.set(hello.name, hello.nickname);
    this.handshaking.delete(conn);
    this.live.set(hello.name, conn);
    // Without a data path there is nothing more to wait for; with one, its heartbeats decide.
    conn.established = o.overlay === undefined;
    if (conn.outbound) this.maker.connected(conn.address, hello.name, this.now());
    conn.log.info(known === undefined ? 'connection added (new peer)' : known.uid === hello.uid ? 'connection added' : 'connection added (restarted peer)');
    if (conn.established) conn.log.info({ reason: 'no data path to verify (control plane only)' }, 'connection fully established');
    this.newNeighbours.push(hello.name);
    this.localConnectionsChanged();
    o.overlay?.connectionUp({
      peer: hello.name,
      // An inbound connection on a dual-stack listener reports "::ffff:a.b.c.d": the data paths want a.b.c.d.
      remoteIp: unmapIpv4(parseHostPort(conn.address).host),
      remotePort: hello.listenPort,
      connectionUid: conn.connectionUid ?? 0n,
      weDialled: conn.outbound,
      ...(conn.sessionKey ? { sessionKey: conn.sessionKey } : {}),
      remoteOverlays: hello.overlays,
    });
    for (const h of this.channels.values()) h.onNeighbourUp?.(hello.name);
    return undefined;
  }

  private onClose(conn: Connection, error: string | undefined): void {
    this.handshaking.delete(conn);
    const name = conn.remote?.name;
    const wasLive = name !== undefined && this.live.get(name) === conn;
    if (wasLive) {
      this.live.delete(name);
      this.options.overlay?.connectionDown(name);
      this.terminationCount++;
      conn.log.info({ reason: error }, error ? `connection shutting down due to error: ${error}` : 'connection deleted');
      this.localConnectionsChanged();
      if (conn.outbound) this.maker.disconnected(conn.address, this.now(), error);
    } else if (!this.stopped) {
      conn.log.warn({ reason: error }, `connection shutting down due to error: ${error ?? 'closed during handshake'}`);
      if (conn.outbound) this.maker.attemptFailed(conn.address, error ?? 'closed during handshake', this.now(), !this.neverRetry.has(conn), conn.remote?.name);
    }
    this.changed();
  }

  private localConnectionsChanged(): void {
    if (this.localChangeTimer !== undefined || this.stopped) return;
    this.localChangeTimer = setTimeout(() => {
      this.localChangeTimer = undefined;
      this.publishLocalConnections();
    }, LOCAL_CHANGE_DELAY_MS);
  }

  private publishLocalConnections(): void {
    const conns: ConnectionSummary[] = [];
    for (const conn of this.live.values()) {
      conns.push({
        name: conn.remote!.name,
        address: this.listenAddress(conn),
        outbound: conn.outbound,
        established: conn.established,
      });
    }
    this.apply(this.topology.setLocalConnections(conns));
    for (const peer of this.newNeighbours.splice(0)) {
      if (this.live.has(peer)) this.apply(this.topology.neighbourUp(peer));
    }
  }

  /** Where the peer at the other end accepts connections: what discovery dials. */
  private listenAddress(conn: Connection): string {
    if (conn.outbound) return conn.address;
    const { host } = parseHostPort(conn.address);
    return formatHostPort({ host, port: conn.remote!.listenPort });
  }

  // ---- gossip ----

  private onMessage(conn: Connection, message: Message): void {
    if (message.type !== 'gossip') return;
    const g = message.gossip;
    const from = conn.remote!.name;
    switch (g.kind) {
      case 'neighbour':
        if (g.src !== from) throw new ProtocolError(`neighbour gossip from ${from} claims to come from ${g.src}`);
        if (g.channel === TOPOLOGY_CHANNEL) {
          this.apply(this.topology.onMessage(from, decodeTopologyMessage(g.payload)));
        } else {
          this.channels.get(g.channel)?.onGossip(from, g.payload);
        }
        return;
      case 'broadcast':
        if (g.src === this.options.name) return;
        this.channels.get(g.channel)?.onBroadcast(g.src, g.payload);
        this.relayBroadcast(g, from);
        return;
      case 'unicast':
        if (g.dst === this.options.name) this.channels.get(g.channel)?.onUnicast(g.src, g.payload);
        else this.relayUnicast(g);
        return;
    }
  }

  private relayBroadcast(g: GossipMessage, from?: PeerName): void {
    for (const hop of this.topology.routes.broadcastAll(g.src)) {
      if (hop !== from) this.live.get(hop)?.send({ type: 'gossip', gossip: g });
    }
  }

  private relayUnicast(g: GossipMessage): boolean {
    const hop = g.dst === undefined ? undefined : this.topology.routes.unicastAll.get(g.dst);
    const conn = hop === undefined ? undefined : this.live.get(hop);
    if (!conn?.isOpen) return false;
    conn.send({ type: 'gossip', gossip: g });
    return true;
  }

  private sendTopology(to: PeerName, message: TopologyMessage): void {
    const conn = this.live.get(to);
    if (!conn?.isOpen) return;
    conn.send({
      type: 'gossip',
      gossip: { kind: 'neighbour', channel: TOPOLOGY_CHANNEL, src: this.options.name, payload: encodeTopologyMessage(message) },
    });
  }

  private apply(step: Step): void {
    for (const o of step.out) this.sendTopology(o.to, o.message);
    for (const r of step.removed) this.log.info({ peer: `${r.name}(${r.nickname})` }, `Removed unreachable peer ${r.name}(${r.nickname})`);
    if (step.changed || step.removed.length > 0) {
      // Per decision (a gossip message that changed what we know), never per packet.
      if (this.log.isLevelEnabled('debug')) this.log.debug({ peers: this.topology.topology.peers.size, sent: step.out.length }, 'topology changed');
      this.changed();
      this.notifyTopologyListeners();
    }
  }

  private notifyTopologyListeners(): void {
    if (this.notifyTimer !== undefined || this.stopped) return;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      for (const r of this.topology.topology.peers.values()) this.nicknames.set(r.name, r.nickname);
      for (const l of this.topologyListeners) l();
    }, TOPOLOGY_NOTIFY_MS);
  }

  /** Something changed: status is stale, and there may be new peers to dial. */
  private changed(): void {
    this.snapshot = undefined;
    this.schedulePlan();
  }

  // ---- connection maker shell ----

  private schedulePlan(): void {
    if (this.planScheduled || this.stopped) return;
    this.planScheduled = true;
    // A short delay gathers the many changes of a forming mesh into one look at the targets.
    setTimeout(() => {
      this.planScheduled = false;
      this.runPlan();
    }, PLAN_DELAY_MS);
  }

  private runPlan(): void {
    if (this.stopped) return;
    clearTimeout(this.planTimer);
    const connectedPeers = new Set(this.live.keys());
    const plan = this.maker.plan({
      now: this.now(),
      connectedPeers,
      discovered: this.options.discovery ? this.discoveredAddresses(connectedPeers) : new Map(),
      connectionCount: this.live.size,
      connLimit: this.options.connLimit,
    });
    if (plan.dial.length > 0) this.log.debug({ dial: plan.dial, connections: this.live.size, limit: this.options.connLimit }, 'connection maker: dialling');
    for (const address of plan.dial) this.dial(address);
    if (plan.dial.length > 0) this.snapshot = undefined;
    if (plan.wakeAt !== undefined) {
      this.planTimer = setTimeout(() => this.runPlan(), Math.max(0, plan.wakeAt - this.now()));
    }
  }

  /** Addresses where known peers reach peers we are not connected to. */
  private discoveredAddresses(connected: ReadonlySet<PeerName>): Map<string, PeerName> {
    const out = new Map<string, PeerName>();
    const self = this.options.name;
    for (const record of this.topology.topology.peers.values()) {
      if (record.name === self) continue;
      for (const c of record.connections) {
        if (c.name !== self && !connected.has(c.name) && c.address !== '') out.set(c.address, c.name);
      }
    }
    return out;
  }

  // ---- status ----

  private buildStatus(): RouterStatus {
    const o = this.options;
    const topo = this.topology.topology;
    const nick = (name: PeerName): string => topo.peers.get(name)?.nickname ?? '';
    const routes = this.topology.routes;
    const peers = [...topo.peers.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    const connectedPeers = new Set(this.live.keys());
    const live: ConnectionReport[] = [...this.live.values()]
      .sort((a, b) => (a.address < b.address ? -1 : 1))
      .map((c) => ({
        Address: c.address,
        Outbound: c.outbound,
        State: c.established ? 'established' : 'pending',
        Info: `${o.password !== undefined ? `${c.encrypted ? 'encrypted' : 'unencrypted'}`.padEnd(11) + ' ' : ''}${String(c.established ? c.linkAttrs.name ?? 'none' : 'none').padEnd(6)} ${c.remoteLabel}`,
        Attrs: c.established ? c.linkAttrs : {},
      }));
    const targets: ConnectionReport[] = this.maker.status(connectedPeers).map((t) => ({
      Address: t.address,
      Outbound: true,
      State: t.state,
      Info: t.state === 'connecting'
        ? ''
        : `${t.lastError ?? ''}${t.lastError !== undefined ? ', ' : ''}retry: ${t.tryAfter === undefined ? 'never' : new Date(t.tryAfter).toISOString()}`,
    }));
    return {
      Protocol: 'weft',
      ProtocolMinVersion: PROTOCOL_MIN_VERSION,
      ProtocolMaxVersion: PROTOCOL_MAX_VERSION,
      Encryption: o.password !== undefined,
      PeerDiscovery: o.discovery,
      Name: o.name,
      NickName: o.nickname,
      Port: o.port,
      Peers: peers.map((p) => ({
        Name: p.name,
        NickName: p.nickname,
        UID: formatUid(p.uid),
        ShortID: p.shortId,
        Version: p.version,
        Connections: p.connections.map((c) => ({
          Name: c.name, NickName: nick(c.name), Address: c.address, Outbound: c.outbound, Established: c.established,
        })),
      })),
      UnicastRoutes: [...routes.unicast].sort(([a], [b]) => (a < b ? -1 : 1)).map(([Dest, Via]) => ({ Dest, Via })),
      BroadcastRoutes: peers.map((p) => ({ Source: p.name, Via: [...routes.broadcast(p.name)] })),
      Connections: [...live, ...targets],
      TerminationCount: this.terminationCount,
      Targets: this.maker.directTargets(),
      TrustedSubnets: [],
    };
  }
}

function sameAttrs(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
