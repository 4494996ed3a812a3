// The CLI's side of the HTTP API: one request, a clear one-line error when the daemon is not
// there or too slow, never a hang.
import { request } from 'node:http';
import { formatHostPort, type HostPort } from '../net/address.js';

export interface ApiResponse {
  readonly status: number;
  readonly body: string;
}

export class DaemonUnreachable extends Error {}

export function callApi(addr: HostPort, method: string, path: string, options: { body?: string; timeoutMs?: number } = {}): Promise<ApiResponse> {
  const where = formatHostPort(addr);
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = request({
      host: addr.host, port: addr.port, method, path,
      headers: options.body !== undefined
        ? { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(options.body) }
        : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => reject(new DaemonUnreachable(`lost the connection to the weave daemon at ${where}: ${err.message}`)));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ECONNREFUSED' ? 'connection refused; is weaver running?' : err.message;
      reject(new DaemonUnreachable(`the weave daemon is not reachable at ${where}: ${why}`));
    });
    req.end(options.body);
  });
}
