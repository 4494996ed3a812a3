// The mesh peers of a node, from the API's Node objects: every other node's InternalIP (its
// ExternalIP when it has none), as Weave's kube-utils did. Pure.
import { parseIpv4 } from '../net/ipv4.js';

/** The part of a Node this needs (structurally compatible with @kubernetes/client-node's V1Node). */
export interface NodeLike {
  readonly metadata?: { readonly name?: string };
  readonly status?: { readonly addresses?: readonly { readonly type: string; readonly address: string }[] };
}

/** The node's address for the mesh: InternalIP, else ExternalIP; undefined when it has neither (IPv4). */
export function nodeAddress(node: NodeLike): string | undefined {
  const addresses = node.status?.addresses ?? [];
  for (const type of ['InternalIP', 'ExternalIP']) {
    for (const a of addresses) {
      if (a.type === type && isIpv4Text(a.address)) return a.address;
    }
  }
  return undefined;
}

/** The other nodes' addresses, sorted and without duplicates; nodes without an address are skipped. */
export function peerAddresses(nodes: readonly NodeLike[], selfNodeName: string): string[] {
  const out = new Set<string>();
  for (const n of nodes) {
    if (n.metadata?.name === selfNodeName) continue;
    const a = nodeAddress(n);
    if (a !== undefined) out.add(a);
  }
  return [...out].sort();
}

/** Names of the nodes in a list. */
export function nodeNames(nodes: readonly NodeLike[]): Set<string> {
  return new Set(nodes.map((n) => n.metadata?.name).filter((n): n is string => n !== undefined));
}

/** KUBE_PEERS: addresses separated by spaces or commas. */
export function parseKubePeers(text: string): string[] {
  return text.split(/[\s,]+/).filter((p) => p !== '');
}

function isIpv4Text(text: string): boolean {
  try {
    parseIpv4(text);
    return true;
  } catch {
    return false;
  }
}
