// iperf3 between two namespaces of a local cluster, for throughput diagnostics in the data-path
// tests (the benchmarks in bench/ do the long runs). iperf3 comes from Debian's `iperf3` package.
import { exec as execHost } from '../../../src/cluster/exec.js';
import type { NetnsHandle } from '../../../src/cluster/netns-handle.js';
import type { NsProcess } from '../../../src/cluster/ns-process.js';

export interface IperfResult {
  readonly bitsPerSecond: number;
  readonly retransmits: number;
  readonly seconds: number;
}

/** Whether the iperf3 command is there. */
export async function haveIperf3(): Promise<boolean> {
  const r = await execHost(null, ['sh', '-c', 'command -v iperf3']).catch(() => undefined);
  return r?.code === 0;
}

/** Starts `iperf3 -s` on `address` in `where`; resolves once it listens. */
export async function startIperfServer(where: NetnsHandle, address: string, port = 5201): Promise<NsProcess> {
  const server = where.spawn(['iperf3', '-s', '-B', address, '-p', String(port), '--forceflush']);
  await server.waitForOutput(/Server listening/, 10_000);
  return server;
}

/** One TCP run of `seconds` from `from` to a server at `address`. */
export async function iperfRun(from: NetnsHandle, address: string, seconds: number, port = 5201): Promise<IperfResult> {
  const r = await from.exec(['iperf3', '-c', address, '-p', String(port), '-t', String(seconds), '-J', '--connect-timeout', '3000'], {
    timeoutMs: (seconds + 10) * 1000,
  });
  let report: unknown;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`iperf3 -c ${address} printed no JSON (exit ${r.code}): ${r.stderr || r.stdout.slice(0, 500)}`);
  }
  const end = (report as { end?: { sum_received?: { bits_per_second?: unknown; seconds?: unknown }; sum_sent?: { retransmits?: unknown } }; error?: unknown }).end;
  const bps = end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error(`iperf3 -c ${address} failed: ${JSON.stringify((report as { error?: unknown }).error ?? report).slice(0, 500)}`);
  const retransmits = end?.sum_sent?.retransmits;
  const secs = end?.sum_received?.seconds;
  return { bitsPerSecond: bps, retransmits: typeof retransmits === 'number' ? retransmits : 0, seconds: typeof secs === 'number' ? secs : seconds };
}
