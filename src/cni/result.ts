// The ADD result, in the shape of the config's cniVersion: what the daemon made (host veth,
// the pod's interface with its sandbox, the address with its gateway, the routes) plus DNS.
// 0.3.x and 0.4.0 results carry `ips[].version`; 1.0.0 dropped it; 1.1.0 adds interface `mtu`.
import type { CniAddResponse } from '../api/cni-protocol.js';
import type { Dns } from './dns.js';
import { atLeast, type CniVersion } from './versions.js';

export interface CniResult {
  readonly cniVersion: CniVersion;
  readonly interfaces: readonly { name: string; mac: string; sandbox?: string; mtu?: number }[];
  readonly ips: readonly { version?: '4' | '6'; address: string; gateway: string; interface: number }[];
  readonly routes: readonly { dst: string; gw?: string }[];
  readonly dns: Dns;
}

export function buildResult(cniVersion: CniVersion, added: CniAddResponse, dns: Dns): CniResult {
  const withMtu = atLeast(cniVersion, '1.1.0');
  const host = { name: added.hostInterface.name, mac: added.hostInterface.mac, ...(withMtu ? { mtu: added.mtu } : {}) };
  const pod = { name: added.interface.name, mac: added.interface.mac, sandbox: added.interface.sandbox, ...(withMtu ? { mtu: added.mtu } : {}) };
  const ip = {
    ...(atLeast(cniVersion, '1.0.0') ? {} : { version: added.address.includes(':') ? '6' as const : '4' as const }),
    address: added.address,
    gateway: added.gateway,
    interface: 1, // the index of the pod's interface in `interfaces`
  };
  return {
    cniVersion,
    interfaces: [host, pod],
    ips: [ip],
    routes: added.routes.map((r) => (r.gw === undefined ? { dst: r.dst } : { dst: r.dst, gw: r.gw })),
    dns,
  };
}
