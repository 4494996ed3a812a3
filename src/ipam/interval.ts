// Half-open address intervals [start, end): the unit in which the ring, the space and the
// messages talk about parts of the range.
import { formatIpv4 } from '../net/ipv4.js';

export interface Interval {
  readonly start: number;
  readonly end: number;
}

export function intervalSize(i: Interval): number {
  return i.end - i.start;
}

/** Sorted, non-overlapping intervals with touching neighbours joined. */
export function normalizeIntervals(list: readonly Interval[]): Interval[] {
  const sorted = list.filter((i) => i.end > i.start).sort((a, b) => a.start - b.start);
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end) {
      out[out.length - 1] = { start: last.start, end: Math.max(last.end, i.end) };
    } else {
      out.push(i);
    }
  }
  return out;
}

/** The parts of `a` not covered by `b` (both normalized). */
export function subtractIntervals(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const i of a) {
    let start = i.start;
    while (j < b.length && (b[j] as Interval).end <= start) j++;
    let k = j;
    while (start < i.end) {
      const cut = b[k];
      if (!cut || cut.start >= i.end) {
        out.push({ start, end: i.end });
        break;
      }
      if (cut.start > start) out.push({ start, end: cut.start });
      start = Math.max(start, cut.end);
      k++;
    }
  }
  return out;
}

/** Human form used in messages and logs: "10.32.0.0-10.39.255.255". */
export function formatInterval(i: Interval): string {
  return `${formatIpv4(i.start)}-${formatIpv4(i.end - 1)}`;
}
