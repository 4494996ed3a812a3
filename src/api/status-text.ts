// `weave status` text in Weave's layout (reference §4.2–4.3): labels right-aligned to 15 columns,
// the same sub-views (targets, connections, peers) and the same line formats, so operators'
// habits and scripts carry over. Pure: renders snapshots.
import { CONNECTION_STATES, type ConnectionReport, type RouterStatus } from '../mesh/status.js';

/** One `Label: value` line with the label right-aligned to 15 columns. */
export function field(label: string, value: string): string {
  return `${label.padStart(15)}: ${value}`;
}

export function renderVersionLine(version: string): string {
  // weft never phones home, so there is no update check to report on.
  return field('Version', `${version} (version check update disabled)`);
}

export function renderRouterSection(r: RouterStatus): string[] {
  const protocol = r.ProtocolMinVersion === r.ProtocolMaxVersion
    ? `${r.Protocol} ${r.ProtocolMinVersion}`
    : `${r.Protocol} ${r.ProtocolMinVersion}..${r.ProtocolMaxVersion}`;
  return [
    field('Service', 'router'),
    field('Protocol', protocol),
    field('Name', `${r.Name}(${r.NickName})`),
    field('Encryption', r.Encryption ? 'enabled' : 'disabled'),
    field('PeerDiscovery', r.PeerDiscovery ? 'enabled' : 'disabled'),
    field('Targets', String(r.Targets.length)),
    field('Connections', summariseConnections(r.Connections)),
    field('Peers', summarisePeers(r)),
    field('TrustedSubnets', r.TrustedSubnets.length === 0 ? 'none' : r.TrustedSubnets.join(',')),
  ];
}

function summariseConnections(conns: readonly ConnectionReport[]): string {
  const counts = CONNECTION_STATES.map((s) => [s, conns.filter((c) => c.State === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`);
  return counts.length === 0 ? String(conns.length) : `${conns.length} (${counts.join(', ')})`;
}

function summarisePeers(r: RouterStatus): string {
  // Every peer's own connection list counts, so each link counts twice, as in Weave.
  let established = 0;
  let pending = 0;
  for (const p of r.Peers) {
    for (const c of p.Connections) {
      if (c.Established) established++;
      else pending++;
    }
  }
  const parts = [`${established} established`];
  if (pending > 0) parts.push(`${pending} pending`);
  return `${r.Peers.length} (with ${parts.join(', ')} connections)`;
}

/** `weave status` without a sub-command: the sections the daemon has, blank-line separated. */
export function renderStatus(version: string, sections: readonly (readonly string[])[]): string {
  return [renderVersionLine(version), '', ...sections.flatMap((s, i) => (i === 0 ? s : ['', ...s]))].join('\n') + '\n';
}

export function renderConnections(r: RouterStatus): string {
  return r.Connections.map((c) => {
    // The overlay's name is already in Info; the other attributes follow as key=value.
    const attrs = Object.entries(c.Attrs ?? {}).filter(([k]) => k !== 'name').map(([k, v]) => `${k}=${v}`).join(' ');
    return `${c.Outbound ? '->' : '<-'} ${c.Address.padEnd(21)} ${c.State.padEnd(11)} ${c.Info} ${attrs}`;
  }).map((l) => `${l}\n`).join('');
}

export function renderPeers(r: RouterStatus): string {
  return r.Peers.map((p) =>
    `${p.Name}(${p.NickName})\n` +
    p.Connections.map((c) =>
      `   ${c.Outbound ? '->' : '<-'} ${c.Address.padEnd(21)} ${`${c.Name}(${c.NickName})`.padEnd(37)} ${c.Established ? 'established' : 'pending'}\n`,
    ).join(''),
  ).join('');
}

export function renderTargets(r: RouterStatus): string {
  return r.Targets.map((t) => `${t}\n`).join('');
}
