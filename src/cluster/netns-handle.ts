// One network namespace of a local cluster as an object: run commands in it, start processes in
// it (stopped by the cluster's destroy()), ping from it, read its links and addresses.
import { exec, ip, ipBatch, run, type ExecOptions, type ExecResult } from './exec.js';
import { parseAddrs, parseLinks, type LinkAddresses, type LinkInfo } from './iproute-json.js';
import { netnsPath } from './netns.js';
import { NsProcess, type SpawnOptions } from './ns-process.js';
import { parsePing, type PingStats } from './ping.js';
import { tcpTransfer, type NamespaceRunner, type TcpTransferResult } from './tcp.js';
import { parseIpv4 } from '../net/ipv4.js';

/** Who keeps the processes a namespace starts, so that teardown can stop them all. */
export interface ProcessKeeper {
  /** Throws when the cluster is being destroyed. */
  adopt(process: NsProcess): void;
}

export interface PingOptions {
  /** Echo requests to send; 3 unless given. */
  readonly count?: number;
  /** Seconds between requests; 0.2 unless given (below 0.2 needs root, which the tests are). */
  readonly intervalS?: number;
  /** Seconds to wait for the last reply; 1 unless given. */
  readonly waitS?: number;
  /** ICMP payload bytes (56 by default, as ping). */
  readonly size?: number;
  /** Allow a broadcast address (`ping -b`). */
  readonly broadcast?: boolean;
  /** Forbid fragmentation (`-M do`), to probe a path MTU. */
  readonly dontFragment?: boolean;
}

export class PingError extends Error {
  constructor(
    message: string,
    readonly result: ExecResult,
  ) {
    super(message);
    this.name = 'PingError';
  }
}

export class NetnsHandle implements NamespaceRunner {
  constructor(
    /** The namespace's name, as `ip netns list` shows it. */
    readonly ns: string,
    protected readonly keeper: ProcessKeeper,
  ) {}

  /** `/run/netns/<ns>`: for `nsenter --net=` and a CNI runtime's CNI_NETNS. */
  get path(): string {
    return netnsPath(this.ns);
  }

  /** Runs `argv` here; resolves with exit status and output, whatever the exit status. */
  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return exec(this.ns, argv, options);
  }

  /** Runs `argv` here; resolves with stdout, rejects with a CommandError unless it exits 0. */
  run(argv: readonly string[], options?: ExecOptions): Promise<string> {
    return run(this.ns, argv, options);
  }

  /** `ip -n <ns> ...args`; resolves with stdout. (Not `ip()`: a pod's `ip` is its address.) */
  iproute(args: readonly string[], options?: ExecOptions): Promise<string> {
    return ip(this.ns, args, options);
  }

  /** Several `ip` command lines (without the leading `ip`) in one process, stopping at the first failure. */
  ipBatch(lines: readonly string[], options?: ExecOptions): Promise<void> {
    return ipBatch(this.ns, lines, options);
  }

  /** Starts `argv` here; the cluster stops it on destroy() if it is still running. */
  spawn(argv: readonly string[], options?: SpawnOptions): NsProcess {
    const proc = new NsProcess(this.ns, argv, options);
    this.keeper.adopt(proc);
    return proc;
  }

  /**
   * Sets a sysctl of this namespace (e.g. "net.ipv4.ip_forward", "1"). Through /proc/sys rather
   * than the `sysctl` tool, which minimal Debian images lack; net.* entries there belong to the
   * namespace of the process that opens them.
   */
  async sysctl(key: string, value: string): Promise<void> {
    if (!/^[a-z0-9_]+(\.[a-z0-9_-]+)+$/.test(key) || /[\n\0]/.test(value)) {
      throw new RangeError(`invalid sysctl ${key}=${JSON.stringify(value)}`);
    }
    await this.run(['sh', '-c', 'printf "%s\\n" "$2" > "/proc/sys/$1"', 'sh', key.replaceAll('.', '/'), value]);
  }

  /**
   * Pings an IPv4 address from here and parses the result. Resolves even when every request was
   * lost (check `received`/`lossPercent`); rejects with a PingError when ping could not send at all
   * (e.g. "Network is unreachable": no route).
   */
  async ping(address: string, options: PingOptions = {}): Promise<PingStats> {
    parseIpv4(address); // a literal address only: never a name, which would mean a DNS query
    const count = options.count ?? 3;
    const intervalS = options.intervalS ?? 0.2;
    const waitS = options.waitS ?? 1;
    // -w bounds the whole run, so a ping never outlives its test even if replies never come.
    const deadlineS = Math.ceil(count * intervalS + waitS + 1);
    const argv = [
      'ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', String(waitS), '-w', String(deadlineS),
      ...(options.size === undefined ? [] : ['-s', String(options.size)]),
      ...(options.broadcast ? ['-b'] : []),
      ...(options.dontFragment ? ['-M', 'do'] : []),
      address,
    ];
    const result = await this.exec(argv, { timeoutMs: (deadlineS + 5) * 1000 });
    const stats = parsePing(result.stdout);
    if (stats === undefined) {
      throw new PingError(`ping ${address} from netns ${this.ns} sent nothing: ${(result.stderr || result.stdout).trim()}`, result);
    }
    return stats;
  }

  /** `ip -d -j link show`. */
  async links(): Promise<LinkInfo[]> {
    return parseLinks(await this.iproute(['-d', '-j', 'link', 'show']));
  }

  /** One link by name, or undefined if there is none. */
  async link(name: string): Promise<LinkInfo | undefined> {
    return (await this.links()).find((l) => l.ifname === name);
  }

  /** `ip -d -j addr show`: every link with its addresses. */
  async addresses(): Promise<LinkAddresses[]> {
    return parseAddrs(await this.iproute(['-d', '-j', 'addr', 'show']));
  }

  /** Sends `bytes` random bytes over TCP from here to a sink started on `host` in `to`. */
  tcpTransferTo(to: NetnsHandle, host: string, bytes?: number): Promise<TcpTransferResult> {
    return tcpTransfer(this, to, host, bytes);
  }
}
