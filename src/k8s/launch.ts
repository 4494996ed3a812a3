#!/usr/bin/env node
// weave-kube: the DaemonSet container's entrypoint (Weave's launch.sh). In order:
//   1. read the DaemonSet environment (launch-plan.ts)
//   2. checks: the range overlaps no host route; which iptables backend the host uses
//   3. list the Nodes: the peers (unless KUBE_PEERS) and the consensus count (unless IPALLOC_INIT)
//   4. a peer reclaimed by others while it was away sets its old state aside
//   5. start weaver; forward SIGTERM and SIGINT; exit as it exits
//   6. once it answers: register in the lock Lease and reclaim the peers of deleted nodes, set the
//      Node condition NetworkUnavailable=False, and only then write the CNI conflist
//   7. follow the Nodes: connection targets track the node list, a deleted node is reclaimed
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createLogger, type Logger } from '../log/logger.js';
import { localRunner } from '../dataplane/host/runner.js';
import { detectIptablesBackend } from '../dataplane/host/iptables.js';
import { parsePeerName, type PeerName } from '../net/peer-name.js';
import { defaultIpallocInit, flagValue, LaunchError, readLaunchEnv, weaverArgs, type LaunchSettings } from './launch-plan.js';
import { KubeApi, messageOf } from './kube-api.js';
import { nodeNames, peerAddresses } from './node-peers.js';
import { rangeConflict } from './route-check.js';
import { removedWhileAway } from './peer-registry.js';
import { DaemonClient } from './daemon-client.js';
import { Reclaimer } from './reclaimer.js';
import { setupCni } from '../cli/setup-cni.js';

const WEAVER = fileURLToPath(new URL('../daemon/main.js', import.meta.url));
/** How long start-up waits for reclaim before it lets the network be used; the rest goes on in the background. */
const STARTUP_RECLAIM_MS = 60_000;

function fail(message: string): never {
  process.stderr.write(`weave-kube: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let settings: LaunchSettings;
  try {
    settings = readLaunchEnv(process.env);
  } catch (err) {
    if (err instanceof LaunchError) fail(err.message);
    throw err;
  }
  const log = createLogger({ format: 'auto' }).child({ component: 'kube' });
  for (const note of settings.notes) log.info(note);

  // The checks need nothing from the API: a node with a bad range fails at once, and says why.
  const runner = localRunner();
  const routes = await runner(['ip', '-j', 'route']);
  if (routes.code !== 0) fail(`cannot read the host's routes: ip -j route: ${routes.stderr.trim()}`);
  const conflict = rangeConflict(routes.stdout, settings.range);
  if (conflict !== undefined) fail(conflict);

  let backend = settings.iptablesBackend;
  if (!settings.noBridge && backend === undefined) {
    try {
      const detected = await detectIptablesBackend(runner);
      backend = detected.mode;
      log.info({ backend, reason: detected.reason }, `iptables backend ${backend} (${detected.reason})`);
    } catch (err) {
      fail(`cannot choose the iptables backend: ${(err as Error).message}`);
    }
  }

  let kube: KubeApi;
  try {
    kube = KubeApi.fromEnvironment();
  } catch (err) {
    fail(`cannot configure the Kubernetes client: ${(err as Error).message}`);
  }
  // weaver's answer comes from another process: ask while the API is asked.
  const peerNameAnswer = printPeerName(settings.extraArgs);
  const nodes = await retry(log, `list the nodes at ${kube.server}`, () => kube.listNodes());
  if (!nodes.some((n) => n.metadata?.name === settings.nodeName)) {
    log.warn({ node: settings.nodeName }, `node ${settings.nodeName} (HOSTNAME) is not in the API's node list`);
  }
  const peers = settings.kubePeers ?? peerAddresses(nodes, settings.nodeName);
  const ipallocInit = settings.ipallocInit ?? defaultIpallocInit(nodes.length);
  log.info({ peers, ipallocInit, nodes: nodes.length }, settings.kubePeers
    ? `peers from KUBE_PEERS: ${peers.join(' ') || '(none)'}`
    : `peers from the API's ${nodes.length} nodes: ${peers.join(' ') || '(none)'}`);

  const peerName = await peerNameAnswer;
  const markerPath = `${settings.dbPrefix}peer-reclaim`;
  const registry = await retry(log, 'read the lock Lease', () => kube.read());
  const marker = existsSync(markerPath) ? (await readFile(markerPath, 'utf8')).trim() : undefined;
  if (removedWhileAway(registry.version !== undefined ? registry.registry : undefined, marker, peerName)) {
    const state = `${settings.dbPrefix}data.json`;
    if (existsSync(state)) {
      const aside = `${state}.reclaimed-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await rename(state, aside);
      log.warn({ peer: peerName, aside }, `peer ${peerName} was reclaimed by another peer while away: its old IPAM state is set aside as ${aside}, starting fresh`);
    }
  }

  const daemon = new DaemonClient(settings.httpAddr);
  const child = spawn(process.execPath, [WEAVER, ...weaverArgs(settings, ipallocInit, peers, backend)], { stdio: 'inherit', env: process.env });
  // Whatever ends this process (a fatal error included) ends weaver too: no orphan daemon.
  process.on('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  let stopping = false;
  let stopWatch: (() => Promise<void>) | undefined;
  const reclaimer = new Reclaimer({
    store: kube, daemon, self: { peerName, nodeName: settings.nodeName },
    nodes: async () => nodeNames(await kube.listNodes()), log,
  });
  const forward = (signal: NodeJS.Signals): void => {
    stopping = true;
    reclaimer.stop();
    child.kill(signal);
  };
  process.on('SIGTERM', () => forward('SIGTERM'));
  process.on('SIGINT', () => forward('SIGINT'));
  child.on('exit', (code, signal) => {
    reclaimer.stop();
    void stopWatch?.();
    if (!stopping) log.error({ code, signal }, `weaver exited (${signal ?? `code ${code}`})`);
    process.exit(code ?? 1);
  });

  await waitReady(daemon, child);
  if (stopping) return;
  // Reclaim first (Weave's order), but a reclaim that cannot finish (a victim still reachable,
  // no ring yet) must not keep the node's network from being used: it goes on in the background.
  const reclaim = reclaimer.run().catch((err: unknown) => log.error({ err: messageOf(err) }, `reclaim failed: ${messageOf(err)}`));
  const finished = await Promise.race([reclaim.then(() => true), sleep(STARTUP_RECLAIM_MS).then(() => false)]);
  if (!finished) log.warn('reclaim not finished at start-up; continuing in the background');
  await writeFile(markerPath, `${peerName}\n`);
  // The condition informs the scheduler; the network works without it, so a node that cannot be
  // patched (HOSTNAME not a node name, RBAC) is logged, and the conflist is still written.
  try {
    await retry(log, `set the condition NetworkUnavailable=False on node ${settings.nodeName}`, () => kube.setNetworkAvailable(settings.nodeName), 5);
    log.info({ node: settings.nodeName }, `node ${settings.nodeName}: condition NetworkUnavailable=False`);
  } catch (err) {
    log.error({ node: settings.nodeName, err: messageOf(err) }, `cannot set the condition NetworkUnavailable=False on node ${settings.nodeName}: ${messageOf(err)}`);
  }
  // The same conflist `weave setup-cni` writes (kept when one is there already).
  const [done] = setupCni({ only: 'conflist', confDir: settings.cniConfDir, socket: settings.cniSocket, binDir: '', from: '' });
  log.info({ dir: settings.cniConfDir }, `CNI configuration: ${done}`);

  let lastTargets = peers.join(' ');
  stopWatch = kube.watchNodes((all) => {
    if (settings.kubePeers !== undefined || stopping) return;
    const targets = peerAddresses(all, settings.nodeName);
    if (targets.join(' ') === lastTargets) return;
    lastTargets = targets.join(' ');
    log.info({ peers: targets }, `node list changed; targets: ${targets.join(' ') || '(none)'}`);
    daemon.replaceTargets(targets).catch((err: unknown) => log.warn({ err: messageOf(err) }, `cannot set the targets: ${messageOf(err)}`));
  }, (node) => {
    if (stopping) return;
    log.info({ node: node.metadata?.name }, `node ${node.metadata?.name} was deleted; reclaiming its peer's IP ranges`);
    // A random pause spreads the survivors' attempts; the Lease decides who wins either way.
    void sleep(Math.random() * 2000).then(() => reclaimer.run())
      .catch((err: unknown) => log.error({ err: messageOf(err) }, `reclaim failed: ${messageOf(err)}`));
  }, log);
}

/** weaver's own answer to "what is my peer name": --name in EXTRA_ARGS, else derived from the machine. */
async function printPeerName(extraArgs: readonly string[]): Promise<PeerName> {
  const given = flagValue(extraArgs, '--name');
  if (given !== undefined) {
    try {
      return parsePeerName(given);
    } catch (err) {
      fail(`EXTRA_ARGS: invalid --name: ${(err as Error).message}`);
    }
  }
  const child = spawn(process.execPath, [WEAVER, ...extraArgs, '--print-peer-name'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) fail(`weaver --print-peer-name failed: ${err.trim()}`);
  try {
    return parsePeerName(out.trim());
  } catch {
    fail(`weaver --print-peer-name said "${out.trim()}"`);
  }
}

async function waitReady(daemon: DaemonClient, child: ChildProcess): Promise<void> {
  while (child.exitCode === null && child.signalCode === null) {
    if (await daemon.ready()) return;
    await sleep(250);
  }
}

/**
 * Retries an API call (the API server may be starting or briefly away), 2 s apart. After
 * `attempts` (30 by default: about a minute) it exits with the error, or with `attempts` given,
 * throws it to the caller.
 */
async function retry<T>(log: Logger, what: string, fn: () => Promise<T>, attempts?: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempts !== undefined && attempt >= attempts) throw err;
      if (attempt >= 30) fail(`cannot ${what}: ${messageOf(err)}`);
      log.warn({ attempt, err: messageOf(err) }, `cannot ${what}: ${messageOf(err)}; retrying`);
      await sleep(2000);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

main().catch((err: unknown) => fail(`fatal: ${(err as Error).stack ?? String(err)}`));
