// Calls the daemon's CNI socket as the plugin does (HTTP over the unix socket), for the daemon
// tests: the socket is a file, so the test process reaches it from the host's namespace.
import { request } from 'node:http';

export interface SocketAnswer {
  readonly status: number;
  /** The parsed JSON body (a CniErrorBody for any status but 200). */
  readonly body: Record<string, unknown>;
}

export function cniCall(socketPath: string, method: 'GET' | 'POST', path: string, body?: unknown, rawBody?: string): Promise<SocketAnswer> {
  return new Promise((resolve, reject) => {
    const payload = rawBody ?? (body === undefined ? '' : JSON.stringify(body));
    const req = request({ socketPath, path, method, agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
        } catch {
          reject(new Error(`not JSON from ${path}: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
