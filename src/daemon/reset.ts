// `weave reset` (DELETE /peer) on the daemon's side, as Weave's `weave reset` = stop + hand our
// space to an heir (reference §3.5, §4.5): IPAM gives every range of ours to a live peer, the
// data path removes what it made on the host, the state files go, and the daemon stops.
import type { Logger } from '../log/logger.js';
import type { IpamService } from '../ipam/service.js';
import type { DataPlane } from '../dataplane/dataplane.js';

/** Weave's `weave reset` waited this long between DELETE /peer and stopping: the ring broadcast leaves first. */
const BROADCAST_GRACE_MS = 500;

export async function resetPeer(ipam: IpamService, dataplane: DataPlane | undefined, log: Logger): Promise<string> {
  log.info({ reason: 'weave reset' }, 'reset requested: handing our IP ranges to a live peer and removing the bridge, rules and state');
  const { heir, heirLabel, addresses } = await ipam.shutdown();
  await new Promise((r) => setTimeout(r, BROADCAST_GRACE_MS));
  const removed: string[] = [];
  if (dataplane) removed.push(...(await dataplane.teardown()));
  try {
    removed.push(...(await ipam.removeState()));
  } catch (err) {
    removed.push(`${ipam.statePath} NOT removed (${(err as Error).message})`);
  }
  const handed = addresses > 0
    ? `${addresses} IPs handed over to ${heirLabel}`
    : heir === undefined ? 'no other peer to hand IP ranges to' : 'no IP ranges to hand over';
  const lines = [handed, `removed: ${removed.length > 0 ? removed.join(', ') : 'nothing'}`, 'weaver is stopping'];
  log.info({ heir, addresses, removed }, `reset: ${lines.join('; ')}`);
  return lines.map((l) => `${l}\n`).join('');
}
