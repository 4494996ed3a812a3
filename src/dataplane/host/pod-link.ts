// Pods' links on this node, made, repaired, checked and removed through iproute2: the host end
// through the runner, the pod end through `nsenter --net=<netns path>` (CNI_NETNS is a path, and
// `ip -n` takes only names under /run/netns). A shell around pod-link-plan.ts.
import { randomBytes } from 'node:crypto';
import {
  checkSpec, isPodHostVeth, localMac, parseLinkJson, parsePodProbe, planPodLink, podVethNames, POD_PROBE_SCRIPT,
  type LinkState, type PodLinkAction, type PodLinkPlan, type PodLinkSpec, type PodNetnsState,
} from './pod-link-plan.js';
import { HostCommandError, runChecked, type Runner } from './runner.js';

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

  /**
   * A gratuitous ARP for the pod's address, so that peers holding a stale entry for a reused
   * address learn the new MAC at once. The pod end has arp_notify set, so the kernel announces
   * when its MAC is set (to the same value); it announces at link-up too, but the bridge drops
   * that one: its port forwards only once the kernel has processed the carrier change, so wait for
   * that first. Resolves false if the port never forwards or the pod is gone (best effort).
   */
  async announce(containerId: string, ifName: string, netns: string, mac: string, timeoutMs = 3000): Promise<boolean> {
    const host = podVethNames(containerId).host;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.runner(['bridge', '-j', 'link', 'show', 'dev', host]);
      if (r.code === 0 && /"state":\s*"forwarding"/.test(r.stdout)) break;
      if (r.code !== 0 || Date.now() > deadline) return false;
      await new Promise((res) => setTimeout(res, 50));
    }
    const r = await this.runner(['nsenter', `--net=${netns}`, 'ip', 'link', 'set', 'dev', ifName, 'address', mac]);
    return r.code === 0;
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

  /**
   * Runs actions in order, consecutive ones of the same place as one batch; a sysctl in the pod
   * goes in the same process as the pod batch after it (each process costs milliseconds).
   */
  private async apply(netns: string, actions: readonly PodLinkAction[]): Promise<void> {
    let i = 0;
    while (i < actions.length) {
      const a = actions[i]!;
      let sysctl: { path: string; value: string } | undefined;
      if (a.where === 'pod-sysctl') {
        sysctl = { path: a.path, value: a.value };
        i++;
      }
      const where = sysctl !== undefined ? 'pod' : a.where;
      const lines: string[] = [];
      while (i < actions.length && actions[i]!.where === where) lines.push((actions[i++] as { line: string }).line);
      const input = `${lines.join('\n')}\n`;
      if (where === 'host') {
        await runChecked(this.runner, ['ip', '-batch', '-'], { input });
      } else if (sysctl !== undefined) {
        // The path comes from the plan (validated names only); path and value go through argv.
        const script = lines.length > 0 ? 'printf %s "$2" > "$1" && exec ip -batch -' : 'printf %s "$2" > "$1"';
        await runChecked(this.runner, ['nsenter', `--net=${netns}`, 'sh', '-c', script, 'sh', sysctl.path, sysctl.value], { input });
      } else {
        await runChecked(this.runner, ['nsenter', `--net=${netns}`, 'ip', '-batch', '-'], { input });
      }
    }
  }
}
