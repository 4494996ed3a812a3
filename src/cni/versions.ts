// The CNI spec versions weave-net speaks, and what each allows. A config's cniVersion picks the
// shape of the result (0.3.x/0.4.0 results carry `ips[].version`, 1.0.0 dropped it) and which
// commands exist at all (CHECK arrived in 0.4.0, GC and STATUS in 1.1.0).

/** Oldest first. 0.1.0/0.2.0 had another result shape (ip4/ip6) that no runtime still sends. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** The version weave-net reports as its own (VERSION) and uses when a config gave none it knows. */
export const LATEST_VERSION: CniVersion = '1.1.0';

export function isSupported(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares two supported versions: <0, 0 or >0, as for sort(). */
export function compareVersions(a: CniVersion, b: CniVersion): number {
  return SUPPORTED_VERSIONS.indexOf(a) - SUPPORTED_VERSIONS.indexOf(b);
}

export function atLeast(v: CniVersion, min: CniVersion): boolean {
  return compareVersions(v, min) >= 0;
}

/** The first version in which `command` exists. */
export function minimumVersionFor(command: string): CniVersion {
  if (command === 'CHECK') return '0.4.0';
  if (command === 'GC' || command === 'STATUS') return '1.1.0';
  return '0.3.0';
}
