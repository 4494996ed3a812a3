// The network configuration a runtime writes to the plugin's stdin, parsed and validated. Every
// refusal names the key and says what was expected; the code follows the spec: 6 for JSON that
// does not parse, 1 for a cniVersion weave-net does not speak, 2 for a field it does not
// support, 4 for a value that is wrong.
import { CniCode, DEFAULT_CNI_SOCKET, type CniAttachmentKey } from '../api/cni-protocol.js';
import { CniError, badConfig } from './cni-error.js';
import { overlayDns, parseConfigDns, parseRuntimeDns, type Dns } from './dns.js';
import type { CniCommand } from './env.js';
import { caseless, isObject, type JsonObject } from './json-object.js';
import { parsePrevResult, type PrevResult } from './prev-result.js';
import { SUPPORTED_VERSIONS, atLeast, isSupported, minimumVersionFor, type CniVersion } from './versions.js';

export interface NetConf {
  readonly cniVersion: CniVersion;
  readonly name: string;
  readonly type: string;
  /** The daemon's unix socket. */
  readonly socket: string;
  /** Overrides the daemon's overlay MTU; absent (or 0 in the config) means the daemon's. */
  readonly mtu?: number;
  readonly hairpin: boolean;
  /** For the result: the config's `dns` with the runtime's `runtimeConfig.dns` over it. */
  readonly dns: Dns;
  readonly prevResult?: PrevResult;
  /** GC only: the attachments the runtime still has. */
  readonly validAttachments?: readonly CniAttachmentKey[];
}

/** Spec: the network name starts with a letter or digit, then letters, digits, `_`, `.`, `-`. */
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Parses stdin for `command` (not VERSION, which needs no config). Throws a CniError. */
export function parseNetConf(text: string, command: CniCommand): NetConf {
  if (text.trim() === '') {
    throw new CniError(CniCode.decodeFailure, 'no network configuration on stdin', `${command} needs the network configuration (JSON) on stdin, as the container runtime sends it`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniError(CniCode.decodeFailure, `the network configuration on stdin is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw new CniError(CniCode.decodeFailure, `the network configuration on stdin must be a JSON object, got ${JSON.stringify(raw).slice(0, 80)}`);

  const cniVersion = parseVersion(raw.cniVersion, command);
  const name = raw.name;
  if (typeof name !== 'string' || !NETWORK_NAME.test(name)) {
    throw badConfig(name === undefined ? 'the network configuration has no "name"' : `"name" ${JSON.stringify(name)} is not a valid network name (letters, digits, '_', '.', '-', starting with a letter or digit)`);
  }
  const type = raw.type;
  if (typeof type !== 'string' || type === '') throw badConfig(`"type" must name the plugin (a non-empty string), got ${JSON.stringify(type)}`);

  refuseUnsupported(raw);
  const socket = raw.socket ?? DEFAULT_CNI_SOCKET;
  if (typeof socket !== 'string' || !socket.startsWith('/')) throw badConfig(`"socket" must be the absolute path of the weave daemon's unix socket, got ${JSON.stringify(raw.socket)}`);
  const mtu = raw.mtu;
  if (mtu !== undefined && !(Number.isInteger(mtu) && (mtu === 0 || ((mtu as number) >= 576 && (mtu as number) <= 65535)))) {
    throw badConfig(`"mtu" must be an integer from 576 to 65535 (or 0 for the weave bridge's), got ${JSON.stringify(mtu)}`);
  }
  const hairpin = raw.hairpinMode ?? true;
  if (typeof hairpin !== 'boolean') throw badConfig(`"hairpinMode" must be true or false, got ${JSON.stringify(raw.hairpinMode)}`);

  const runtimeConfig = raw.runtimeConfig ?? {};
  if (!isObject(runtimeConfig)) throw badConfig(`"runtimeConfig" must be an object, got ${JSON.stringify(runtimeConfig)}`);
  refuseUnsupportedCapabilities(runtimeConfig);
  const dns = overlayDns(parseConfigDns(raw.dns), parseRuntimeDns(caseless(runtimeConfig, 'dns')));
  const prevResult = raw.prevResult === undefined || raw.prevResult === null ? undefined : parsePrevResult(raw.prevResult);
  const validAttachments = command === 'GC' ? parseValidAttachments(raw) : undefined;

  return {
    cniVersion, name, type, socket, hairpin, dns,
    ...(typeof mtu === 'number' && mtu !== 0 ? { mtu } : {}),
    ...(prevResult === undefined ? {} : { prevResult }),
    ...(validAttachments === undefined ? {} : { validAttachments }),
  };
}

/**
 * The config's cniVersion, if weave-net speaks it and it allows `command`. A version is only read
 * from a well-formed config, so its error can be written in that version.
 */
export function parseVersion(v: unknown, command: CniCommand): CniVersion {
  const supported = SUPPORTED_VERSIONS.join(', ');
  if (v === undefined || v === '') {
    throw new CniError(CniCode.incompatibleVersion, `the network configuration has no "cniVersion" (that means 0.1.0, which weave-net does not support; it supports ${supported})`);
  }
  if (typeof v !== 'string') throw badConfig(`"cniVersion" must be a string such as "1.0.0", got ${JSON.stringify(v)}`);
  if (!isSupported(v)) throw new CniError(CniCode.incompatibleVersion, `cniVersion ${v} is not supported by weave-net (it supports ${supported})`);
  const min = minimumVersionFor(command);
  if (!atLeast(v, min)) throw new CniError(CniCode.incompatibleVersion, `${command} needs cniVersion ${min} or later; this network configuration says ${v}`);
  return v;
}

/** Options of Weave's plugin that weft does not have: refused rather than silently ignored. */
function refuseUnsupported(raw: JsonObject): void {
  const unsupported = (key: string, why: string) => new CniError(CniCode.unsupportedField, `"${key}": ${JSON.stringify(raw[key])} is not supported: ${why}`);
  if (raw.bridge !== undefined && raw.bridge !== 'weave') throw unsupported('bridge', 'pods always join the weave bridge the daemon manages');
  if (raw.ipam !== undefined && !(isObject(raw.ipam) && Object.keys(raw.ipam).length === 0)) throw unsupported('ipam', 'addresses come from the weave daemon\'s own IPAM');
  if (raw.isGateway === true) throw unsupported('isGateway', 'the bridge address is always the pods\' gateway');
  if (raw.ipMasq === true) throw unsupported('ipMasq', 'the daemon masquerades traffic leaving the range itself');
}

/** A runtime asking for a fixed address or MAC must not silently get another one. */
function refuseUnsupportedCapabilities(rc: JsonObject): void {
  for (const key of ['ips', 'mac']) {
    const v = caseless(rc, key);
    if (v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    throw new CniError(CniCode.unsupportedField, `"runtimeConfig.${key}": ${JSON.stringify(v)} is not supported: weave-net gives each pod an address and MAC of the daemon's choosing`);
  }
}

/**
 * GC's list of attachments to keep. libcni sends it as `cni.dev/valid-attachments` and also
 * `cni.dev/attachments` (the name in an early draft). null is an empty list (a Go nil slice);
 * absent is refused: guessing "none" would release every pod's address.
 */
function parseValidAttachments(raw: JsonObject): CniAttachmentKey[] {
  const key = Object.hasOwn(raw, 'cni.dev/valid-attachments') ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  if (!Object.hasOwn(raw, key)) throw badConfig('GC needs "cni.dev/valid-attachments" (the attachments to keep) in the network configuration');
  const list = raw[key];
  if (list === null) return [];
  if (!Array.isArray(list)) throw badConfig(`"${key}" must be a list of {"containerID", "ifname"}, got ${JSON.stringify(list).slice(0, 80)}`);
  return list.map((a, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || a.containerID === '' || typeof a.ifname !== 'string' || a.ifname === '') {
      throw badConfig(`"${key}"[${i}] must be {"containerID": "...", "ifname": "..."}, got ${JSON.stringify(a)}`);
    }
    return { containerId: a.containerID, ifName: a.ifname };
  });
}
