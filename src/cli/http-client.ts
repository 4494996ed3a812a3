// The CLI's side of the HTTP API: one request, a clear one-line error when the daemon is not
// there, too slow, or answers something that is not HTTP; never a hang.
import { request } from 'node:http';
import { formatHostPort, type HostPort } from '../net/address.js';

export interface ApiResponse {
  readonly status: number;
  readonly body: string;
}

/** The daemon could not be asked, or gave no usable answer: the message is the one line to print. */
export class DaemonUnreachable extends Error {}

/** As Weave's `curl --connect-timeout 3`: a local daemon that accepts nothing in 3 s is not there. */
export const CONNECT_TIMEOUT_MS = 3_000;
/** Status, report, ps, connect, forget: snapshots, answered at once by a healthy daemon. */
export const DEFAULT_ANSWER_TIMEOUT_MS = 10_000;

export interface CallOptions {
  readonly body?: string;
  /** Longest wait for the whole answer, once connected. */
  readonly timeoutMs?: number;
  /** How to tell the operator to wait longer (e.g. the environment variable). */
  readonly timeoutHint?: string;
}

export function callApi(addr: HostPort, method: string, path: string, options: CallOptions = {}): Promise<ApiResponse> {
  const where = formatHostPort(addr);
  const timeoutMs = options.timeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let failure: string | undefined;
    const req = request({
      host: addr.host, port: addr.port, method, path,
      headers: options.body !== undefined
        ? { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(options.body) }
        : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(answerTimer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => reject(new DaemonUnreachable(`lost the connection to the weave daemon at ${where}: ${failure ?? err.message}`)));
    });
    const give = (why: string): void => {
      failure = why;
      req.destroy(new Error(why));
    };
    const connectTimer = setTimeout(() => give(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`), CONNECT_TIMEOUT_MS);
    const hint = options.timeoutHint !== undefined ? ` (${options.timeoutHint})` : '';
    const answerTimer = setTimeout(() => give(`no answer within ${timeoutMs / 1000} s${hint}`), timeoutMs);
    req.on('socket', (socket) => socket.once('connect', () => clearTimeout(connectTimer)));
    req.on('close', () => {
      clearTimeout(connectTimer);
      clearTimeout(answerTimer);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      clearTimeout(answerTimer);
      if (failure !== undefined) {
        reject(new DaemonUnreachable(`the weave daemon at ${where} gave no answer: ${failure}`));
      } else if (err.code === 'ECONNREFUSED') {
        reject(new DaemonUnreachable(`the weave daemon is not reachable at ${where}: connection refused; is weaver running?`));
      } else if (typeof err.code === 'string' && err.code.startsWith('HPE_')) {
        reject(new DaemonUnreachable(`the weave daemon at ${where} sent an answer that is not HTTP (${err.code}): is WEAVE_HTTP_ADDR the daemon's API address?`));
      } else if (err.code === 'ECONNRESET') {
        reject(new DaemonUnreachable(`the weave daemon at ${where} closed the connection without an answer`));
      } else {
        reject(new DaemonUnreachable(`the weave daemon is not reachable at ${where}: ${err.message}`));
      }
    });
    req.end(options.body);
  });
}

/** The one line an error answer becomes on stderr: the daemon's message, or what we got instead. */
export function errorLine(r: ApiResponse): string {
  const text = r.body.trim();
  if (text === '') return `the daemon answered HTTP ${r.status} with no message`;
  const lines = text.split('\n');
  const first = lines[0]!.trim();
  if (lines.length === 1 && first.length <= 300) return first;
  return `the daemon answered HTTP ${r.status}: ${first.slice(0, 200)}${first.length > 200 || lines.length > 1 ? ' ...' : ''}`;
}
