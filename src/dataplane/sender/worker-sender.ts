// The send path inside the TAP reader Worker: for each frame the reader read, decide (shortcut.ts
// on the latest snapshot), and if it is the Worker's, number, seal, chunk (OutboundLink.pack, the
// same code as the main thread's) and sendto() it on the sleeve socket's fd, synchronously, on
// this thread. What it does not take stays in the ring for the main thread, as before.
//
// Send errors never end the reader: EAGAIN/ENOBUFS (the socket buffer is full) drop the datagram
// and count it, as the kernel would drop it further on; any other errno is counted and reported to
// the main thread once per errno (EMSGSIZE: the path MTU shrank under the link's stride).
import type { MessagePort } from 'node:worker_threads';
import { EAGAIN, ENOBUFS, errnoName, sendToFd } from '../tap/libc.js';
import { encodeSockaddr } from '../tap/udp-offload.js';
import { macFromBytes, type Mac } from '../forwarder/mac.js';
import { OutboundLink } from '../sleeve/outbound.js';
import { FrameSealer } from '../sleeve/frame-crypto.js';
import { SequenceCounter } from '../sleeve/sequence-counter.js';
import { MessageKind } from '../sleeve/header.js';
import { SendArena } from '../sleeve/chunker.js';
import { CaptureShortcut } from './shortcut.js';
import { SenderControl, CAPTURED, CAPTURED_BYTES, SENT, SENT_BYTES } from './counters.js';
import { newestMessage } from '../tap/worker-counters.js';
import type { SenderSnapshot, SnapshotLink } from './snapshot.js';

/** What the main thread hands the reader to send with. */
export interface SenderData {
  /** The sleeve's UDP socket (UDP_SEGMENT set): the reader sendto()s on it. Stays open while the reader runs. */
  readonly udpFd: number;
  readonly control: SharedArrayBuffer;
  /** Snapshots arrive here, one message per generation. */
  readonly port: MessagePort;
  /** Messages per key of encrypted links (tests set a small one); the main thread's sealers use the same. */
  readonly keyUpdateAfterMessages?: number;
}

/** A snapshot as posted, with its generation. */
export interface SnapshotMessage {
  readonly generation: number;
  readonly snapshot: SenderSnapshot;
}

/** What the send path tells the main thread (rarely). */
export type SenderNote =
  /** Frames from these local MACs were sent by the Worker lately: refresh them. */
  | { readonly type: 'seen'; readonly macs: readonly Mac[] }
  | { readonly type: 'send-error'; readonly code: string; readonly link: string }
  /** The latest snapshot could not be applied: the main thread sends everything meanwhile. */
  | { readonly type: 'snapshot-error'; readonly message: string };

interface WorkerLink {
  readonly spec: SnapshotLink;
  readonly out: OutboundLink;
  readonly sockaddr: Uint8Array;
}

interface WorkerRoute {
  readonly link: WorkerLink;
  readonly dstPeer: number;
}

export class WorkerSender {
  private readonly control: SenderControl;
  private readonly shortcut = new CaptureShortcut<WorkerRoute>();
  private links = new Map<string, WorkerLink>();
  private self = 0;
  private generation = 0;
  /** One private copy of the frame: packing straight from shared memory is slow (see DataPlane.onCaptured). */
  private readonly scratch = Buffer.allocUnsafe(65_600);
  private readonly reported = new Set<string>();
  private readonly arena = new SendArena();

  constructor(
    private readonly data: SenderData,
    /** Bytes in front of the Ethernet header (the virtio_net_hdr), 0 or 10. */
    private readonly headerLength: number,
    private readonly notify: (note: SenderNote) => void,
  ) {
    this.control = SenderControl.attach(data.control);
  }

  /**
   * Sends `frame` (frame[0, length): [virtio_net_hdr][Ethernet frame]) if it is the Worker's;
   * false leaves it to the main thread. True means handled: sent, or dropped and counted.
   */
  trySend(frame: Uint8Array, length: number): boolean {
    if (this.control.generation !== this.generation) this.refresh();
    if (!this.shortcut.active) return false;
    const at = this.headerLength;
    if (length < at + 14) return false;
    const src = macFromBytes(frame, at + 6);
    const route = this.shortcut.decide(macFromBytes(frame, at), src);
    if (route === undefined) return false;
    if (this.shortcut.noteDue(src, performance.now())) this.notify({ type: 'seen', macs: [src] });
    this.control.addAt(CAPTURED, 1);
    this.control.addAt(CAPTURED_BYTES, length);
    const body = this.scratch.subarray(0, length);
    body.set(frame.subarray(0, length));
    const link = route.link;
    let sends: Buffer[];
    try {
      // sendto() below is synchronous: the same memory serves every message.
      this.arena.reset();
      sends = link.out.pack({ kind: MessageKind.Frame, srcPeer: this.self, dstPeer: route.dstPeer, vnetHdr: at > 0, body }, link.out.stride, this.arena.allocate);
    } catch {
      this.control.drop('cannot-pack');
      return true;
    }
    for (const b of sends) {
      const n = sendToFd(this.data.udpFd, b, b.length, link.sockaddr);
      if (n >= 0) {
        this.control.addAt(SENT, 1);
        this.control.addAt(SENT_BYTES, b.length);
        continue;
      }
      this.control.add('sendErrors');
      if (-n === EAGAIN || -n === ENOBUFS) {
        this.control.drop('send-buffer-full');
        continue;
      }
      const code = errnoName(-n);
      if (!this.reported.has(code)) {
        this.reported.add(code);
        this.notify({ type: 'send-error', code, link: `${link.spec.remoteIp}:${link.spec.remotePort}` });
      }
    }
    return true;
  }

  /** Takes the latest snapshot off the port (older ones queued behind it are skipped). */
  private refresh(): void {
    const latest = newestMessage<SnapshotMessage>(this.data.port);
    if (latest === undefined) return;
    this.generation = latest.generation;
    try {
      this.apply(latest.snapshot);
    } catch (err) {
      // A snapshot this thread cannot use (an address it cannot encode, say) must not end the
      // reader: everything goes to the main thread until the next one.
      this.links = new Map();
      this.shortcut.apply(new Map(), new Set());
      this.notify({ type: 'snapshot-error', message: (err as Error).message });
    }
  }

  private apply(s: SenderSnapshot): void {
    this.self = s.self;
    const links = new Map<string, WorkerLink>();
    for (const spec of s.links) {
      const had = this.links.get(spec.key);
      if (had !== undefined && sameLink(had.spec, spec)) {
        links.set(spec.key, had);
        continue;
      }
      const sequence = SequenceCounter.attach(spec.sequence);
      const sealer = spec.sendKey === undefined ? undefined : new FrameSealer(spec.sendKey, spec.weDialled, {
        sequence, ...(this.data.keyUpdateAfterMessages === undefined ? {} : { keyUpdateAfterMessages: this.data.keyUpdateAfterMessages }),
      });
      const out = new OutboundLink({ connectionUid: spec.connectionUid, weDialled: spec.weDialled, stride: spec.stride, ...(sealer ? { sealer } : { sequence }) });
      links.set(spec.key, { spec, out, sockaddr: encodeSockaddr(spec.remoteIp, spec.remotePort) });
    }
    this.links = links;
    const routes = new Map<Mac, WorkerRoute>();
    for (const r of s.routes) {
      const link = links.get(r.link);
      if (link !== undefined) routes.set(r.mac, { link, dstPeer: r.dstPeer });
    }
    this.shortcut.apply(routes, new Set(s.locals));
  }
}

function sameLink(a: SnapshotLink, b: SnapshotLink): boolean {
  return a.connectionUid === b.connectionUid && a.stride === b.stride && a.remoteIp === b.remoteIp && a.remotePort === b.remotePort &&
    a.weDialled === b.weDialled && (a.sendKey === undefined) === (b.sendKey === undefined);
}
