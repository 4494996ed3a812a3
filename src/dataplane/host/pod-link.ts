// Pods' links on this node, made, repaired, checked and removed through iproute2: the host end
// through the runner, the pod end through `nsenter --net=<netns path>` (CNI_NETNS is a path, and
// `ip -n` takes only names under /run/netns). A shell around pod-link-plan.ts.
import { randomBytes } from 'node:crypto';
import {
  checkSpec, hostCreationLines, isPodHostVeth, localMac, parseLinkJson, parsePodProbe, planPodLink, podVethNames,
  podCreationLines, POD_PROBE_SCRIPT, type LinkSpec, type LinkState, type PodLinkAction, type PodLinkPlan, type PodLinkSpec, type PodNetnsState,
} from './pod-link-plan.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, HostCommandError, runChecked, type RunResult, type Runner } from './runner.js';

/** The netns path is not there (the runtime gave a wrong one, or the pod is gone). */
export class NetnsMissingError extends Error {
  override readonly name = 'NetnsMissingError';
}

/** What the pod's link is after add(): the MACs the result reports. */
export interface PodLinkResult {
  readonly hostName: string;
  readonly hostMac: string;
  readonly podMac: string;
  /** The problems add() fixed (empty when it made the pair anew or found all well). */
  readonly repaired: readonly string[];
  readonly created: boolean;
}

export class PodLinks {
  constructor(private readonly runner: Runner) {}

  /** The host end of a container's pair, or undefined if there is none. */
  async hostLink(containerId: string): Promise<LinkState | undefined> {
    const name = podVethNames(containerId).host;
    const r = await this.runner(['ip', '-d', '-j', 'link', 'show', 'dev', name]);
    if (r.code !== 0) {
      if (/does not exist/i.test(r.stderr)) return undefined;
      throw new HostCommandError(['ip', '-d', '-j', 'link', 'show', 'dev', name], r);
    }
    return parseLinkJson(r.stdout);
  }

  /** The pod namespace's links and default route; NetnsMissingError if the path is not a namespace. */
  async podState(netns: string): Promise<PodNetnsState> {
    const argv = ['nsenter', `--net=${netns}`, 'sh', '-c', POD_PROBE_SCRIPT];
    const r = await this.runner(argv);
    if (r.code !== 0) {
      if (/nsenter: (cannot open|reassociate)/.test(r.stderr)) {
        throw new NetnsMissingError(`network namespace ${netns} does not exist: ${r.stderr.trim().split('\n')[0]}`);
      }
      throw new HostCommandError(argv, r);
    }
    return parsePodProbe(r.stdout);
  }

  async plan(spec: PodLinkSpec): Promise<{ plan: PodLinkPlan; host: LinkState | undefined; pod: PodNetnsState; macs: { host: string; pod: string } }> {
    checkSpec(spec);
    const [pod, host] = await Promise.all([this.podState(spec.netns), this.hostLink(spec.containerId)]);
    const macs = { host: localMac(randomBytes(5)), pod: localMac(randomBytes(5)) };
    return { plan: planPodLink({ spec, host, pod, newMacs: macs }), host, pod, macs };
  }

  /**
   * Makes the pair of a container this node has no record of, without probing first: the probe
   * is a process in the pod's namespace, a third of an ADD, and a first ADD finds nothing there.
   * The host end is made while `address` is still on its way (the caller's IPAM allocation), then
   * the pod end. Resolves undefined, having removed whatever it made, when anything fails on the
   * way (a link of that name already, a missing namespace or bridge...): add() then probes, and
   * repairs or says exactly what is wrong. Rejects only with `address`'s own error.
   */
  async create(spec: LinkSpec, address: Promise<string>): Promise<PodLinkResult | undefined> {
    // `address` is awaited only after the host's half, or never when create gives up before:
    // its failure is the caller's to handle, not an unhandled rejection meanwhile.
    address.catch(() => undefined);
    const names = podVethNames(spec.containerId);
    const macs = { host: localMac(randomBytes(5)), pod: localMac(randomBytes(5)) };
    checkSpec(spec);
    // The pod's process starts now too, and gets its lines once the host's half is done and the
    // address is known: starting a process costs milliseconds, paid meanwhile. If the host's half fails or no address comes, it gets none and does nothing.
    let podLines!: (lines: string) => void;
    let noPodLines!: () => void;
    const podInput = new Promise<string>((resolve, reject) => { podLines = resolve; noPodLines = () => reject(new Error('no pod half')); });
    podInput.catch(() => undefined);
    const configured = this.batch(spec.netns, 'pod', podInput);
    const made = await this.batch(spec.netns, 'host', hostCreationLines(spec, macs));
    if (made.code !== 0) {
      noPodLines();
      await configured;
      // Line 1 made the pair: when it is the line that failed, there is nothing to remove.
      if (!/Command failed -:1\b/.test(made.stderr)) await this.removeHost(spec.containerId).catch(() => undefined);
      return undefined;
    }
    let full: PodLinkSpec;
    try {
      full = { ...spec, address: await address };
      checkSpec(full);
    } catch (err) {
      noPodLines();
      await configured;
      await this.removeHost(spec.containerId).catch(() => undefined);
      throw err;
    }
    podLines(batchInput(podCreationLines(full)));
    if ((await configured).code !== 0) {
      await this.removeHost(spec.containerId).catch(() => undefined);
      return undefined;
    }
    return { hostName: names.host, hostMac: macs.host, podMac: macs.pod, repaired: [], created: true };
  }

  /**
   * Makes or repairs the pod's link. On failure, a pair this call made is deleted before the
   * error is thrown: nothing half-made is left.
   */
  async add(spec: PodLinkSpec): Promise<PodLinkResult> {
    const { plan, host, pod, macs } = await this.plan(spec);
    const names = podVethNames(spec.containerId);
    if (plan.unfixable.length > 0) throw new Error(plan.unfixable.join('; '));
    try {
      await this.apply(spec.netns, plan.fixes.flatMap((f) => f.actions));
    } catch (err) {
      if (plan.creates) await this.removeHost(spec.containerId).catch(() => undefined);
      throw err;
    }
    if (plan.creates) return { hostName: names.host, hostMac: macs.host, podMac: macs.pod, repaired: [], created: true };
    const podEnd = pod.links.find((l) => l.kind === 'veth' && l.peerIfindex === host!.ifindex)!;
    return { hostName: names.host, hostMac: host!.mac, podMac: podEnd.mac, repaired: plan.fixes.map((f) => f.problem), created: false };
  }

  /** What differs from the spec; empty means healthy. Changes nothing. */
  async check(spec: PodLinkSpec): Promise<string[]> {
    const { plan } = await this.plan(spec);
    return [...plan.unfixable, ...plan.fixes.map((f) => f.problem)];
  }

  /** Deletes the container's pair (its pod end goes with it); true if there was one. */
  async removeHost(containerId: string): Promise<boolean> {
    const name = podVethNames(containerId).host;
    const r = await this.runner(['ip', 'link', 'del', name]);
    if (r.code === 0) return true;
    if (/Cannot find device|does not exist/i.test(r.stderr)) return false;
    throw new HostCommandError(['ip', 'link', 'del', name], r);
  }

  /** Names of every pod pair's host end on this node. */
  async hostVeths(): Promise<Set<string>> {
    const out = await runChecked(this.runner, ['ip', '-j', 'link', 'show', 'type', 'veth']);
    const links = JSON.parse(out.trim() || '[]') as { ifname?: unknown }[];
    return new Set(links.flatMap((l) => (typeof l.ifname === 'string' && isPodHostVeth(l.ifname) ? [l.ifname] : [])));
  }

  /** Runs actions in order, consecutive ones of the same place as one batch (each process costs milliseconds). */
  private async apply(netns: string, actions: readonly PodLinkAction[]): Promise<void> {
    let i = 0;
    while (i < actions.length) {
      const where = actions[i]!.where;
      const lines: string[] = [];
      while (i < actions.length && actions[i]!.where === where) lines.push(actions[i++]!.line);
      const r = await this.batch(netns, where, lines);
      if (r.code !== 0) throw new HostCommandError(this.batchArgv(netns, where), r);
    }
  }

  /** One `ip -batch` process in the host's namespace or the pod's. */
  private batch(netns: string, where: PodLinkAction['where'], lines: readonly string[] | Promise<string>): Promise<RunResult> {
    const input = lines instanceof Promise ? lines : batchInput(lines);
    return this.runner(this.batchArgv(netns, where), { input, timeoutMs: DEFAULT_COMMAND_TIMEOUT_MS });
  }

  private batchArgv(netns: string, where: PodLinkAction['where']): string[] {
    return where === 'host' ? ['ip', '-batch', '-'] : ['nsenter', `--net=${netns}`, 'ip', '-batch', '-'];
  }
}

/** `ip -batch` input: one command per line. */
function batchInput(lines: readonly string[]): string {
  return `${lines.join('\n')}\n`;
}
