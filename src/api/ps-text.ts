// `weave ps` text (reference §4.5): `weave:expose <bridge mac> <bridge cidr>` first, then one line
// `<id truncated to 12> <mac> <cidr>` per local address. Pure: renders what the daemon knows.
//
// Which lines: every address this peer handed out (the IPAM allocations), not only the pods the
// CNI plugin attached. Weave listed running containers; weft lists addresses, because an address
// with no pod behind it is exactly what an operator hunting a leak (pain #8) needs to see. The
// MAC is the one the CNI plugin recorded at ADD; for an address allocated some other way
// (POST /ip by a script, a test, or a pod whose DEL never came) it is the MAC the bridge's
// neighbour table holds for that address (the kernel learns it as soon as the pod talks to the
// host or the host to it), and `-` when the kernel has never seen it: no pod answering there.
import type { Attachment } from './cni-protocol.js';

export const EXPOSE_LINE_ID = 'weave:expose';

/** Weave printed container ids cut to 12 characters, as `docker ps` does. */
const ID_WIDTH = 12;

export interface PsFacts {
  /** The bridge's MAC and its own address (weave:expose), when there is a bridge. */
  readonly bridge?: { readonly mac: string; readonly cidr: string | undefined };
  readonly attachments: readonly Attachment[];
  /** IPAM allocations of this peer: id and address with the range's prefix. */
  readonly allocations: readonly { readonly id: string; readonly cidr: string }[];
  /** The bridge's neighbour table: IPv4 address (no prefix) to MAC. */
  readonly neighbours: ReadonlyMap<string, string>;
}

export function renderPs(f: PsFacts): string {
  const lines: string[] = [];
  if (f.bridge) lines.push(`${EXPOSE_LINE_ID} ${f.bridge.mac}${f.bridge.cidr !== undefined ? ` ${f.bridge.cidr}` : ''}`);
  const attachedCidrs = new Set<string>();
  const byId = new Map<string, { mac: string; cidrs: string[] }>();
  for (const a of f.attachments) {
    attachedCidrs.add(a.cidr);
    const entry = byId.get(a.containerId) ?? { mac: a.mac, cidrs: [] };
    entry.cidrs.push(a.cidr);
    byId.set(a.containerId, entry);
  }
  for (const a of f.allocations) {
    if (a.id === EXPOSE_LINE_ID || attachedCidrs.has(a.cidr)) continue;
    const mac = f.neighbours.get(a.cidr.split('/')[0] ?? '') ?? '-';
    const entry = byId.get(a.id) ?? { mac, cidrs: [] };
    entry.cidrs.push(a.cidr);
    byId.set(a.id, entry);
  }
  const ids = [...byId.keys()].sort();
  for (const id of ids) {
    const e = byId.get(id)!;
    lines.push(`${id.slice(0, ID_WIDTH)} ${e.mac} ${e.cidrs.join(' ')}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}
