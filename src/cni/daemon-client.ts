// One HTTP request to the daemon over its unix socket. It never throws: the caller decides what
// "no daemon" means for its command (ADD: try later; DEL: record the release).
import { request } from 'node:http';

export type DaemonAnswer =
  | { readonly kind: 'answer'; readonly status: number; readonly body: string }
  /** Nothing there: no socket file, nobody listening, or the connection broke. */
  | { readonly kind: 'unreachable'; readonly reason: string }
  | { readonly kind: 'timeout' };

export type DaemonCall = (socketPath: string, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number) => Promise<DaemonAnswer>;

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no socket there',
  ECONNREFUSED: 'nothing listens on the socket',
  ECONNRESET: 'the connection was reset',
  EPIPE: 'the connection was closed',
  EACCES: 'permission denied',
  ENOTSOCK: 'that path is not a socket',
};

export const callDaemon: DaemonCall = (socketPath, method, path, body, timeoutMs) => {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: DaemonAnswer) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(a);
      }
    };
    // agent: false, so no kept-alive socket holds the process open after the answer.
    const req = request({
      socketPath, path, method, agent: false,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ kind: 'answer', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'unreachable', reason: REASONS[err.code ?? ''] ?? err.message }));
    });
    const timer = setTimeout(() => {
      done({ kind: 'timeout' });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'unreachable', reason: REASONS[err.code ?? ''] ?? err.message }));
    req.end(payload);
  });
};
