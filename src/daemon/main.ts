#!/usr/bin/env node
// weaver: the weft daemon, one mesh peer per node.
import { parseConfig, ConfigError, USAGE, type Config } from './config.js';
import { machinePeerName, defaultNickname } from './identity.js';
import { createLogger } from '../log/logger.js';
import { randomUid } from '../net/uid.js';
import { formatHostPort } from '../net/address.js';
import { Router } from '../mesh/router.js';
import { createApiServer, listen, type ApiBackend } from '../api/http-server.js';
import { createMetrics } from '../api/metrics.js';
import { VERSION } from '../version.js';
import { IpamService, IPAM_CHANNEL } from '../ipam/service.js';
import { formatCidr } from '../net/ipv4.js';
import { describeIpallocInit } from './config.js';
import { DataPlane, BRIDGE_NAME, TAP_NAME } from '../dataplane/dataplane.js';
import { EXPOSE_ID } from '../ipam/space.js';
import type { Logger } from '../log/logger.js';
import { CniService } from '../api/cni-service.js';
import { createCniServer, dispatchCni, listenUnix } from '../api/cni-server.js';
import type { CniRelay } from '../api/cni-protocol.js';
import { cniRelay } from '../cni/relay.js';
import { PodLinks } from '../dataplane/host/pod-link.js';
import { Spawner } from '../dataplane/host/spawner.js';
import { resetPeer } from './reset.js';

function fail(message: string): never {
  process.stderr.write(`weaver: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  if (config.showHelp) {
    process.stdout.write(USAGE);
    return;
  }
  if (config.showVersion) {
    process.stdout.write(`weave ${VERSION}\n`);
    return;
  }
  const identity = config.name !== undefined ? { name: config.name, source: '--name' } : machinePeerName();
  if (config.printPeerName) {
    process.stdout.write(`${identity.name}\n`);
    return;
  }
  const nickname = config.nickname ?? defaultNickname();
  const uid = randomUid();
  const rootLog = createLogger({ level: config.logLevel, format: config.logFormat });
  const log = rootLog.child({ component: 'daemon' });
  const { password: _password, ...shown } = config;
  log.info({ options: { ...shown, password: config.password !== undefined ? '<redacted>' : undefined } }, 'Command line options');
  log.info(config.password !== undefined ? 'Communication between peers via untrusted networks is encrypted.' : 'Communication between peers is unencrypted.');
  log.info({ nameSource: identity.source }, `Our name is ${identity.name}(${nickname})`);
  // Host commands (ip, tc, iptables) of the data path and the CNI service are forked by a helper
  // process, not by the daemon (host/spawner.ts); it starts with the first command, while the
  // daemon is still small, and never with --no-bridge, which runs none.
  const hostCommands = new Spawner();
  let dataplane: DataPlane | undefined;
  if (!config.noBridge) {
    try {
      dataplane = await DataPlane.start({
        runner: hostCommands.run,
        self: identity.name, host: config.host, port: config.port, mtu: config.mtu,
        underlayMtu: config.underlayMtu, range: config.ipallocRange, offloads: config.offloads,
        ...(config.iptablesBackend !== undefined ? { iptablesBackend: config.iptablesBackend } : {}), log: rootLog.child({ component: 'dataplane' }),
        // With a password connections stay on the encrypted sleeve: VXLAN would carry pods' frames in clear.
        fastdp: config.fastdp && config.password === undefined,
      });
    } catch (err) {
      fail(`cannot set up the data path (bridge ${BRIDGE_NAME}, TAP ${TAP_NAME}, UDP ${config.port}): ${(err as Error).message}; use --no-bridge to run the control plane alone`);
    }
    log.info({ bridge: BRIDGE_NAME, tap: TAP_NAME, mtu: config.mtu }, `data path up: bridge ${BRIDGE_NAME} (mtu ${config.mtu}) with ${TAP_NAME}, sleeve on UDP ${config.port}${dataplane.fastdpOffered ? ', fastdp on UDP 6784' : ''}`);
  }

  const router = new Router({
    name: identity.name,
    nickname,
    uid,
    // 12 random bits, as Weave; collisions only matter to the data path, which resolves them.
    shortId: Number(uid & 0xfffn),
    port: config.port,
    host: config.host,
    ...(config.password !== undefined ? { password: config.password } : {}),
    connLimit: config.connLimit,
    discovery: config.discovery,
    heartbeatIntervalMs: config.heartbeatInterval * 1000,
    gossipIntervalMs: config.gossipInterval * 1000,
    overlays: dataplane ? (dataplane.fastdpOffered ? ['fastdp', 'sleeve'] : ['sleeve']) : [],
    software: VERSION,
    log: rootLog,
    ...(dataplane ? { overlay: dataplane } : {}),
  });
  if (dataplane) {
    const dp = dataplane;
    dp.onLinkState = (peer, state) => router.setLinkState(peer, state);
    router.onTopologyChange(() => dp.setRoutes(router.routes));
  }
  const ipamLog = rootLog.child({ component: 'ipam' });
  let ipam: IpamService;
  try {
    ipam = await IpamService.open({
      config: { self: identity.name, range: config.ipallocRange, mode: config.ipallocInit },
      statePath: `${config.dbPrefix}data.json`,
      log: ipamLog,
      requestTimeoutMs: config.ipamRequestTimeout * 1000,
      gossipIntervalMs: config.gossipInterval * 1000,
    });
  } catch (err) {
    fail(`cannot open the IPAM state at ${config.dbPrefix}data.json: ${(err as Error).message}`);
  }
  ipamLog.info({ range: formatCidr(config.ipallocRange), init: describeIpallocInit(config.ipallocInit) },
    `IP allocation range ${formatCidr(config.ipallocRange)}, initialised by ${describeIpallocInit(config.ipallocInit)}`);
  ipam.attach(router.channel(IPAM_CHANNEL, ipam), {
    nickname: (p) => router.nickname(p),
    resolve: (text) => router.resolvePeer(text),
  });
  router.onTopologyChange(() => ipam.setReachable(router.reachablePeers()));
  // The pods' gateway, once the bridge has its address.
  let bridgeAddress: string | undefined;
  if (dataplane) void exposeBridge(ipam, dataplane, log).then((cidr) => { bridgeAddress = cidr.split('/')[0]; });

  try {
    await router.start();
  } catch (err) {
    fail(`cannot listen on ${config.host || '*'}:${config.port}: ${(err as Error).message}`);
  }

  // The CNI plugin's socket: only with a data path, since pods need the bridge.
  let cni: CniService | undefined;
  let cniServer: ReturnType<typeof createCniServer> | undefined;
  let cniTimer: NodeJS.Timeout | undefined;
  if (dataplane) {
    const cniLog = rootLog.child({ component: 'cni' });
    try {
      // The executable's raw relay runs the plugin here; it calls the service, which replays
      // pending releases through it: bound once both exist.
      let relay: CniRelay | undefined;
      cni = await CniService.open({
        ipam, links: new PodLinks(hostCommands.run), gateway: () => bridgeAddress, bridge: BRIDGE_NAME, mtu: config.mtu,
        statePath: `${config.dbPrefix}cni.json`, socketPath: config.socket, log: cniLog,
        relay: (req) => (relay ? relay(req) : Promise.reject(new Error('the CNI relay is not ready yet'))),
      });
      const opened = cni;
      relay = cniRelay((method, path, body) => dispatchCni(opened, cniLog, method, path, body));
      cniServer = createCniServer(cni, cniLog, relay);
      await listenUnix(cniServer, config.socket);
    } catch (err) {
      fail(`cannot serve the CNI plugin on ${config.socket}: ${(err as Error).message}`);
    }
    cniLog.info(`Listening for CNI requests on ${config.socket}`);
    const service = cni;
    const reconcile = (): void => {
      service.reconcile().catch((err: unknown) => cniLog.error({ err }, `CNI reconcile failed: ${(err as Error).message}`));
    };
    reconcile();
    cniTimer = setInterval(reconcile, config.cniReconcileInterval * 1000);
    cniTimer.unref();
  }

  const attached = cni;
  const backend: ApiBackend = {
    version: VERSION,
    routerStatus: () => router.status(),
    connect: (peers, replace) => router.connect(peers, replace),
    forget: (peers) => router.forget(peers),
    ipam,
    ...(attached ? { attachments: () => attached.attachments() } : {}),
    ...(dataplane ? { bridgeView: () => dataplane!.bridgeView() } : {}),
    expose: async () => {
      const r = await ipam.allocate(EXPOSE_ID);
      if (r.ok && dataplane) await dataplane.setBridgeAddress(r.value);
      return r;
    },
    reset: async () => ({ message: await resetPeer(ipam, dataplane, log), afterReply: () => stop('weave reset') }),
    metrics: createMetrics({
      routerStatus: () => router.status(),
      ipamCounts: () => ipam.counts(),
      ...(dataplane ? { dataPath: () => dataplane!.counters() } : {}),
    }),
  };
  const apiLog = rootLog.child({ component: 'api' });
  const api = createApiServer(backend, apiLog);
  const statusServer = config.metricsAddr ? createApiServer(backend, apiLog, { readOnly: true }) : undefined;
  try {
    if (statusServer && config.metricsAddr) await listen(statusServer, config.metricsAddr);
  } catch (err) {
    fail(`cannot serve metrics on ${formatHostPort(config.metricsAddr!)}: ${(err as Error).message}`);
  }
  try {
    await listen(api, config.httpAddr);
  } catch (err) {
    fail(`cannot serve the HTTP API on ${formatHostPort(config.httpAddr)}: ${(err as Error).message}`);
  }
  if (config.metricsAddr) apiLog.info(`Listening for metrics requests on ${formatHostPort(config.metricsAddr)}`);
  apiLog.info(`Listening for HTTP control messages on ${formatHostPort(config.httpAddr)}`);
  if (config.peers.length > 0) {
    log.info({ peers: config.peers }, `Launch detected - using supplied peer list: ${config.peers.join(' ')}`);
    router.connect(config.peers);
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    clearInterval(cniTimer);
    for (const server of [api, statusServer, cniServer]) {
      server?.close();
      server?.closeAllConnections();
    }
    ipam.stop();
    void dataplane?.stop();
    void router.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** Gives the bridge its own address from IPAM (weave:expose), retrying while IPAM is not ready. */
async function exposeBridge(ipam: IpamService, dataplane: DataPlane, log: Logger): Promise<string> {
  for (;;) {
    const r = await ipam.allocate(EXPOSE_ID);
    if (r.ok) {
      await dataplane.setBridgeAddress(r.value);
      log.info({ address: r.value }, `bridge ${BRIDGE_NAME} has address ${r.value} (weave:expose)`);
      return r.value;
    }
    log.info({ reason: r.error }, `bridge address not yet allocated: ${r.error}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`weaver: fatal: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
