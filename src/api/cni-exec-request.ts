// Reading what the executable relays (POST /cni/exec) and what it leaves in the pending-release
// directory while the daemon is down, and deciding what a replayed release's outcome means. Pure:
// the server and the service do the I/O.
import { CniCode, type CniDelRequest, type CniExecOutcome, type CniExecRequest } from './cni-protocol.js';

/** {"env": {string: string}, "stdin": string}, or undefined for anything else. */
export function execRequestOf(o: unknown): CniExecRequest | undefined {
  if (typeof o !== 'object' || o === null) return undefined;
  const { env, stdin } = o as { env?: unknown; stdin?: unknown };
  if (typeof env !== 'object' || env === null || Array.isArray(env) || typeof stdin !== 'string') return undefined;
  if (!Object.values(env).every((v) => typeof v === 'string')) return undefined;
  return { env: env as Record<string, string>, stdin };
}

/**
 * A pending release as found on disk: the DEL the executable would have relayed, or a
 * CniDelRequest, which the Node.js plugin of earlier versions wrote (an upgraded node may hold some).
 */
export type PendingRelease = { readonly kind: 'relayed'; readonly req: CniExecRequest } | { readonly kind: 'del'; readonly req: CniDelRequest };

export function pendingReleaseOf(o: unknown): PendingRelease | undefined {
  const relayed = execRequestOf(o);
  // The record is a DEL whatever its env says: nothing else is ever written there.
  if (relayed !== undefined) return { kind: 'relayed', req: { env: { ...relayed.env, CNI_COMMAND: 'DEL' }, stdin: relayed.stdin } };
  if (typeof o !== 'object' || o === null) return undefined;
  const { containerId, ifName } = o as { containerId?: unknown; ifName?: unknown };
  return typeof containerId === 'string' && typeof ifName === 'string' ? { kind: 'del', req: { containerId, ifName } } : undefined;
}

/**
 * What a replayed DEL's outcome means for its record: done (remove it), retry (keep it for the
 * next round: the daemon said try later), or refused (remove it: a DEL refused for its config or
 * environment would be refused the same way forever).
 */
export function replayVerdict(out: CniExecOutcome): 'done' | 'retry' | 'refused' {
  if (out.exitCode === 0) return 'done';
  let code: unknown;
  try {
    code = (JSON.parse(out.stdout) as { code?: unknown }).code;
  } catch {
    code = undefined;
  }
  return code === CniCode.tryAgainLater ? 'retry' : 'refused';
}

/**
 * A stderr line as a header value (CNI_STDERR_HEADER): every byte of its UTF-8 outside printable
 * ASCII, and '%', as %XX, since a header may hold neither a line break nor arbitrary bytes.
 */
export function percentEncode(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) out += b >= 0x20 && b < 0x7f && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`;
  return out;
}
