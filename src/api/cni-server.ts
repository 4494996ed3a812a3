// The daemon's unix-socket HTTP server for the weave-net plugin (routes in cni-protocol.ts). The
// socket is root's alone (mode 0600 in a 0700 directory when we make it); a socket file left by a
// daemon that died is replaced, one a live daemon listens on is not.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../log/logger.js';
import {
  CNI_EXEC_PATH, CNI_EXIT_HEADER, CNI_STDERR_HEADER, CniCode,
  type CniAddRequest, type CniCheckRequest, type CniDelRequest, type CniErrorBody, type CniExecOutcome, type CniExecRequest, type CniGcRequest, type CniRelay,
} from './cni-protocol.js';
import { CniFailure, type CniService } from './cni-service.js';
import { execRequestOf, percentEncode } from './cni-exec-request.js';

/** A GC lists every attachment of the node: allow a large body. */
const MAX_BODY = 8 * 1024 * 1024;

/** HTTP status for a CNI code: the plugin reads the body's code, people read the status. */
function httpStatus(code: number): number {
  if (code === CniCode.tryAgainLater || code === CniCode.pluginNotAvailable) return 503;
  if (code === CniCode.unknownContainer) return 404;
  if (code >= CniCode.internal) return 500;
  return 400;
}

export function createCniServer(service: CniService, log: Logger, relay?: CniRelay): Server {
  const server = createServer((req, res) => {
    handle(service, relay, req, res).catch((err: unknown) => {
      const answer = failureAnswer(err, log, req.url);
      reply(res, answer.status, answer.body);
    });
  });
  server.keepAliveTimeout = 1000;
  return server;
}

/** One route's answer: the status and the JSON body. */
export interface CniRouteAnswer {
  readonly status: number;
  readonly body: unknown;
}

function failureAnswer(err: unknown, log: Logger, path: string | undefined): CniRouteAnswer {
  const failure = err instanceof CniFailure ? err : new CniFailure(CniCode.internal, (err as Error).message);
  if (failure.code >= CniCode.internal) log.error({ err, path }, `CNI request failed: ${failure.message}`);
  const body: CniErrorBody = { code: failure.code, msg: failure.message, ...(failure.details ? { details: failure.details } : {}) };
  return { status: httpStatus(failure.code), body };
}

/**
 * The routes of cni-protocol.ts, without HTTP: what the server answers for `method path` with
 * `body` (parsed JSON). The relayed plugin (src/cni/relay.ts) calls this in process, so that it
 * takes exactly the paths a request over the socket takes. Never throws.
 */
export async function dispatchCni(service: CniService, log: Logger, method: string, path: string, body: unknown): Promise<CniRouteAnswer> {
  try {
    return { status: 200, body: await route(service, `${method} ${path}`, body) };
  } catch (err) {
    return failureAnswer(err, log, path);
  }
}

async function route(service: CniService, route: string, body: unknown): Promise<unknown> {
  const object = (): Record<string, unknown> => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new CniFailure(CniCode.decodeFailure, 'the request is not a JSON object');
    return body as Record<string, unknown>;
  };
  switch (route) {
    case 'GET /cni/status': {
      const r = service.readiness();
      if (r.ready) return {};
      throw new CniFailure(CniCode.pluginNotAvailable, r.reason);
    }
    case 'POST /cni/add':
      return service.add(object() as unknown as CniAddRequest);
    case 'POST /cni/del':
      await service.del(object() as unknown as CniDelRequest);
      return {};
    case 'POST /cni/check':
      await service.check(object() as unknown as CniCheckRequest);
      return {};
    case 'POST /cni/gc': {
      const req = object() as unknown as CniGcRequest;
      if (!Array.isArray(req.valid) || !req.valid.every((v) => typeof v?.containerId === 'string' && typeof v.ifName === 'string')) {
        throw new CniFailure(CniCode.decodeFailure, 'GC needs "valid": a list of {containerId, ifName}');
      }
      return service.gc(req.valid);
    }
  }
  throw new CniFailure(CniCode.internal, `no such CNI route: ${route}`);
}

async function handle(service: CniService, relay: CniRelay | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://weave.sock').pathname;
  const method = req.method ?? 'GET';
  if (method === 'POST' && path === CNI_EXEC_PATH) {
    if (relay === undefined) throw new CniFailure(CniCode.internal, 'this daemon does not run relayed CNI commands');
    return replyExec(res, await relay(parseExecRequest(await readJson(req))));
  }
  const answer = await route(service, `${method} ${path}`, method === 'GET' ? undefined : await readJson(req));
  reply(res, 200, answer);
}

/** The relayed request, or a decode failure (6) naming the shape wanted. */
function parseExecRequest(o: unknown): CniExecRequest {
  const req = execRequestOf(o);
  if (req === undefined) throw new CniFailure(CniCode.decodeFailure, `${CNI_EXEC_PATH} needs {"env": {name: value}, "stdin": text}`);
  return req;
}

/**
 * The outcome as the executable expects it: the body is printed as it is, the exit status and
 * the stderr line travel in headers. The line is percent-encoded (bytes outside printable ASCII,
 * and '%'), since a header may not hold a line break or arbitrary bytes.
 */
function replyExec(res: ServerResponse, outcome: CniExecOutcome): void {
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(outcome.stdout), [CNI_EXIT_HEADER]: outcome.exitCode,
  };
  if (outcome.stderr) headers[CNI_STDERR_HEADER] = percentEncode(outcome.stderr);
  res.writeHead(200, headers);
  res.end(outcome.stdout);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new CniFailure(CniCode.decodeFailure, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new CniFailure(CniCode.decodeFailure, `the request is not JSON: ${(err as Error).message}`);
  }
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
