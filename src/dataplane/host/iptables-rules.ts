// weft's iptables rules, pure: what they are for a range and a bridge, how to read what
// `iptables-save` prints, and the `iptables-restore --noflush` input that adds what is missing or
// removes what we made. Everything lives in chains of our own, so fixing or removing them never
// touches anyone else's rules; the built-in chains only get one jump each.
//
//   filter  FORWARD     -j WEAVE-FORWARD
//           WEAVE-FORWARD   -i weave -o weave ACCEPT          pod to pod on this bridge
//                           -i weave ! -o weave ACCEPT        pods out
//                           -o weave ctstate RELATED,ESTABLISHED ACCEPT   their replies
//                           -d R -o weave ACCEPT              into the range (the bridge is
//                                                             exposed, as Weave's WEAVE-EXPOSE)
//   nat     POSTROUTING -j WEAVE
//           WEAVE       -s R -d 224.0.0.0/4 RETURN            multicast stays as it is
//                       ! -s R -d R MASQUERADE                into the range from outside: replies
//                                                             come back through this node
//                       -s R ! -d R MASQUERADE                pods leaving the range
//   both    WEAVE-CANARY (empty)                              gone = someone deleted chains
//
// Rules are written exactly as iptables-save prints them (legacy and nft print alike), so a
// saved table can be compared with them as text.
import { formatCidr, parseCidr, type Cidr } from '../../net/ipv4.js';

export type Table = 'filter' | 'nat';

export interface IptablesConfig {
  /** The pods' range, "10.32.0.0/12". */
  readonly range: string;
  /** The bridge; `weave` unless given. */
  readonly bridge?: string;
}

export const FORWARD_CHAIN = 'WEAVE-FORWARD';
export const NAT_CHAIN = 'WEAVE';
export const CANARY_CHAIN = 'WEAVE-CANARY';

/** One chain of ours: its rules in order, and the built-in chain that jumps to it. */
export interface OwnChain {
  readonly table: Table;
  readonly name: string;
  readonly rules: readonly string[];
  /** The built-in chain with `-j name`; none for the canary. */
  readonly from: string | undefined;
}

export function ownChains(config: IptablesConfig): OwnChain[] {
  const range: Cidr = parseCidr(config.range);
  const r = formatCidr(range);
  const br = config.bridge ?? 'weave';
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(br)) throw new RangeError(`invalid bridge name "${br}"`);
  return [
    {
      table: 'filter',
      name: FORWARD_CHAIN,
      from: 'FORWARD',
      rules: [
        `-i ${br} -o ${br} -j ACCEPT`,
        `-i ${br} ! -o ${br} -j ACCEPT`,
        `-o ${br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
        `-d ${r} -o ${br} -j ACCEPT`,
      ],
    },
    { table: 'filter', name: CANARY_CHAIN, from: undefined, rules: [] },
    {
      table: 'nat',
      name: NAT_CHAIN,
      from: 'POSTROUTING',
      rules: [`-s ${r} -d 224.0.0.0/4 -j RETURN`, `! -s ${r} -d ${r} -j MASQUERADE`, `-s ${r} ! -d ${r} -j MASQUERADE`],
    },
    { table: 'nat', name: CANARY_CHAIN, from: undefined, rules: [] },
  ];
}

// ---- reading iptables-save ----

export interface SavedTable {
  /** Every chain, built-in or not. */
  readonly chains: ReadonlySet<string>;
  /** Rules per chain in order, each without its leading "-A <chain> ". */
  readonly rules: ReadonlyMap<string, readonly string[]>;
}

/** Parses `iptables-save` output (one or more tables); comments and counters are ignored. */
export function parseIptablesSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let chains: Set<string> | undefined;
  let rules: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      chains = new Set();
      rules = new Map();
      tables.set(line.slice(1), { chains, rules });
    } else if (line === 'COMMIT') {
      chains = rules = undefined;
    } else if (chains !== undefined && rules !== undefined && line.startsWith(':')) {
      chains.add(line.slice(1).split(/\s+/)[0] ?? '');
    } else if (chains !== undefined && rules !== undefined && line.startsWith('-A ')) {
      const m = /^-A (\S+) ?(.*)$/.exec(line);
      if (m === null) continue;
      const [, chain = '', rule = ''] = m;
      let list = rules.get(chain);
      if (list === undefined) rules.set(chain, (list = []));
      list.push(rule.replace(/\s+/g, ' '));
    }
  }
  return tables;
}

const jumpTo = (chain: string): string => `-j ${chain}`;

/** What of ours is missing or wrong in the saved tables; empty when all is in place. */
export function findProblems(saved: ReadonlyMap<string, SavedTable>, own: readonly OwnChain[]): string[] {
  const problems: string[] = [];
  for (const c of own) {
    const t = saved.get(c.table);
    if (t === undefined || !t.chains.has(c.name)) {
      problems.push(`${c.table} chain ${c.name} is missing`);
    } else if (!sameRules(t.rules.get(c.name) ?? [], c.rules)) {
      problems.push(`${c.table} chain ${c.name} has other rules than ours`);
    }
    if (c.from !== undefined && !(t?.rules.get(c.from) ?? []).includes(jumpTo(c.name))) {
      problems.push(`${c.table} ${c.from} does not jump to ${c.name}`);
    }
  }
  return problems;
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

/**
 * The `iptables-restore --noflush` input that puts our chains right, or '' when nothing is
 * missing. Declaring a chain (":NAME - [0:0]") creates it, or empties it if it exists, so a chain
 * that is missing or wrong is rewritten whole; a missing jump goes first in its built-in chain,
 * as Weave put it. Each table is one transaction: it applies whole or not at all.
 */
export function ensureScript(saved: ReadonlyMap<string, SavedTable>, own: readonly OwnChain[]): string {
  const out: string[] = [];
  for (const table of tablesOf(own)) {
    const t = saved.get(table);
    const lines: string[] = [];
    const jumps: string[] = [];
    for (const c of own.filter((x) => x.table === table)) {
      if (t === undefined || !t.chains.has(c.name) || !sameRules(t.rules.get(c.name) ?? [], c.rules)) {
        lines.push(`:${c.name} - [0:0]`, ...c.rules.map((r) => `-A ${c.name} ${r}`));
      }
      if (c.from !== undefined && !(t?.rules.get(c.from) ?? []).includes(jumpTo(c.name))) {
        jumps.push(`-I ${c.from} 1 ${jumpTo(c.name)}`);
      }
    }
    if (lines.length + jumps.length > 0) out.push(`*${table}`, ...lines, ...jumps, 'COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/**
 * The input that removes everything of ours that is there: every rule anywhere that jumps or
 * goes to one of our chains (each occurrence), then the chains themselves. '' when none is there.
 */
export function removeScript(saved: ReadonlyMap<string, SavedTable>, own: readonly OwnChain[]): string {
  const out: string[] = [];
  for (const table of tablesOf(own)) {
    const t = saved.get(table);
    if (t === undefined) continue;
    const ours = new Set(own.filter((c) => c.table === table && t.chains.has(c.name)).map((c) => c.name));
    if (ours.size === 0) continue;
    const lines: string[] = [];
    for (const [chain, rules] of t.rules) {
      if (ours.has(chain)) continue;
      for (const r of rules) if (targetOf(r) !== undefined && ours.has(targetOf(r)!)) lines.push(`-D ${chain} ${r}`);
    }
    for (const name of ours) lines.push(`-F ${name}`);
    for (const name of ours) lines.push(`-X ${name}`);
    out.push(`*${table}`, ...lines, 'COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

function targetOf(rule: string): string | undefined {
  return /(?:^| )-[jg] (\S+)/.exec(rule)?.[1];
}

function tablesOf(own: readonly OwnChain[]): Table[] {
  return [...new Set(own.map((c) => c.table))];
}
