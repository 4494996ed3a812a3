// DNS settings for the result: the network config's `dns` (spec type DNS) overlaid with the
// runtime's `runtimeConfig.dns` (the "dns" capability: servers, searches, options).
import { badConfig } from './cni-error.js';
import { caseless, isObject, stringList } from './json-object.js';

/** As the spec's DNS type; empty fields are left out of the result. */
export interface Dns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

/** The network config's `dns` key. */
export function parseConfigDns(v: unknown): Dns {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw badConfig(`"dns" must be an object, got ${JSON.stringify(v)}`);
  const fail = (key: string) => (reason: string) => badConfig(`"dns.${key}": ${reason}`);
  const domain = v.domain;
  if (domain !== undefined && typeof domain !== 'string') throw badConfig(`"dns.domain" must be a string, got ${JSON.stringify(domain)}`);
  return compact({
    nameservers: stringList(v.nameservers, fail('nameservers')),
    domain,
    search: stringList(v.search, fail('search')),
    options: stringList(v.options, fail('options')),
  });
}

/** runtimeConfig.dns, keys matched without regard to case ({"Servers": [...]} from Kubernetes). */
export function parseRuntimeDns(v: unknown): Dns {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw badConfig(`"runtimeConfig.dns" must be an object, got ${JSON.stringify(v)}`);
  const fail = (key: string) => (reason: string) => badConfig(`"runtimeConfig.dns.${key}": ${reason}`);
  return compact({
    nameservers: stringList(caseless(v, 'servers'), fail('servers')),
    search: stringList(caseless(v, 'searches'), fail('searches')),
    options: stringList(caseless(v, 'options'), fail('options')),
  });
}

/** What the runtime gives wins, field by field, over the network config. */
export function overlayDns(base: Dns, runtime: Dns): Dns {
  return compact({ ...base, ...runtime });
}

function compact(d: { [K in keyof Dns]: Dns[K] | undefined }): Dns {
  const out: { -readonly [K in keyof Dns]: Dns[K] } = {};
  if (d.nameservers && d.nameservers.length > 0) out.nameservers = d.nameservers;
  if (d.domain) out.domain = d.domain;
  if (d.search && d.search.length > 0) out.search = d.search;
  if (d.options && d.options.length > 0) out.options = d.options;
  return out;
}
