// The daemon's HTTP API (DESIGN §2: 127.0.0.1:6784 by default). Status routes render snapshots
// and never wait on a component; control routes (connect, forget) change the router and answer
// at once. Paths and form fields are Weave's, so existing tooling keeps working.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';
import type { HostPort } from '../net/address.js';
import type { RouterStatus } from '../mesh/status.js';
import type { Result } from '../ipam/service.js';
import type { Registry } from 'prom-client';
import type { Attachment } from './cni-protocol.js';
import { renderConnections, renderPeers, renderRouterSection, renderStatus, renderTargets } from './status-text.js';
import { renderPs, EXPOSE_LINE_ID } from './ps-text.js';


/** The IPAM routes' view of the allocator (src/ipam/service.ts). */
export interface IpamApi {
  allocate(id: string): Promise<Result<string>>;
  lookup(id: string): string | undefined;
  claim(id: string, address: string): Promise<Result<undefined>>;
  release(id: string): Promise<Result<undefined>>;
  owned(): { containerid: string; addrs: string[] }[];
  rmpeer(nameOrNickname: string): Promise<Result<string>>;
  serviceLines(): string[];
  rangesText(): string;
  report(): Record<string, unknown>;
}

/** What the API needs from the daemon; each part is a narrow view, so tests can drive it. */
export interface ApiBackend {
  readonly version: string;
  routerStatus(): RouterStatus;
  connect(peers: readonly string[], replace: boolean): void;
  forget(peers: readonly string[]): void;
  readonly ipam?: IpamApi;
  readonly metrics?: Registry;
  /** The pods attached through the CNI plugin, for `weave ps` (absent without a data path). */
  attachments?(): readonly Attachment[];
  /** The bridge's MAC and neighbour table, for `weave ps` (absent without a data path). */
  bridgeView?(): Promise<{ readonly mac: string | undefined; readonly neighbours: ReadonlyMap<string, string> }>;
  /** `weave expose`: the bridge's own address from IPAM, put on the bridge; the CIDR. */
  expose?(): Promise<Result<string>>;
  /**
   * `weave reset`: hand our ranges to a live peer, remove bridge, TAP, rules and state. Returns
   * the operator's message and what to do once it has been sent (stop the daemon).
   */
  reset?(): Promise<{ readonly message: string; readonly afterReply: () => void }>;
}

export interface ApiServerOptions {
  /** Serve only what reads (status, report, metrics): for addresses off loopback. */
  readonly readOnly?: boolean;
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Largest request body we read: forms of peer addresses are small. */
const MAX_BODY = 64 * 1024;

export function createApiServer(backend: ApiBackend, log: Logger, options: ApiServerOptions = {}): Server {
  const server = createServer((req, res) => {
    if (options.readOnly && req.method !== 'GET') {
      reply(res, 405, 'this address serves status and metrics only\n');
      return;
    }
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
        return reply(res, 200, renderStatus(backend.version, [renderRouterSection(r()), ...(backend.ipam ? [backend.ipam.serviceLines()] : [])]));
      case '/status/ipam':
        if (!backend.ipam) break;
        return reply(res, 200, backend.ipam.rangesText());
      case '/status/targets':
        return reply(res, 200, renderTargets(r()));
      case '/status/connections':
        return reply(res, 200, renderConnections(r()));
      case '/status/peers':
        return reply(res, 200, renderPeers(r()));
      case '/report':
        return reply(res, 200, `${JSON.stringify({ Ready: true, Version: backend.version, Router: r(), ...(backend.ipam ? { IPAM: backend.ipam.report() } : {}) }, null, 4)}\n`, 'application/json');
      case '/metrics':
        if (!backend.metrics) break;
        return reply(res, 200, await backend.metrics.metrics(), backend.metrics.contentType);
      case '/ip':
        if (!backend.ipam) break;
        return reply(res, 200, `${JSON.stringify({ owned: backend.ipam.owned() })}\n`, 'application/json');
      case '/ps':
        return reply(res, 200, await psText(backend));
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
  if (method === 'POST' && path === '/expose' && backend.expose) {
    const r = await backend.expose();
    if (!r.ok) throw new HttpError(r.status, r.error);
    return reply(res, 200, `${r.value}\n`);
  }
  if (method === 'DELETE' && path === '/peer' && backend.reset) {
    const { message, afterReply } = await backend.reset();
    res.once('finish', afterReply);
    return reply(res, 200, message);
  }
  if (backend.ipam && (path.startsWith('/ip/') || path.startsWith('/peer/'))) {
    return handleIpam(backend.ipam, method, path, res);
  }
  throw new HttpError(404, `404 page not found: ${method} ${path}`);
}

/** /ip/{id}[/{ip}[/{len}]] and /peer/{name}: Weave's IPAM routes. */
async function handleIpam(ipam: IpamApi, method: string, path: string, res: ServerResponse): Promise<void> {
  const parts = path.split('/').slice(1).map((p) => decodeURIComponent(p));
  const [kind, id, ...rest] = parts;
  if (id === undefined || id === '' || id.length > 256 || /[\x00-\x1f]/.test(id)) throw new HttpError(400, 'missing or invalid id');
  const answer = <T>(r: Result<T>, ok: (v: T) => void): void => {
    if (r.ok) ok(r.value);
    else reply(res, r.status, `${r.error}\n`);
  };
  if (kind === 'peer' && rest.length === 0 && method === 'DELETE') {
    return answer(await ipam.rmpeer(id), (text) => reply(res, 200, `${text}\n`));
  }
  if (kind === 'ip') {
    if (rest.length === 0) {
      switch (method) {
        case 'POST':
          return answer(await ipam.allocate(id), (cidr) => reply(res, 200, cidr));
        case 'GET': {
          const cidr = ipam.lookup(id);
          if (cidr === undefined) throw new HttpError(404, `no IP address allocated to ${id}`);
          return reply(res, 200, cidr);
        }
        case 'DELETE':
          return answer(await ipam.release(id), () => reply(res, 204, ''));
      }
    } else if (method === 'PUT' && rest.length <= 2) {
      // PUT /ip/{id}/{ip} or /ip/{id}/{ip}/{prefix length}, as Weave's claim.
      return answer(await ipam.claim(id, rest[0] ?? ''), () => reply(res, 204, ''));
    }
  }
  throw new HttpError(404, `404 page not found: ${method} ${path}`);
}

/** `weave ps`: the bridge and every local address (see ps-text.ts for which and why). */
async function psText(backend: ApiBackend): Promise<string> {
  const view = backend.bridgeView ? await backend.bridgeView() : undefined;
  const allocations = (backend.ipam?.owned() ?? []).flatMap((o) => o.addrs.map((cidr) => ({ id: o.containerid, cidr })));
  return renderPs({
    ...(view?.mac !== undefined ? { bridge: { mac: view.mac, cidr: backend.ipam?.lookup(EXPOSE_LINE_ID) } } : {}),
    attachments: backend.attachments?.() ?? [],
    allocations,
    neighbours: view?.neighbours ?? new Map(),
  });
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
