// Benchmarks of the sleeve's pure parts on this machine (not run by `npm test`):
//
//   node dist/test/dataplane/sleeve/sleeve.bench.js [--runs 3] [--ms 400]
//
// 1. AEAD: FrameSealer.seal and FrameOpener.open (the real code path: createCipheriv per
//    message, header as AAD) for chacha20-poly1305 and aes-256-gcm, at 1400 B and 64 KB.
//    FRAME_CIPHER in frame-crypto.ts is the faster at 64 KB (one seal per GSO super-frame).
// 2. The whole pure send and receive path for one 62 KB super-frame, plain and encrypted:
//    OutboundLink.pack, splitDatagram, InboundLink.accept (reassembly, open, replay window).
// 3. gso-split: a 64 KB TCPv4 super-frame at MSS 1448 cut into 45 segments with checksums.
// Each figure is min / median / max over --runs runs of --ms milliseconds each.
import { splitDatagram } from '../src/dataplane/sleeve/chunker.js';
import { FrameOpener, FrameSealer, deriveFrameKeys, type FrameCipherName } from '../src/dataplane/sleeve/frame-crypto.js';
import { MessageKind, SleeveFormatError, chunkStride } from '../src/dataplane/sleeve/header.js';
import { gsoSplit } from '../src/dataplane/sleeve/gso-split.js';
import { InboundLink } from '../src/dataplane/sleeve/inbound.js';
import { OutboundLink } from '../src/dataplane/sleeve/outbound.js';
import { Reassembler } from '../src/dataplane/sleeve/reassembler.js';
import { bytes } from '../test/dataplane/sleeve/arbitraries.js';
import { buildPacket } from '../test/dataplane/sleeve/packets.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const RUNS = arg('runs', 3);
const MS = arg('ms', 400);

/** Calls fn repeatedly for about MS ms, RUNS times; returns the rate (calls/s) of each run, sorted. */
function measure(fn: (i: number) => void): number[] {
  for (let i = 0; i < 200; i++) fn(i); // warm up
  const rates: number[] = [];
  let n = 0;
  for (let r = 0; r < RUNS; r++) {
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(MS) * 1_000_000n;
    let calls = 0;
    let now = start;
    while (now < deadline) {
      for (let k = 0; k < 16; k++) fn(n++);
      calls += 16;
      now = process.hrtime.bigint();
    }
    rates.push(calls / (Number(now - start) / 1e9));
  }
  return rates.sort((a, b) => a - b);
}

const mmm = (xs: readonly number[], f: (x: number) => string): string => `${f(xs[0]!)} / ${f(xs[Math.floor(xs.length / 2)]!)} / ${f(xs.at(-1)!)}`;
const gbps = (size: number) => (rate: number) => `${((rate * size) / 1e9).toFixed(2)} GB/s`;
const usPer = (rate: number) => `${(1e6 / rate).toFixed(1)} µs`;

console.log(`node ${process.version}, ${RUNS} runs × ${MS} ms; min / median / max\n`);
console.log('AEAD (seal = FrameSealer.seal, open = FrameOpener.open)');
const aad = bytes(33, 1);
for (const size of [1400, 65536]) {
  for (const cipher of ['chacha20-poly1305', 'aes-256-gcm'] as FrameCipherName[]) {
    const key = bytes(32, 2);
    const sealer = new FrameSealer(key, true, { cipher });
    const plain = bytes(size, 3);
    const seal = measure(() => sealer.seal(sealer.nextSequence, 0, aad, plain));
    const sealed = Buffer.concat(new FrameSealer(key, true, { cipher }).seal(0, 0, aad, plain));
    const opener = new FrameOpener(key, true, { cipher });
    const open = measure(() => {
      if (!opener.open(0, 0, aad, sealed)) throw new Error('did not open');
    });
    console.log(
      `  ${cipher.padEnd(18)} ${String(size).padStart(6)} B  seal ${mmm(seal, gbps(size))} (${usPer(seal[1]!)}/msg)   open ${mmm(open, gbps(size))} (${usPer(open[1]!)}/msg)`,
    );
  }
}

console.log('\nWhole pure path for one 62 KB super-frame (pack -> split -> accept), stride 1472');
for (const encrypted of [false, true]) {
  const session = bytes(32, 4);
  const uid = 77n;
  const keys = [deriveFrameKeys(session, uid, true), deriveFrameKeys(session, uid, false)] as const;
  const out = new OutboundLink({ connectionUid: uid, weDialled: true, stride: chunkStride(1500), ...(encrypted ? { sealer: new FrameSealer(keys[0].send, true) } : {}) });
  const makeInbound = () =>
    new InboundLink({
      connectionUid: uid,
      weDialled: false,
      reassembler: new Reassembler(),
      ...(encrypted ? { opener: new FrameOpener(keys[1].receive, true) } : {}),
    });
  const frame = bytes(62_024, 5);
  const pack = () => out.pack({ kind: MessageKind.Frame, srcPeer: 1, dstPeer: 2, vnetHdr: true, body: frame });
  const send = measure(pack);
  // The receive side needs fresh sequence numbers (the window refuses repeats): a ring of packed
  // messages, and a new window each time round it.
  const ring = Array.from({ length: 256 }, () => pack()[0]!);
  let inn = makeInbound();
  const recv = measure((i) => {
    if (i % ring.length === 0) inn = makeInbound();
    let got = 0;
    for (const c of splitDatagram(ring[i % ring.length]!)) {
      if (c instanceof SleeveFormatError) throw new Error(c.detail);
      if (inn.accept(c, 0).status === 'message') got++;
    }
    if (got !== 1) throw new Error('no message');
  });
  console.log(
    `  ${encrypted ? 'encrypted' : 'plain    '}  pack ${mmm(send, gbps(62_024))} (${usPer(send[1]!)})   split+accept ${mmm(recv, gbps(62_024))} (${usPer(recv[1]!)})`,
  );
}

console.log('\ngso-split: 64 KB TCPv4 super-frame, MSS 1448 -> 45 segments');
const spec = {
  ipv6: false,
  udp: false,
  vlan: false,
  hopByHop: false,
  src: Uint8Array.of(10, 32, 0, 1),
  dst: Uint8Array.of(10, 40, 0, 2),
  sport: 40000,
  dport: 5201,
  seq: 1,
  ack: 1,
  tcpFlags: 0x18,
  tcpOptions: new Uint8Array(12),
  ipId: 1,
  payload: bytes(65_000, 6),
};
const packet = buildPacket(spec, 1448).packet;
const output = new Uint8Array(70_000);
const split = measure(() => {
  const r = gsoSplit(packet, output);
  if (!Array.isArray(r)) throw new Error('refused');
});
console.log(`  ${mmm(split, gbps(65_000))} (${usPer(split[1]!)} per super-frame, ${((split[1]! * 45) / 1e3).toFixed(0)} k segments/s)`);
