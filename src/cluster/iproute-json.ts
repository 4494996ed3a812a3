// What `ip -j [-d] link show` and `ip -j addr show` print, as typed objects: pure parsing, no I/O.
// Only the fields tests look at are kept; each is checked, so a surprise in iproute2's output is an
// error naming the field rather than an `undefined` deep inside a test.

export interface LinkInfo {
  readonly ifindex: number;
  readonly ifname: string;
  readonly mtu: number;
  /** e.g. ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]. */
  readonly flags: readonly string[];
  /** "UP", "DOWN", "UNKNOWN", "LOWERLAYERDOWN", ... */
  readonly operstate: string;
  /** The bridge this link is a port of. */
  readonly master?: string;
  /** MAC address. */
  readonly address?: string;
  /** "veth", "bridge", "tun", ... (only with `ip -d`). */
  readonly kind?: string;
  /** Largest GSO super-frame the link takes (only with `ip -d`). */
  readonly gsoMaxSize?: number;
}

export interface IfAddress {
  readonly family: 'inet' | 'inet6';
  readonly local: string;
  readonly prefixlen: number;
}

export interface LinkAddresses extends LinkInfo {
  readonly addresses: readonly IfAddress[];
}

type Json = Record<string, unknown>;

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field<T>(o: Json, key: string, check: (v: unknown) => v is T, what: string): T {
  const v = o[key];
  if (!check(v)) throw new TypeError(`ip -j output: "${key}" is ${JSON.stringify(v)}, want ${what}`);
  return v;
}

function optional<T>(o: Json, key: string, check: (v: unknown) => v is T, what: string): T | undefined {
  return o[key] === undefined ? undefined : field(o, key, check, what);
}

const isNumber = (v: unknown): v is number => typeof v === 'number';
const isString = (v: unknown): v is string => typeof v === 'string';
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

function array(text: string): Json[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every(isRecord)) throw new TypeError('ip -j output: want an array of objects');
  return parsed;
}

function toLink(o: Json): LinkInfo {
  const linkinfo = o['linkinfo'];
  const kind = isRecord(linkinfo) ? optional(linkinfo, 'info_kind', isString, 'a string') : undefined;
  const master = optional(o, 'master', isString, 'a string');
  const address = optional(o, 'address', isString, 'a string');
  const gsoMaxSize = optional(o, 'gso_max_size', isNumber, 'a number');
  return {
    ifindex: field(o, 'ifindex', isNumber, 'a number'),
    ifname: field(o, 'ifname', isString, 'a string'),
    mtu: field(o, 'mtu', isNumber, 'a number'),
    flags: field(o, 'flags', isStrings, 'an array of strings'),
    operstate: field(o, 'operstate', isString, 'a string'),
    ...(master === undefined ? {} : { master }),
    ...(address === undefined ? {} : { address }),
    ...(kind === undefined ? {} : { kind }),
    ...(gsoMaxSize === undefined ? {} : { gsoMaxSize }),
  };
}

/** Parses `ip -j [-d] link show`. */
export function parseLinks(text: string): LinkInfo[] {
  return array(text).map(toLink);
}

/** Parses `ip -j [-d] addr show`: links with their addresses. */
export function parseAddrs(text: string): LinkAddresses[] {
  return array(text).map((o) => {
    const info = o['addr_info'] ?? [];
    if (!Array.isArray(info) || !info.every(isRecord)) throw new TypeError('ip -j output: "addr_info" is not an array of objects');
    const addresses = info
      .filter((a) => a['family'] === 'inet' || a['family'] === 'inet6')
      .map((a): IfAddress => ({
        family: a['family'] === 'inet' ? 'inet' : 'inet6',
        local: field(a, 'local', isString, 'a string'),
        prefixlen: field(a, 'prefixlen', isNumber, 'a number'),
      }));
    return { ...toLink(o), addresses };
  });
}
