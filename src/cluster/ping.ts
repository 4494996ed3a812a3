// What `ping` printed, as numbers: pure parsing, no I/O. Understands iputils (Debian's
// `iputils-ping`) and, for the summary, busybox. The summary is the truth for loss; the reply lines
// are kept too, because a broadcast ping's question is who answered, and how many times.

export interface PingReply {
  /** The address the reply came from. */
  readonly from: string;
  readonly seq: number;
  readonly ttl: number;
  readonly timeMs: number;
  /** A second reply to a sequence number already answered (marked `(DUP!)`, or seen before). */
  readonly duplicate: boolean;
}

export interface PingRtt {
  readonly minMs: number;
  readonly avgMs: number;
  readonly maxMs: number;
  /** Standard deviation; busybox does not print it. */
  readonly mdevMs?: number;
}

export interface PingStats {
  readonly transmitted: number;
  /** Echo replies counted once per sequence number (duplicates excluded), as ping counts them. */
  readonly received: number;
  readonly duplicates: number;
  /** ICMP errors (e.g. "Destination Host Unreachable") ping counted. */
  readonly errors: number;
  readonly lossPercent: number;
  /** Absent when nothing came back. */
  readonly rtt?: PingRtt;
  readonly replies: readonly PingReply[];
}

const SUMMARY = /^(\d+) packets transmitted, (\d+)(?: packets)? received(.*?), ([\d.]+)% packet loss/m;
const RTT = /^(?:rtt|round-trip) min\/avg\/max(\/mdev)? = ([\d.]+)\/([\d.]+)\/([\d.]+)(?:\/([\d.]+))? ms/m;
const REPLY = /^\d+ bytes from (?:[^\s:]+ \(([^)\s]+)\)|([^\s:]+)): (?:icmp_)?seq=(\d+) ttl=(\d+) time=([\d.]+) ms(.*)$/;

/**
 * Parses ping's output. Returns undefined when there is no statistics summary, which is what ping
 * prints when it could not send at all ("Network is unreachable") or was killed early.
 */
export function parsePing(output: string): PingStats | undefined {
  const summary = SUMMARY.exec(output);
  if (!summary) return undefined;
  const [, transmitted, received, extras = '', loss] = summary;
  const rtt = RTT.exec(output);
  const stats: PingStats = {
    transmitted: Number(transmitted),
    received: Number(received),
    duplicates: extraCount(extras, 'duplicates'),
    errors: extraCount(extras, 'errors'),
    lossPercent: Number(loss),
    replies: parseReplies(output),
  };
  if (!rtt) return stats;
  const [, , min, avg, max, mdev] = rtt;
  return {
    ...stats,
    rtt: { minMs: Number(min), avgMs: Number(avg), maxMs: Number(max), ...(mdev === undefined ? {} : { mdevMs: Number(mdev) }) },
  };
}

/** The "+N duplicates" / "+N errors" parts of the summary line; 0 when absent. */
function extraCount(extras: string, what: string): number {
  const m = new RegExp(`\\+(\\d+) ${what}`).exec(extras);
  return m ? Number(m[1]) : 0;
}

function parseReplies(output: string): PingReply[] {
  const seen = new Set<number>();
  const replies: PingReply[] = [];
  for (const line of output.split('\n')) {
    const m = REPLY.exec(line.trimEnd());
    if (!m) continue;
    const [, named, bare, seq, ttl, time, rest = ''] = m;
    const seqNumber = Number(seq);
    // iputils does not mark duplicates of a broadcast ping, so a repeated sequence number counts too.
    const duplicate = rest.includes('(DUP!)') || seen.has(seqNumber);
    seen.add(seqNumber);
    replies.push({ from: named ?? bare ?? '', seq: seqNumber, ttl: Number(ttl), timeMs: Number(time), duplicate });
  }
  return replies;
}

/** How many replies each address sent, e.g. to check that a broadcast reached every pod once per ping. */
export function repliesBySource(stats: PingStats): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of stats.replies) counts.set(r.from, (counts.get(r.from) ?? 0) + 1);
  return counts;
}
