// weft's own data path between two node namespaces: a real `weaver` daemon in each (bridge
// `weave`, TAP `vethwe-tap`, sleeve on UDP 6783, and the kernel VXLAN fast path on UDP 6784 unless
// `path` is 'sleeve'), a pod on each bridge with an address from IPAM,
// as a CNI plugin would attach it. The daemons are the cluster's processes: destroy() stops them.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterNode, LocalCluster, Pod } from '../../src/cluster/cluster.js';
import type { NsProcess } from '../../src/cluster/ns-process.js';
import type { PodPair } from './pod-pair.js';

const WEAVER = fileURLToPath(new URL('../../src/daemon/main.js', import.meta.url));
const WEAVE_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** The overlay MTU the daemon gives its bridge by default, and so the pods' MTU. */
export const WEFT_MTU = 1376;

// One HTTP request to the daemon's API from inside a node namespace (the API listens on the
// node's 127.0.0.1:6784): prints the status, a newline, then the body.
const HTTP_CALL = `
const [method, url] = process.argv.slice(1);
const req = require('node:http').request(url, { method }, (res) => {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => process.stdout.write(res.statusCode + '\\n' + Buffer.concat(chunks).toString('utf8')));
});
req.setTimeout(30000, () => req.destroy(new Error('timeout')));
req.on('error', (err) => process.stdout.write('0\\n' + err.message));
req.end();
`;

async function api(node: ClusterNode, method: string, path: string): Promise<{ status: number; body: string }> {
  const r = await node.exec([process.execPath, '-e', HTTP_CALL, method, `http://127.0.0.1:6784${path}`], { timeoutMs: 40_000 });
  const nl = r.stdout.indexOf('\n');
  return { status: Number(r.stdout.slice(0, nl)), body: r.stdout.slice(nl + 1) };
}

/** Runs the weave CLI inside `node` against its own daemon (WEAVE_HTTP_ADDR's default, 127.0.0.1:6784). */
export async function weaveCli(node: ClusterNode, ...args: string[]): Promise<string> {
  return (await node.exec([process.execPath, WEAVE_CLI, ...args], { timeoutMs: 20_000 })).stdout;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, daemons: readonly NsProcess[]): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = daemons.find((d) => !d.running);
    if (dead) throw new Error(`${what}: weaver exited (${JSON.stringify(dead.exitStatus)}): ${(dead.stderr || dead.stdout).slice(-1500)}`);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface WeftPairOptions {
  /** With a password the mesh is encrypted (passed as WEAVE_PASSWORD, so it is not on a command line). */
  readonly password?: string;
  /** Directory for the daemons' state files. */
  readonly stateDir: string;
  /** Distinguishes the daemons' peer names from other pairs' ("02:77:62:00:<tag>:0<i>"). */
  readonly tag: number;
  /** The path the connection must be on before the pods are attached ('sleeve' runs the daemons with --no-fastdp). */
  readonly path: 'sleeve' | 'fastdp';
}

export interface WeftPair extends PodPair {
  /** `weave status connections` on the client's node once the sleeve was established. */
  readonly connections: string;
  /** `weave status` on the client's node. */
  readonly status: string;
}

/** Starts daemons on `nodes` (the second connects to the first), waits for the sleeve, attaches pods "p". */
export async function weftPair(cluster: LocalCluster, nodes: readonly [ClusterNode, ClusterNode], options: WeftPairOptions): Promise<WeftPair> {
  const [first] = nodes;
  const daemons = nodes.map((node, i) =>
    node.spawn(
      [process.execPath, WEAVER,
        // Every daemon here shares the machine's machine-id: each needs a name of its own.
        '--name', `02:77:62:00:${options.tag.toString(16).padStart(2, '0')}:0${i + 1}`, '--nickname', node.ns,
        '--host', node.underlayIp, '--metrics-addr', `${node.underlayIp}:6782`,
        '--db-prefix', join(options.stateDir, `${node.ns}-`), '--log-format', 'json',
        // Each node its own CNI socket: the default path is one per machine.
        '--socket', join(options.stateDir, `${node.ns}.sock`),
        '--heartbeat-interval', '1', '--gossip-interval', '1', '--ipalloc-init', 'consensus=2',
        ...(options.path === 'sleeve' ? ['--no-fastdp'] : []),
        ...(node === first ? [] : [first.underlayIp])],
      options.password === undefined ? {} : { env: { WEAVE_PASSWORD: options.password } },
    ),
  );
  const gateways: string[] = [];
  for (const node of nodes) {
    const expose = await waitFor(`${node.ns} bridge address`, async () => {
      const r = await api(node, 'GET', '/ip/weave:expose');
      return r.status === 200 ? r.body.trim() : undefined;
    }, 60_000, daemons);
    gateways.push(expose.split('/')[0]!);
  }
  const connections = await waitFor(`${options.path} established`, async () => {
    const outs = await Promise.all(nodes.map((n) => weaveCli(n, 'status', 'connections')));
    // "established sleeve", "established encrypted   sleeve" with a password, or "established fastdp".
    const want = options.path === 'fastdp' ? /established\s+fastdp/ : /established\s+(encrypted\s+)?sleeve/;
    return outs.every((o) => want.test(o)) ? outs[0] : undefined;
  }, 40_000, daemons);
  const pods: Pod[] = [];
  for (const [i, node] of nodes.entries()) {
    const r = await api(node, 'POST', `/ip/bench-${node.index}`);
    if (r.status !== 200) throw new Error(`${node.ns}: IPAM allocation answered ${r.status}: ${r.body}`);
    pods.push(await cluster.addPod(node, { name: 'p', ip: r.body.trim(), gateway: gateways[i]!, bridge: 'weave', mtu: WEFT_MTU }));
  }
  const [client, server] = pods as [Pod, Pod];
  const status = await weaveCli(first, 'status');
  return { client, server, serverIp: server.ip!, nodes, underlay: cluster.underlay, daemons, connections: connections.trim(), status };
}
