// The IPAM consensus protocol alone: N pure Ipam cores in one process, all started at once on a
// full mesh, messages delivered after a fixed one-hop latency, ticks every second. It measures
// the protocol's own time to a ring on every peer, free of what ipam.bench.ts also measures on a
// 2-core machine: starting N Node processes and forming N(N-1)/2 TCP connections at once.
// Run: node dist/bench/ipam-consensus.bench.js [--peers 3,10,50,200] [--latency-ms 1]
import { Ipam, type Step } from '../src/ipam/allocator.js';
import { parseCidr } from '../src/net/ipv4.js';
import { peerNameFromNumber, type PeerName } from '../src/net/peer-name.js';
import type { IpamMessage } from '../src/ipam/messages.js';
import { encodeIpamMessage } from '../src/ipam/codec.js';
import { arg } from './lib/stats.js';

const peerCounts = arg('peers', '3,10,50,200').split(',').map(Number);
const latency = Number(arg('latency-ms', '1'));
const range = parseCidr('10.32.0.0/12');

interface Delivery { at: number; to: PeerName; from: PeerName; message: IpamMessage }

function simulate(n: number): { readyAt: number; messages: number; bytes: number } {
  const names = Array.from({ length: n }, (_, i) => peerNameFromNumber(0x020000000000 + i + 1));
  const peers = new Map(names.map((p) => [p, Ipam.create({ self: p, range, mode: { kind: 'consensus', peers: n } })]));
  const queue: Delivery[] = [];
  let messages = 0;
  let bytes = 0;
  const send = (from: PeerName, step: Step, now: number): void => {
    for (const o of step.out) {
      const size = encodeIpamMessage(o.message).length;
      const targets = 'broadcast' in o ? names.filter((p) => p !== from) : [o.to];
      for (const to of targets) {
        queue.push({ at: now + latency, to, from, message: o.message });
        messages++;
        bytes += size;
      }
    }
  };
  // Everyone is up and connected at t = 0: each learns the others as reachable and primes.
  for (const [name, ipam] of peers) {
    send(name, ipam.setReachable(names.filter((p) => p !== name), 0), 0);
    send(name, ipam.prime(0), 0);
  }
  let now = 0;
  let nextTick = 1000;
  while (now < 120_000) {
    if ([...peers.values()].every((p) => p.ring !== undefined)) return { readyAt: now, messages, bytes };
    queue.sort((a, b) => a.at - b.at);
    const d = queue[0];
    if (d !== undefined && d.at <= nextTick) {
      queue.shift();
      now = d.at;
      send(d.to, peers.get(d.to)!.onMessage(d.from, d.message, now), now);
    } else {
      now = nextTick;
      nextTick += 1000;
      for (const [name, ipam] of peers) send(name, ipam.tick(now), now);
    }
  }
  throw new Error(`${n} peers: no ring after 120 simulated seconds`);
}

console.log(`IPAM consensus in one process: full mesh, ${latency} ms per hop, all peers started together`);
console.log('peers  simulated ms to ready on all  messages  KB sent in all');
for (const n of peerCounts) {
  const r = simulate(n);
  console.log(`${String(n).padStart(5)}  ${String(r.readyAt.toFixed(0)).padStart(28)}  ${String(r.messages).padStart(8)}  ${(r.bytes / 1024).toFixed(0).padStart(14)}`);
}
