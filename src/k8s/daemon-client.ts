// What the entrypoint asks of the local weaver over its HTTP API (WEAVE_HTTP_ADDR): is it up,
// does IPAM have the ring, rmpeer, and the connection targets (`weave connect --replace`).
import { callApi } from '../cli/http-client.js';
import type { HostPort } from '../net/address.js';

export type RmpeerResult =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly error: string };

export class DaemonClient {
  constructor(readonly addr: HostPort) {}

  /** True once the HTTP API answers /status. */
  async ready(): Promise<boolean> {
    const r = await callApi(this.addr, 'GET', '/status', { timeoutMs: 5000 }).catch(() => undefined);
    return r?.status === 200;
  }

  /**
   * Whether IPAM holds the ring. rmpeer before that would take over nothing and say it did, and
   * the victim's ranges would then stay lost once its entry is gone.
   */
  async hasRing(): Promise<boolean> {
    const r = await callApi(this.addr, 'GET', '/report', { timeoutMs: 5000 });
    if (r.status !== 200) return false;
    const report = JSON.parse(r.body) as { IPAM?: { Entries?: unknown[] } };
    return (report.IPAM?.Entries?.length ?? 0) > 0;
  }

  async rmpeer(peer: string): Promise<RmpeerResult> {
    const r = await callApi(this.addr, 'DELETE', `/peer/${encodeURIComponent(peer)}`, { timeoutMs: 40_000 });
    return r.status === 200 ? { ok: true, text: r.body.trim() } : { ok: false, error: `HTTP ${r.status}: ${r.body.trim()}` };
  }

  /** Makes `peers` the connection targets (replacing the previous ones). */
  async replaceTargets(peers: readonly string[]): Promise<void> {
    const form = new URLSearchParams(peers.map((p): [string, string] => ['peer', p]));
    form.set('replace', 'true');
    const r = await callApi(this.addr, 'POST', '/connect', { body: form.toString() });
    if (r.status !== 200) throw new Error(`POST /connect: HTTP ${r.status}: ${r.body.trim()}`);
  }
}
