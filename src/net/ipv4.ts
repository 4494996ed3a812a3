// IPv4 addresses and CIDR ranges, pure. An address is its unsigned 32-bit value held in a plain
// number: every value up to 2^32 is exact in a double, so address arithmetic (a + n, b - a) needs
// no bigint and no masking, and addresses sort and key Maps as numbers.

export type Ipv4 = number;

/** A subnet: `start` is the first address (host bits zero), `prefixLength` 0..32. */
export interface Cidr {
  readonly start: Ipv4;
  readonly prefixLength: number;
}

/** The smallest range IPAM accepts: a /30 (network, two hosts, broadcast), as Weave. */
export const MIN_RANGE_PREFIX_LENGTH = 30;

const ADDRESS_COUNT = 2 ** 32;

export function isIpv4(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value < ADDRESS_COUNT;
}

/**
 * Parses dotted-quad text ("10.32.0.1"). Leading zeros are refused: some tools read "010" as
 * octal, and an address that means two things is worse than an error. Throws a RangeError.
 */
export function parseIpv4(text: string): Ipv4 {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) {
    throw new RangeError(`invalid IPv4 address "${text}": want four numbers 0-255 like 10.32.0.1`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(address: Ipv4): string {
  if (!isIpv4(address)) throw new RangeError(`not an IPv4 address: ${address}`);
  return [address >>> 24, (address >>> 16) & 255, (address >>> 8) & 255, address & 255].join('.');
}

/** Number of addresses in the range (2^(32 - prefix)). */
export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefixLength);
}

/** One past the last address of the range (exclusive end; may be 2^32). */
export function cidrEnd(cidr: Cidr): number {
  return cidr.start + cidrSize(cidr);
}

/** The last address of the range (its broadcast address). */
export function cidrLast(cidr: Cidr): Ipv4 {
  return cidrEnd(cidr) - 1;
}

export function cidrContains(cidr: Cidr, address: Ipv4): boolean {
  return address >= cidr.start && address < cidrEnd(cidr);
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.start)}/${cidr.prefixLength}`;
}

export function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.start === b.start && a.prefixLength === b.prefixLength;
}

/** The network address of `address` under a prefix of `prefixLength` bits. */
export function networkOf(address: Ipv4, prefixLength: number): Ipv4 {
  const size = 2 ** (32 - prefixLength);
  return address - (address % size);
}

function splitPrefix(text: string, what: string): { address: Ipv4; prefixLength: number } {
  const slash = text.indexOf('/');
  const prefixText = slash < 0 ? '' : text.slice(slash + 1);
  if (slash < 0 || !/^(0|[1-9]\d?)$/.test(prefixText) || Number(prefixText) > 32) {
    throw new RangeError(`invalid ${what} "${text}": want an address and a prefix length like 10.32.0.0/12`);
  }
  let address: Ipv4;
  try {
    address = parseIpv4(text.slice(0, slash));
  } catch {
    throw new RangeError(`invalid ${what} "${text}": "${text.slice(0, slash)}" is not an IPv4 address`);
  }
  return { address, prefixLength: Number(prefixText) };
}

/**
 * Parses an IPAM range such as "10.32.0.0/12". It must be a subnet (no host bits set) of at least
 * four addresses (/30 or shorter prefix). Throws a RangeError naming the bad value and why.
 */
export function parseCidr(text: string): Cidr {
  const { address, prefixLength } = splitPrefix(text, 'IP range');
  if (prefixLength > MIN_RANGE_PREFIX_LENGTH) {
    throw new RangeError(
      `invalid IP range "${text}": /${prefixLength} is too small, the range must be /${MIN_RANGE_PREFIX_LENGTH} or larger`,
    );
  }
  const start = networkOf(address, prefixLength);
  if (start !== address) {
    throw new RangeError(
      `invalid IP range "${text}": not a subnet (host bits set), did you mean ${formatIpv4(start)}/${prefixLength}?`,
    );
  }
  return { start, prefixLength };
}

/** Parses an interface address with its prefix, "10.32.0.5/12" (host bits allowed). */
export function parseIpv4WithPrefix(text: string): { address: Ipv4; prefixLength: number } {
  return splitPrefix(text, 'address');
}

/** An address written with the prefix of its range, as IPAM answers: "10.32.0.5/12". */
export function formatAddressInRange(address: Ipv4, range: Cidr): string {
  return `${formatIpv4(address)}/${range.prefixLength}`;
}
