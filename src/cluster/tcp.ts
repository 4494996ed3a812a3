// A TCP transfer check between two namespaces: a sink in one, a sender in the other, a random
// payload whose SHA-256 both ends compute. Passing means every byte arrived, in order, intact.
import { fileURLToPath } from 'node:url';
import type { ExecOptions, ExecResult } from './exec.js';
import type { NsProcess } from './ns-process.js';

const TCP_PEER = fileURLToPath(new URL('./tcp-peer.js', import.meta.url));

/** What the transfer helpers need of a namespace: spawn and exec inside it. */
export interface NamespaceRunner {
  readonly ns: string;
  spawn(argv: readonly string[]): NsProcess;
  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
}

export interface TcpDigest {
  readonly bytes: number;
  readonly sha256: string;
}

export interface TcpSink {
  readonly host: string;
  readonly port: number;
  /** What arrived, once the sender has closed. */
  readonly received: Promise<TcpDigest>;
  readonly process: NsProcess;
  stop(): Promise<void>;
}

export interface TcpTransferResult {
  readonly sent: TcpDigest;
  readonly received: TcpDigest;
  /** Same byte count and same digest at both ends. */
  readonly intact: boolean;
  /** From connect to the sink's answer. */
  readonly ms: number;
  readonly mbitPerSecond: number;
}

function isDigest(v: unknown): v is TcpDigest {
  return typeof v === 'object' && v !== null && typeof (v as TcpDigest).bytes === 'number' && typeof (v as TcpDigest).sha256 === 'string';
}

/** Starts a sink listening on `host`:`port` in `where` (port 0: any free port, reported back). */
export async function startTcpSink(where: NamespaceRunner, host: string, port = 0, timeoutMs = 10_000): Promise<TcpSink> {
  const proc = where.spawn([process.execPath, TCP_PEER, 'sink', host, String(port)]);
  const listening = await proc.waitForOutput(/"listening":(\d+)/, timeoutMs).catch(async (err: unknown) => {
    await proc.stop();
    throw err;
  });
  const received = proc.waitForOutput(/\{"received":(\{[^\n]*\})\}/, Infinity).then((m) => {
    const digest: unknown = JSON.parse(m[1] ?? '');
    if (!isDigest(digest)) throw new Error(`tcp sink printed ${m[0]}`);
    return digest;
  });
  // Stopping a sink that never got a connection is normal; only a waiting caller sees the rejection.
  received.catch(() => undefined);
  return {
    host,
    port: Number(listening[1]),
    received,
    process: proc,
    stop: async () => void (await proc.stop(500)),
  };
}

/** Sends `bytes` random bytes from `where` to a sink at `host`:`port`. */
export async function tcpSend(where: NamespaceRunner, host: string, port: number, bytes: number, timeoutMs = 30_000): Promise<TcpTransferResult> {
  const result = await where.exec([process.execPath, TCP_PEER, 'send', host, String(port), String(bytes)], { timeoutMs });
  if (result.code !== 0) {
    throw new Error(`tcp send to ${host}:${port} from netns ${where.ns} failed (${result.timedOut ? 'timed out' : `exit ${result.code}`}): ${result.stderr.trim()}`);
  }
  const parsed: unknown = JSON.parse(result.stdout.trim());
  const { sent, received, ms } = parsed as { sent: unknown; received: unknown; ms: unknown };
  if (!isDigest(sent) || !isDigest(received) || typeof ms !== 'number') throw new Error(`tcp send printed ${result.stdout}`);
  return {
    sent,
    received,
    intact: sent.bytes === received.bytes && sent.sha256 === received.sha256,
    ms,
    mbitPerSecond: ms > 0 ? (sent.bytes * 8) / (ms * 1000) : 0,
  };
}

/** A full check: a sink on `host` in `to`, `bytes` sent from `from`, the sink stopped afterwards. */
export async function tcpTransfer(from: NamespaceRunner, to: NamespaceRunner, host: string, bytes = 1 << 20, timeoutMs = 30_000): Promise<TcpTransferResult> {
  const sink = await startTcpSink(to, host, 0, timeoutMs);
  try {
    return await tcpSend(from, host, sink.port, bytes, timeoutMs);
  } finally {
    await sink.stop();
  }
}
