// CPU time from /proc: what a process (all its threads) has used, and how busy the whole machine
// is. The kernel counts both in clock ticks (USER_HZ), which is 100 on every Linux we run on.
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

const USER_HZ = 100;

/** utime + stime of process `pid` and all its threads so far, in seconds; undefined once it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5) are utime and stime; field 3 is the first after the name.
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  return (utime + stime) / USER_HZ;
}

export interface MachineCpu {
  /** Ticks spent on anything but idle and iowait, all cores together. */
  readonly busy: number;
  readonly total: number;
}

/** The first line of /proc/stat: the machine's CPU time so far. */
export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal (guest times are included in user already)
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** How busy the machine was between two samples, as a fraction of all its cores (0..1). */
export function busyFraction(before: MachineCpu, after: MachineCpu): number {
  const total = after.total - before.total;
  return total > 0 ? (after.busy - before.busy) / total : 0;
}

/** /proc/loadavg's three load averages. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export interface ProcessSample {
  readonly comm: string;
  /** utime + stime so far, all threads, in seconds. */
  readonly cpu: number;
  /** Inode of its network namespace (as /run/netns/<name> has it); undefined if unreadable. */
  readonly netns: number | undefined;
  /** A kernel thread (a child of kthreadd): softirq and workqueue work, whoever caused it. */
  readonly kernel: boolean;
}

/** Every process on the machine now, by pid. */
export function sampleProcesses(): Map<number, ProcessSample> {
  const out = new Map<number, ProcessSample>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      const ppid = Number(fields[4 - 3]);
      const cpu = (Number(fields[14 - 3]) + Number(fields[15 - 3])) / USER_HZ;
      let netns: number | undefined;
      try {
        netns = Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`))?.[1]);
      } catch {
        netns = undefined; // a kernel thread, or gone
      }
      out.set(pid, { comm: stat.slice(stat.indexOf('(') + 1, close), cpu, netns, kernel: pid === 2 || ppid === 2 });
    } catch {
      // gone between readdir and read
    }
  }
  return out;
}

/** The inode of a named network namespace, to recognise its processes in ProcessSample.netns. */
export function netnsInode(name: string): number | undefined {
  try {
    return statSync(`/run/netns/${name}`).ino;
  } catch {
    return undefined;
  }
}

/**
 * CPU-seconds used between two samples by user processes that `ours` does not claim (kernel
 * threads left out: they do our softirq work as well as others'), and the busiest of them.
 */
export function othersCpu(
  before: ReadonlyMap<number, ProcessSample>,
  after: ReadonlyMap<number, ProcessSample>,
  ours: (pid: number, p: ProcessSample) => boolean,
): { seconds: number; who: string } {
  const used = [...after]
    .filter(([pid, p]) => !p.kernel && !ours(pid, p))
    .map(([pid, p]) => ({ comm: p.comm, used: p.cpu - (before.get(pid)?.cpu ?? 0) }))
    .filter((p) => p.used > 0)
    .sort((a, b) => b.used - a.used);
  const who = used.filter((p) => p.used >= 0.05).slice(0, 3).map((p) => `${p.comm} ${p.used.toFixed(2)}`).join(', ');
  return { seconds: used.reduce((a, p) => a + p.used, 0), who };
}
