// The daemon's HTTP API (DESIGN §2: 127.0.0.1:6784 by default). Status routes render snapshots
// and never wait on a component; control routes (connect, forget) change the router and answer
// at once. Paths and form fields are Weave's, so existing tooling keeps working.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';
import type { HostPort } from '../net/address.js';
import type { RouterStatus } from '../mesh/status.js';
import { renderConnections, renderPeers, renderRouterSection, renderStatus, renderTargets } from './status-text.js';

/** What the API needs from the daemon; each part is a narrow view, so tests can drive it. */
export interface ApiBackend {
  readonly version: string;
  routerStatus(): RouterStatus;
  /** Extra `weave status` sections after the router's (IPAM, ...). */
  extraSections?(): (readonly string[])[];
  connect(peers: readonly string[], replace: boolean): void;
  forget(peers: readonly string[]): void;
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Largest request body we read: forms of peer addresses are small. */
const MAX_BODY = 64 * 1024;

export function createApiServer(backend: ApiBackend, log: Logger): Server {
  const server = createServer((req, res) => {
    handle(backend, req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) log.error({ err, path: req.url }, 'API request failed');
      reply(res, status, `${(err as Error).message}\n`);
    });
  });
  // Keep-alive sockets would hold the daemon open at shutdown and gain nothing for a local CLI.
  server.keepAliveTimeout = 1000;
  return server;
}

export function listen(server: Server, addr: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function handle(backend: ApiBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://weave.local');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';

  if (method === 'GET') {
    const r = (): RouterStatus => backend.routerStatus();
    switch (path) {
      case '/status':
        return reply(res, 200, renderStatus(backend.version, [renderRouterSection(r()), ...(backend.extraSections?.() ?? [])]));
      case '/status/targets':
        return reply(res, 200, renderTargets(r()));
      case '/status/connections':
        return reply(res, 200, renderConnections(r()));
      case '/status/peers':
        return reply(res, 200, renderPeers(r()));
      case '/report':
        return reply(res, 200, `${JSON.stringify({ Ready: true, Version: backend.version, Router: r() }, null, 4)}\n`, 'application/json');
    }
    if (path.startsWith('/status/')) throw new HttpError(404, `unknown status section "${path.slice(8)}"`);
  }
  if (method === 'POST' && (path === '/connect' || path === '/forget')) {
    const form = new URLSearchParams(await readBody(req));
    for (const [k, v] of url.searchParams) form.append(k, v);
    const peers = form.getAll('peer').filter((p) => p !== '');
    try {
      if (path === '/connect') backend.connect(peers, form.get('replace') === 'true');
      else backend.forget(peers);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    return reply(res, 200, '');
  }
  throw new HttpError(404, `404 page not found: ${method} ${path}`);
}

function reply(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
