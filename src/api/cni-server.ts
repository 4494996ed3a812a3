// The daemon's unix-socket HTTP server for the weave-net plugin (routes in cni-protocol.ts). The
// socket is root's alone (mode 0600 in a 0700 directory when we make it); a socket file left by a
// daemon that died is replaced, one a live daemon listens on is not.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../log/logger.js';
import { CniCode, type CniAddRequest, type CniCheckRequest, type CniDelRequest, type CniErrorBody, type CniGcRequest } from './cni-protocol.js';
import { CniFailure, type CniService } from './cni-service.js';

/** A GC lists every attachment of the node: allow a large body. */
const MAX_BODY = 8 * 1024 * 1024;

/** HTTP status for a CNI code: the plugin reads the body's code, people read the status. */
function httpStatus(code: number): number {
  if (code === CniCode.tryAgainLater || code === CniCode.pluginNotAvailable) return 503;
  if (code === CniCode.unknownContainer) return 404;
  if (code >= CniCode.internal) return 500;
  return 400;
}

export function createCniServer(service: CniService, log: Logger): Server {
  const server = createServer((req, res) => {
    handle(service, req, res).catch((err: unknown) => {
      const failure = err instanceof CniFailure ? err : new CniFailure(CniCode.internal, (err as Error).message);
      if (failure.code >= CniCode.internal) log.error({ err, path: req.url }, `CNI request failed: ${failure.message}`);
      const body: CniErrorBody = { code: failure.code, msg: failure.message, ...(failure.details ? { details: failure.details } : {}) };
      reply(res, httpStatus(failure.code), body);
    });
  });
  server.keepAliveTimeout = 1000;
  return server;
}

async function handle(service: CniService, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://weave.sock').pathname;
  const route = `${req.method ?? 'GET'} ${path}`;
  switch (route) {
    case 'GET /cni/status': {
      const r = service.readiness();
      if (r.ready) return reply(res, 200, {});
      throw new CniFailure(CniCode.pluginNotAvailable, r.reason);
    }
    case 'POST /cni/add':
      return reply(res, 200, await service.add(await readJson<CniAddRequest>(req)));
    case 'POST /cni/del':
      await service.del(await readJson<CniDelRequest>(req));
      return reply(res, 200, {});
    case 'POST /cni/check':
      await service.check(await readJson<CniCheckRequest>(req));
      return reply(res, 200, {});
    case 'POST /cni/gc': {
      const body = await readJson<CniGcRequest>(req);
      if (!Array.isArray(body.valid) || !body.valid.every((v) => typeof v?.containerId === 'string' && typeof v.ifName === 'string')) {
        throw new CniFailure(CniCode.decodeFailure, 'GC needs "valid": a list of {containerId, ifName}');
      }
      return reply(res, 200, await service.gc(body.valid));
    }
  }
  throw new CniFailure(CniCode.internal, `no such CNI route: ${route}`);
}

async function readJson<T>(req: IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new CniFailure(CniCode.decodeFailure, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new CniFailure(CniCode.decodeFailure, `the request is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CniFailure(CniCode.decodeFailure, 'the request is not a JSON object');
  return parsed as T;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Whether something accepts connections on the socket at `path`. */
function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Listens on the unix socket `path`, replacing a stale socket file; rejects with a one-line reason. */
export async function listenUnix(server: Server, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const existing = await lstat(path).catch(() => undefined);
  if (existing !== undefined) {
    if (!existing.isSocket()) throw new Error(`${path} exists and is not a socket`);
    if (await someoneListens(path)) throw new Error(`another process listens on ${path} (is another weaver running?)`);
    await unlink(path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
}
