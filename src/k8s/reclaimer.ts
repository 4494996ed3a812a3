// Runs the reclaim steps of peer-registry.ts against the registry store and the local daemon
// until nothing is left to do. Every write names the version it read: when two peers race for
// one victim, one write lands and the other peer re-reads, sees the claim, and leaves the victim
// to the winner. Passes are serialised: a request during a pass makes one more pass after it.
import { applyStep, nextReclaimStep, type ReclaimStep, type Self } from './peer-registry.js';
import type { RegistryStore } from './kube-api.js';
import type { RmpeerResult } from './daemon-client.js';
import type { Logger } from '../log/logger.js';

/** The daemon as the reclaimer needs it (DaemonClient; a recorder in the race test). */
export interface ReclaimDaemon {
  hasRing(): Promise<boolean>;
  rmpeer(peer: string): Promise<RmpeerResult>;
}

export interface ReclaimerOptions {
  readonly store: RegistryStore;
  readonly daemon: ReclaimDaemon;
  readonly self: Self;
  /** The names of the Nodes that exist now (read afresh for every step). */
  readonly nodes: () => Promise<ReadonlySet<string>>;
  readonly log: Logger;
  /** Pause before retrying a step the daemon could not do yet (victim still reachable, no ring). */
  readonly retryMs?: number;
}

export class Reclaimer {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: ReclaimerOptions) {}

  /** Makes a pass (or one more after the current one); resolves when the registry needs nothing of us. */
  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  stop(): void {
    this.stopped = true;
  }

  private async pass(): Promise<void> {
    const { store, daemon, self, log } = this.options;
    const retryMs = this.options.retryMs ?? 1000;
    let waitingSince: string | undefined;
    while (!this.stopped) {
      const { registry, version } = await store.read();
      const step = nextReclaimStep(registry, await this.options.nodes(), self);
      if (step.kind === 'done') return;
      if (step.kind === 'rmpeer') {
        const done = await this.takeOver(step, daemon);
        if (done !== true) {
          if (waitingSince !== done) log.info({ peer: step.victim.peerName, node: step.victim.nodeName }, `reclaim of ${step.victim.peerName} (node ${step.victim.nodeName}) waits: ${done}`);
          waitingSince = done;
          await sleep(retryMs);
          continue;
        }
      }
      const next = applyStep(registry, step, self)!;
      if (!(await store.write(next, version, self.peerName))) {
        log.debug({ step: step.kind }, 'the registry changed meanwhile; reading it again');
        continue;
      }
      describe(step, self, log);
    }
  }

  /** True when the daemon took the victim's ranges; otherwise why not yet. */
  private async takeOver(step: Extract<ReclaimStep, { kind: 'rmpeer' }>, daemon: ReclaimDaemon): Promise<true | string> {
    if (!(await daemon.hasRing())) return 'IPAM has no ring yet';
    const r = await daemon.rmpeer(step.victim.peerName);
    if (!r.ok) return r.error;
    this.options.log.info({ peer: step.victim.peerName, node: step.victim.nodeName },
      `reclaimed the IP ranges of peer ${step.victim.peerName} (node ${step.victim.nodeName}, gone from the API): ${r.text}`);
    return true;
  }
}

function describe(step: ReclaimStep, self: Self, log: Logger): void {
  switch (step.kind) {
    case 'register':
      log.info({ node: self.nodeName }, `registered peer ${self.peerName} for node ${self.nodeName}`);
      return;
    case 'claim':
      log.info({ peer: step.victim.peerName, node: step.victim.nodeName }, `claimed the reclaim of peer ${step.victim.peerName} (node ${step.victim.nodeName})`);
      return;
    case 'rmpeer':
      log.info({ peer: step.victim.peerName }, `removed peer ${step.victim.peerName} from the registry`);
      return;
    case 'done':
      return;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
