// The node's bridge `weave` and its TAP port, kept as configured: check() says what differs,
// ensure() fixes it and says what it fixed (the daemon logs "bridge repaired: ..." when that is
// not empty), remove() takes the bridge away. Idempotent: ensure() on a correct host runs one
// probe and changes nothing. The TAP itself is created by whoever opens /dev/net/tun; here it is
// only put on the bridge, brought up and given its qdisc.
import {
  bridgeProbeCommand, FALLBACK_PORT_QDISC, parseBridgeProbe, planBridge, PORT_QDISC, resolveBridgeConfig,
  type BridgeConfig, type BridgePlan, type HostAction, type HostState, type QdiscChoice, type ResolvedBridgeConfig,
} from './bridge-plan.js';
import { HostCommandError, runChecked, type Runner } from './runner.js';

export interface BridgeRepair {
  /** What was wrong and has been fixed, in the order fixed. */
  readonly fixed: readonly string[];
  /** What is wrong and could not be fixed here (e.g. the TAP does not exist). */
  readonly unfixable: readonly string[];
  /** Worth a log line, not an error (e.g. the kernel has no fq_codel, so a short FIFO is used). */
  readonly warnings: readonly string[];
}

/** Rounds of probe-plan-apply before giving up: a missing bridge takes two. */
const MAX_ROUNDS = 4;

export class HostBridge {
  readonly config: ResolvedBridgeConfig;
  #qdisc: QdiscChoice = PORT_QDISC;

  constructor(
    private readonly runner: Runner,
    config: BridgeConfig = {},
  ) {
    this.config = resolveBridgeConfig(config);
  }

  /** The host as it is now. */
  async probe(): Promise<HostState> {
    return parseBridgeProbe(await runChecked(this.runner, bridgeProbeCommand(this.config)));
  }

  /** The port's root qdisc: fq_codel, unless ensure() found the kernel without it. */
  get qdisc(): QdiscChoice {
    return this.#qdisc;
  }

  /** What differs from the configuration; nothing is changed. Empty means all is well. */
  async check(): Promise<string[]> {
    const plan = planBridge(await this.probe(), this.config, this.#qdisc);
    return [...plan.fixes.map((f) => f.problem), ...plan.unfixable];
  }

  /**
   * Brings the host to the configuration. Throws if something fixable is still wrong after a
   * few rounds (a command failed, or something undoes the changes as fast as they are made).
   */
  async ensure(): Promise<BridgeRepair> {
    const fixed: string[] = [];
    const warnings: string[] = [];
    let plan: BridgePlan = { fixes: [], unfixable: [] };
    for (let round = 0; round < MAX_ROUNDS; round++) {
      plan = planBridge(await this.probe(), this.config, this.#qdisc);
      if (plan.fixes.length === 0) return { fixed, unfixable: plan.unfixable, warnings };
      const qdiscBefore = this.#qdisc;
      await this.apply(plan.fixes.flatMap((f) => f.actions));
      let done = plan.fixes;
      if (this.#qdisc !== qdiscBefore) {
        warnings.push(`this kernel has no ${qdiscBefore.kind} qdisc: ${this.config.port ?? 'the port'} gets ${this.#qdisc.args.join(' ')} instead`);
        // That fix did not happen; the next round plans the fallback.
        done = done.filter((f) => !f.actions.some((a) => a.kind === 'tc' && a.args.includes(qdiscBefore.kind)));
      }
      fixed.push(...done.map((f) => f.problem));
    }
    throw new Error(`bridge ${this.config.name} still not as configured after ${MAX_ROUNDS} rounds: ${plan.fixes.map((f) => f.problem).join('; ')}`);
  }

  /** Deletes the bridge (its ports stay, on no bridge); false if there was none. */
  async remove(): Promise<boolean> {
    const state = await this.probe();
    if (state.bridge === undefined || state.bridge.kind !== 'bridge') return false;
    await runChecked(this.runner, ['ip', 'link', 'del', this.config.name]);
    return true;
  }

  /** Runs actions in order; consecutive `ip` lines go to one `ip -batch`. */
  private async apply(actions: readonly HostAction[]): Promise<void> {
    let batch: string[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const lines = batch;
      batch = [];
      await runChecked(this.runner, ['ip', '-batch', '-'], { input: `${lines.join('\n')}\n` });
    };
    for (const a of actions) {
      if (a.kind === 'ip') {
        batch.push(a.line);
        continue;
      }
      await flush();
      if (a.kind === 'tc') {
        await this.tc(a.args);
      } else {
        // Through the shell: /proc/sys entries are per network namespace, and the runner decides
        // which namespace its commands see (node's fs would always write the daemon's own).
        const write = a.ifExists === true ? '[ -e "$1" ] || exit 0; printf "%s\\n" "$2" > "$1"' : 'printf "%s\\n" "$2" > "$1"';
        await runChecked(this.runner, ['sh', '-c', write, 'sh', a.path, a.value]);
      }
    }
    await flush();
  }

  /** Runs tc; a kernel without the preferred qdisc makes the fallback the choice from now on. */
  private async tc(args: readonly string[]): Promise<void> {
    try {
      await runChecked(this.runner, ['tc', ...args]);
    } catch (err) {
      const unknownKind = err instanceof HostCommandError && /qdisc kind is unknown/i.test(err.result.stderr);
      if (!unknownKind || this.#qdisc !== PORT_QDISC || !args.includes(PORT_QDISC.kind)) throw err;
      this.#qdisc = FALLBACK_PORT_QDISC;
    }
  }
}
