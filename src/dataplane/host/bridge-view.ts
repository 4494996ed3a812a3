// What `weave ps` needs from the host about the bridge: its MAC and its neighbour table (which
// MAC the kernel last saw at each pod address). One `sh` run of two `ip -j` commands; parsing
// is pure and tolerant (a missing bridge is an empty view, not an error).
import { runChecked, type Runner } from './runner.js';

export interface BridgeView {
  /** The bridge's MAC; undefined when the bridge does not exist. */
  readonly mac: string | undefined;
  /** IPv4 address to MAC, for neighbours the kernel has a MAC for. */
  readonly neighbours: ReadonlyMap<string, string>;
}

const MARK = '@@weft-bridge-view@@';

export function bridgeViewCommand(bridge: string): string[] {
  const script = `ip -j link show dev "$1" 2>/dev/null; echo ${MARK}; ip -4 -j neigh show dev "$1" 2>/dev/null; exit 0`;
  return ['sh', '-c', script, 'sh', bridge];
}

function jsonArray(text: string): unknown[] {
  const t = text.trim();
  if (t === '') return [];
  try {
    const v: unknown = JSON.parse(t);
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

/** Neighbour states in which the MAC is not known (or known to be wrong). */
const NO_MAC_STATES = new Set(['INCOMPLETE', 'FAILED', 'NOARP']);

export function parseBridgeView(output: string): BridgeView {
  const [linkText = '', neighText = ''] = output.split(MARK);
  const link = jsonArray(linkText)[0] as { address?: unknown } | undefined;
  const neighbours = new Map<string, string>();
  for (const n of jsonArray(neighText) as { dst?: unknown; lladdr?: unknown; state?: unknown }[]) {
    const states = Array.isArray(n.state) ? n.state.map(String) : [];
    if (typeof n.dst !== 'string' || typeof n.lladdr !== 'string' || states.some((s) => NO_MAC_STATES.has(s))) continue;
    neighbours.set(n.dst, n.lladdr);
  }
  return { mac: typeof link?.address === 'string' ? link.address : undefined, neighbours };
}

export async function readBridgeView(runner: Runner, bridge: string): Promise<BridgeView> {
  return parseBridgeView(await runChecked(runner, bridgeViewCommand(bridge)));
}
