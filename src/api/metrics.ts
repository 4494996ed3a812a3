// Prometheus metrics with Weave's names (reference §4.6), read from the same snapshots as status
// at scrape time, so a scrape never waits on a component either.
import { Registry, Gauge, Counter, collectDefaultMetrics } from 'prom-client';
import type { RouterStatus } from '../mesh/status.js';
import type { IpamCounts } from '../ipam/service.js';

/** The data path's counters (src/dataplane/dataplane.ts). */
export interface DataPathCounters {
  readonly stats: Readonly<Record<string, number>>;
  readonly drops: ReadonlyMap<string, number>;
}

export interface MetricsSource {
  routerStatus(): RouterStatus;
  ipamCounts?(): IpamCounts;
  dataPath?(): DataPathCounters;
}

export function createMetrics(source: MetricsSource): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'weave_connections',
    help: 'Number of peer-to-peer connections.',
    labelNames: ['state', 'type', 'encryption'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const r = source.routerStatus();
      for (const c of r.Connections) {
        const live = c.State === 'established' || c.State === 'pending';
        const type = live ? String(c.Attrs?.name ?? 'unknown') : 'unknown';
        this.inc({ state: c.State, type, encryption: live && r.Encryption ? 'yes' : '' });
      }
    },
  });
  let terminations = 0;
  new Counter({
    name: 'weave_connection_terminations_total',
    help: 'Number of peer-to-peer connections terminated.',
    registers: [registry],
    collect() {
      const now = source.routerStatus().TerminationCount;
      if (now > terminations) this.inc(now - terminations);
      terminations = now;
    },
  });
  if (source.ipamCounts) {
    // Six gauges read the same numbers: one IPAM snapshot per scrape, not six.
    const counts = oncePerTick(source.ipamCounts.bind(source));
    const gauge = (name: string, help: string, value: (c: IpamCounts) => number, labels?: Record<string, string>): void => {
      new Gauge({
        name,
        help,
        labelNames: labels ? Object.keys(labels) : [],
        registers: [registry],
        collect() {
          if (labels) this.set(labels, value(counts()));
          else this.set(value(counts()));
        },
      });
    };
    gauge('weave_ips', 'Number of IP addresses.', (c) => c.allocated, { state: 'local-used' });
    gauge('weave_max_ips', 'Size of the IP range.', (c) => c.rangeSize);
    gauge('weave_ipam_unreachable_count', 'Number of peers owning IP space that are unreachable.', (c) => c.unreachablePeers);
    gauge('weave_ipam_unreachable_percentage', 'Percentage of the IP range owned by unreachable peers.', (c) => c.unreachablePercentage);
    gauge('weave_ipam_pending_allocates', 'Allocations waiting for consensus or space.', (c) => c.pendingAllocates);
    gauge('weave_ipam_pending_claims', 'Claims waiting for an answer.', (c) => c.pendingClaims);
  }
  if (source.dataPath) {
    const counters = source.dataPath.bind(source);
    const counter = (name: string, help: string, labelName: string, read: (c: DataPathCounters) => Iterable<[string, number]>): void => {
      // Counters read from the data path's own totals at scrape time.
      const last = new Map<string, number>();
      new Counter({
        name,
        help,
        labelNames: [labelName],
        registers: [registry],
        collect() {
          for (const [label, value] of read(counters())) {
            const before = last.get(label) ?? 0;
            if (value > before) this.inc({ [labelName]: label }, value - before);
            last.set(label, value);
          }
        },
      });
    };
    counter('weave_sleeve_packets_total', 'Frames and datagrams through the sleeve data path.', 'what', (c) =>
      Object.entries(c.stats).filter(([k]) => ['captured', 'injected', 'sent', 'received', 'ecnMarked'].includes(k))
        .map(([k, v]): [string, number] => [k === 'ecnMarked' ? 'ecn-marked' : k, v]));
    counter('weave_sleeve_bytes_total', 'Bytes through the sleeve data path (frames captured and injected, datagrams sent and received).', 'what', (c) =>
      Object.entries(c.stats).filter(([k]) => k.endsWith('Bytes')).map(([k, v]): [string, number] => [k.slice(0, -'Bytes'.length), v]));
    counter('weave_sleeve_dropped_total', 'Frames and datagrams the sleeve data path dropped, by reason.', 'reason', (c) => c.drops);
  }
  return registry;
}

/** f's value, computed at most once per turn of the event loop (a scrape collects in one turn). */
function oncePerTick<T>(f: () => T): () => T {
  let value: { v: T } | undefined;
  return () => {
    if (value === undefined) {
      value = { v: f() };
      setImmediate(() => (value = undefined));
    }
    return value.v;
  };
}
