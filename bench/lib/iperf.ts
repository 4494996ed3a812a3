// iperf3 for the data-path benchmark: a server in one pod, single-stream TCP runs from another,
// read from iperf3's JSON report. iperf3 comes from Debian's `iperf3` package.
import type { NetnsHandle } from '../../src/cluster/netns-handle.js';
import type { NsProcess } from '../../src/cluster/ns-process.js';

export interface IperfRun {
  /** What the receiver got, in bits per second. */
  readonly bitsPerSecond: number;
  /** Bytes the receiver got. */
  readonly bytesReceived: number;
  /** TCP retransmissions the sender counted. */
  readonly retransmits: number;
  readonly seconds: number;
}

export const IPERF_PORT = 5201;

/** Starts `iperf3 -s` bound to `address` in `where`; resolves once it listens. */
export async function startIperfServer(where: NetnsHandle, address: string, port = IPERF_PORT): Promise<NsProcess> {
  const server = where.spawn(['iperf3', '-s', '-B', address, '-p', String(port), '--forceflush']);
  await server.waitForOutput(/Server listening/, 10_000);
  return server;
}

/** One single-stream TCP run of `seconds` from `from` to the server at `address`. */
export async function iperfTcp(from: NetnsHandle, address: string, seconds: number, port = IPERF_PORT): Promise<IperfRun> {
  const r = await from.exec(['iperf3', '-c', address, '-p', String(port), '-t', String(seconds), '-J', '--connect-timeout', '3000'], {
    timeoutMs: (seconds + 15) * 1000,
  });
  return parseIperfJson(r.stdout, `iperf3 -c ${address} (exit ${r.code}${r.timedOut ? ', timed out' : ''})`, r.stderr);
}

interface IperfJson {
  readonly error?: unknown;
  readonly end?: {
    readonly sum_received?: { readonly bits_per_second?: unknown; readonly bytes?: unknown; readonly seconds?: unknown };
    readonly sum_sent?: { readonly retransmits?: unknown };
  };
}

/** The figures of one run from iperf3's `-J` output; throws with iperf3's own error otherwise. */
export function parseIperfJson(stdout: string, what: string, stderr = ''): IperfRun {
  let report: IperfJson;
  try {
    report = JSON.parse(stdout) as IperfJson;
  } catch {
    throw new Error(`${what} printed no JSON: ${(stderr || stdout).slice(0, 500)}`);
  }
  const received = report.end?.sum_received;
  const bps = received?.bits_per_second;
  const bytes = received?.bytes;
  if (typeof bps !== 'number' || typeof bytes !== 'number' || report.error !== undefined) {
    throw new Error(`${what} failed: ${JSON.stringify(report.error ?? report).slice(0, 500)}`);
  }
  const retransmits = report.end?.sum_sent?.retransmits;
  const seconds = received?.seconds;
  return {
    bitsPerSecond: bps,
    bytesReceived: bytes,
    retransmits: typeof retransmits === 'number' ? retransmits : 0,
    seconds: typeof seconds === 'number' ? seconds : 0,
  };
}
