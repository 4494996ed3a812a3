// host[:port] addresses of peers, as given on the command line, to `weave connect`, or learned
// from gossip.
import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_MESH_PORT = 6783;

/**
 * Parses "host", "host:port", "[v6]" or "[v6]:port". Throws a RangeError naming the bad part.
 */
export function parseHostPort(text: string, defaultPort = DEFAULT_MESH_PORT): HostPort {
  const s = text.trim();
  if (s === '') throw new RangeError('empty address');
  let host: string;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) throw new RangeError(`invalid address "${text}": missing ']'`);
    host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new RangeError(`invalid address "${text}"`);
    portText = rest === '' ? undefined : rest.slice(1);
    if (isIP(host) !== 6) throw new RangeError(`invalid address "${text}": "${host}" is not an IPv6 address`);
  } else if (isIP(s) === 6) {
    host = s;
  } else {
    const colon = s.lastIndexOf(':');
    host = colon < 0 ? s : s.slice(0, colon);
    portText = colon < 0 ? undefined : s.slice(colon + 1);
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
      throw new RangeError(`invalid address "${text}": "${host}" is not a host name or IPv4 address`);
    }
  }
  const port = portText === undefined ? defaultPort : parsePort(portText, `address "${text}"`);
  return { host, port };
}

export function parsePort(text: string, what = 'port'): number {
  if (!/^\d{1,5}$/.test(text)) throw new RangeError(`invalid port in ${what}: "${text}"`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new RangeError(`invalid port in ${what}: ${port} is not in 1..65535`);
  return port;
}

export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * An IPv4 address as a dual-stack socket reports it ("::ffff:10.0.0.2") in its plain form, which
 * is what IPv4 sockets and the kernel's VXLAN device take; any other address unchanged.
 */
export function unmapIpv4(host: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(host);
  return m ? m[1]! : host;
}
