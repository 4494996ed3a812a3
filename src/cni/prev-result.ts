// The previous result a runtime hands back with CHECK (and to chained plugins): weave-net reads
// only what it needs, the address it gave the interface it is asked about.
import { badConfig } from './cni-error.js';
import { isObject } from './json-object.js';

export interface PrevResult {
  readonly interfaces: readonly { readonly name: string; readonly sandbox?: string }[];
  readonly ips: readonly { readonly address: string; readonly interface?: number }[];
}

export function parsePrevResult(v: unknown): PrevResult {
  if (!isObject(v)) throw badConfig(`"prevResult" must be an object (a CNI result), got ${JSON.stringify(v).slice(0, 80)}`);
  const interfaces = v.interfaces ?? [];
  const ips = v.ips ?? [];
  if (!Array.isArray(interfaces) || !Array.isArray(ips)) throw badConfig('"prevResult": "interfaces" and "ips" must be lists');
  return {
    interfaces: interfaces.map((i, n) => {
      if (!isObject(i) || typeof i.name !== 'string') throw badConfig(`"prevResult.interfaces"[${n}] has no "name"`);
      return typeof i.sandbox === 'string' ? { name: i.name, sandbox: i.sandbox } : { name: i.name };
    }),
    ips: ips.map((ip, n) => {
      if (!isObject(ip) || typeof ip.address !== 'string') throw badConfig(`"prevResult.ips"[${n}] has no "address"`);
      return typeof ip.interface === 'number' ? { address: ip.address, interface: ip.interface } : { address: ip.address };
    }),
  };
}

/**
 * The address of `ifName` (in `netns`) in a previous result: the IP whose interface index points
 * at that interface, or the only IP when the result names no interfaces.
 */
export function addressOf(prev: PrevResult, ifName: string, netns: string | undefined): string | undefined {
  const index = prev.interfaces.findIndex((i) => i.name === ifName && (i.sandbox === undefined || netns === undefined || i.sandbox === netns));
  if (index >= 0) return prev.ips.find((ip) => ip.interface === index)?.address;
  return prev.ips.length === 1 && prev.ips[0]!.interface === undefined ? prev.ips[0]!.address : undefined;
}
