// weft's iptables rules on the host: which iptables the host uses, and ensure() / check() /
// remove() for the rules of iptables-rules.ts. The daemon runs ensure() at start and check()
// every few seconds; when check() finds something missing (a firewalld restart, an `iptables -F`)
// it runs ensure() again and logs what was put back.
//
// Reads go through iptables-save (one process per table, whatever the number of rules) and
// writes through iptables-restore --noflush (one transaction per table), never one process per
// rule: with the nft backend every iptables process reads the whole ruleset first, which on a
// Kubernetes node with kube-proxy's thousands of rules costs real time.
import { ensureScript, findProblems, ownChains, parseIptablesSave, removeScript, type IptablesConfig, type OwnChain, type Table } from './iptables-rules.js';
import { runChecked, type Runner } from './runner.js';

export type IptablesMode = 'nft' | 'legacy';

export interface IptablesBackend {
  readonly mode: IptablesMode;
  /** The programs to run for this mode. */
  readonly save: string;
  readonly restore: string;
  /** Why this mode, for the log. */
  readonly reason: string;
}

/** Seconds iptables-restore waits for the xtables lock held by another writer (kube-proxy...). */
const LOCK_WAIT_S = 5;
const RESTORE_TIMEOUT_MS = 20_000;

/** The mode `iptables -V` reports: "iptables v1.8.9 (nf_tables)" or "(legacy)"; before 1.8 only legacy existed. */
export function parseIptablesVersion(text: string): IptablesMode | undefined {
  if (!/^iptables v\d/m.test(text)) return undefined;
  return /\(nf_tables\)/.test(text) ? 'nft' : 'legacy';
}

function countRules(saveOutput: string): number {
  return saveOutput.split('\n').filter((l) => l.startsWith('-A ')).length;
}

async function ruleCount(runner: Runner, program: string): Promise<number | undefined> {
  const r = await runner([program], { timeoutMs: RESTORE_TIMEOUT_MS }).catch(() => undefined);
  return r?.code === 0 ? countRules(r.stdout) : undefined;
}

async function exists(runner: Runner, program: string): Promise<boolean> {
  const r = await runner([program, '--version']).catch(() => undefined);
  return r?.code === 0;
}

/**
 * Which iptables the host's rules are in. Where both variants are installed, the one holding
 * more rules wins (the host's firewall and kube-proxy already chose; rules added to the other one
 * would still apply, but nobody looking would see them next to theirs). With no rules either
 * way, the mode of plain `iptables` decides.
 */
export async function detectIptablesBackend(runner: Runner, forced?: IptablesMode): Promise<IptablesBackend> {
  const version = await runner(['iptables', '-V']).catch(() => undefined);
  const defaultMode = version?.code === 0 ? parseIptablesVersion(version.stdout + version.stderr) : undefined;
  if (defaultMode === undefined) throw new Error('iptables not found (install the iptables package)');
  if (forced !== undefined) {
    // Chosen by the operator (IPTABLES_BACKEND) or by the Kubernetes entrypoint, which looked at the host.
    const specific = await exists(runner, `iptables-${forced}-restore`);
    if (!specific && forced !== defaultMode) throw new Error(`iptables-${forced}-restore not found, yet the ${forced} backend was asked for`);
    const program = specific ? `iptables-${forced}` : 'iptables';
    return { mode: forced, save: `${program}-save`, restore: `${program}-restore`, reason: 'as configured (--iptables-backend)' };
  }
  const [legacy, nft] = await Promise.all([ruleCount(runner, 'iptables-legacy-save'), ruleCount(runner, 'iptables-nft-save')]);
  let mode = defaultMode;
  let reason = `iptables -V says ${defaultMode}`;
  if (legacy !== undefined && nft !== undefined && legacy !== nft) {
    mode = legacy > nft ? 'legacy' : 'nft';
    reason = `${legacy} rules in iptables-legacy, ${nft} in iptables-nft`;
  } else if (legacy !== undefined && nft !== undefined) {
    reason += ` (${legacy} rules either way)`;
  }
  // Prefer the mode-specific programs; plain iptables-save/-restore are that mode only when it is the default.
  const specific = await exists(runner, `iptables-${mode}-restore`);
  if (!specific && mode !== defaultMode) throw new Error(`iptables-${mode}-restore not found, yet the host's rules are in ${mode}`);
  return {
    mode,
    save: specific ? `iptables-${mode}-save` : 'iptables-save',
    restore: specific ? `iptables-${mode}-restore` : 'iptables-restore',
    reason,
  };
}

export class HostIptables {
  readonly own: readonly OwnChain[];

  constructor(
    private readonly runner: Runner,
    readonly backend: IptablesBackend,
    readonly config: IptablesConfig,
  ) {
    this.own = ownChains(config);
  }

  /** Detects the backend, then manages the rules there. */
  static async create(runner: Runner, config: IptablesConfig, forced?: IptablesMode): Promise<HostIptables> {
    return new HostIptables(runner, await detectIptablesBackend(runner, forced), config);
  }

  /** What of ours is missing or altered; empty when every rule is in place. Changes nothing. */
  async check(): Promise<string[]> {
    return findProblems(await this.saved(), this.own);
  }

  /** Adds what is missing, rewrites what was altered; returns what it found wrong (empty: nothing done). */
  async ensure(): Promise<string[]> {
    const saved = await this.saved();
    const problems = findProblems(saved, this.own);
    const script = ensureScript(saved, this.own);
    if (script !== '') await this.restore(script);
    return problems;
  }

  /** Deletes every chain and jump of ours; returns the tables it changed. */
  async remove(): Promise<Table[]> {
    const saved = await this.saved();
    const script = removeScript(saved, this.own);
    if (script !== '') await this.restore(script);
    return [...new Set(this.own.map((c) => c.table))].filter((t) => script.includes(`*${t}\n`));
  }

  private async saved(): Promise<ReturnType<typeof parseIptablesSave>> {
    const tables = [...new Set(this.own.map((c) => c.table))];
    const outputs = await Promise.all(tables.map((t) => runChecked(this.runner, [this.backend.save, '-t', t], { timeoutMs: RESTORE_TIMEOUT_MS })));
    return parseIptablesSave(outputs.join('\n'));
  }

  private async restore(script: string): Promise<void> {
    await runChecked(this.runner, [this.backend.restore, '-w', String(LOCK_WAIT_S), '--noflush'], { input: script, timeoutMs: RESTORE_TIMEOUT_MS });
  }
}
