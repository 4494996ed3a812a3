// The check before start that the pod range does not overlap a route of the host (Weave's
// netcheck): pods given addresses the host already routes elsewhere would be unreachable, or worse,
// shadow a real network. Pure: takes the JSON of `ip -j route`.
import { cidrEnd, formatCidr, networkOf, parseIpv4, type Cidr } from '../net/ipv4.js';
import { BRIDGE } from './names.js';

interface RouteJson {
  readonly dst?: string;
  readonly dev?: string;
}

/**
 * The first route that overlaps `range`, as "dst dev X"; undefined when none does. The default
 * route overlaps everything and is skipped, as are routes on our own bridge (left by an earlier run).
 */
export function overlappingRoute(routesJson: string, range: Cidr): string | undefined {
  const routes = JSON.parse(routesJson) as RouteJson[];
  for (const r of routes) {
    if (r.dst === undefined || r.dst === 'default' || r.dev === BRIDGE) continue;
    const net = parseRouteDst(r.dst);
    if (net === undefined) continue;
    if (net.start < cidrEnd(range) && range.start < cidrEnd(net)) {
      return `${formatCidr(net)}${r.dev !== undefined ? ` dev ${r.dev}` : ''}`;
    }
  }
  return undefined;
}

/** The one-line error naming both, or undefined. */
export function rangeConflict(routesJson: string, range: Cidr): string | undefined {
  const route = overlappingRoute(routesJson, range);
  return route === undefined ? undefined
    : `network ${formatCidr(range)} overlaps with existing route ${route} on the host; choose another IPALLOC_RANGE`;
}

function parseRouteDst(dst: string): Cidr | undefined {
  const [addr, len] = dst.split('/');
  try {
    const address = parseIpv4(addr!);
    const prefixLength = len === undefined ? 32 : Number(len);
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) return undefined;
    return { start: networkOf(address, prefixLength), prefixLength };
  } catch {
    return undefined; // IPv6 or a route type without an address (unreachable, blackhole names)
  }
}
