// Loss counters of a node namespace, read before and after a run so that a benchmark can say
// where packets were dropped: per-link rx/tx drops (`ip -s -j link`) and the UDP error counters
// of /proc/net/snmp (socket buffer overflows on the sleeve's or VXLAN's socket).
import type { NetnsHandle } from '../../src/cluster/netns-handle.js';

/** Counter name (e.g. "vethwe-tap tx_dropped", "Udp RcvbufErrors") to value. */
export type Counters = ReadonlyMap<string, number>;

interface LinkStatsJson {
  readonly ifname?: string;
  readonly stats64?: { readonly rx?: { readonly dropped?: number; readonly errors?: number }; readonly tx?: { readonly dropped?: number; readonly errors?: number } };
}

const UDP_COUNTERS = ['InErrors', 'RcvbufErrors', 'SndbufErrors', 'MemErrors'];

/** A snapshot of the namespace's drop and error counters. */
export async function readCounters(where: NetnsHandle): Promise<Counters> {
  const [linksText, snmp] = await Promise.all([where.iproute(['-s', '-j', 'link', 'show']), where.run(['cat', '/proc/net/snmp'])]);
  const counters = new Map<string, number>();
  for (const link of JSON.parse(linksText) as LinkStatsJson[]) {
    const s = link.stats64;
    if (link.ifname === undefined || s === undefined) continue;
    counters.set(`${link.ifname} rx_dropped`, s.rx?.dropped ?? 0);
    counters.set(`${link.ifname} tx_dropped`, s.tx?.dropped ?? 0);
    counters.set(`${link.ifname} rx_errors`, s.rx?.errors ?? 0);
    counters.set(`${link.ifname} tx_errors`, s.tx?.errors ?? 0);
  }
  for (const [name, value] of parseSnmp(snmp, 'Udp')) {
    if (UDP_COUNTERS.includes(name)) counters.set(`Udp ${name}`, value);
  }
  return counters;
}

/**
 * TCP's count of segments the receiver reported as received twice (D-SACK): retransmissions that
 * were not needed, because the original was reordered rather than lost.
 */
export async function dsackSegments(where: NetnsHandle): Promise<number> {
  return parseSnmp(await where.run(['cat', '/proc/net/netstat']), 'TcpExt').get('TCPDSACKRecvSegs') ?? 0;
}

/** The counters of one protocol line pair of /proc/net/snmp or netstat ("Udp: names..." then "Udp: values..."). */
export function parseSnmp(text: string, protocol: string): Map<string, number> {
  const lines = text.split('\n').filter((l) => l.startsWith(`${protocol}: `));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
  return new Map(names.map((n, i) => [n, values[i] ?? 0]));
}

/** The counters that grew between two snapshots, with how much ("n1: vethwe-tap tx_dropped +3"). */
export function grown(label: string, before: Counters, after: Counters): string[] {
  const out: string[] = [];
  for (const [name, value] of after) {
    const delta = value - (before.get(name) ?? 0);
    if (delta > 0) out.push(`${label}: ${name} +${delta}`);
  }
  return out;
}
