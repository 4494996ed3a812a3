// Who this peer is: its name (stable per machine), nickname and per-process UID (DESIGN §4).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { peerNameFromMachine, randomPeerName, type PeerName } from '../net/peer-name.js';

export const MACHINE_ID_PATHS = ['/etc/machine-id', '/var/lib/dbus/machine-id'];
export const PRODUCT_UUID_PATH = '/sys/class/dmi/id/product_uuid';

function readTrimmed(path: string): string | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}

/**
 * The machine's peer name: a hash of machine-id and product uuid, so it survives restarts and
 * reinstalls. Without a machine id a random name is used and `source` says so, because such a
 * name changes at every start.
 */
export function machinePeerName(): { name: PeerName; source: string } {
  const machineId = MACHINE_ID_PATHS.map(readTrimmed).find((s) => s !== undefined);
  if (machineId === undefined) return { name: randomPeerName(), source: 'random (no machine-id found)' };
  return { name: peerNameFromMachine(machineId, readTrimmed(PRODUCT_UUID_PATH) ?? ''), source: 'machine-id' };
}

export function defaultNickname(): string {
  return (process.env.HOSTNAME || hostname()).split('.')[0] || 'unknown';
}
