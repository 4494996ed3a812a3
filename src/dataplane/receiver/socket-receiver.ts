// The receive step on the sleeve socket, for the Worker loop that owns it (the TAP reader's: one
// thread polls both the TAP and the socket): recvfrom() into one reused buffer, the datagram to a
// SleeveReceiver, and the latest snapshot applied first when the main thread has posted one (no
// wake-up needed: a new link's first datagram is what wakes the thread, and it applies it first).
// CoDel watches how long datagrams waited in the socket's queue (sojourn.ts) and has frames marked
// or dropped when a standing queue builds (codel.ts says why the queue is here).
import type { MessagePort } from 'node:worker_threads';
import { recvFromFd } from '../tap/libc.js';
import { formatSockaddr } from '../tap/udp-offload.js';
import { ReceiverControl } from './counters.js';
import { newestMessage } from '../tap/worker-counters.js';
import { SleeveReceiver, type ReceiverNote } from './sleeve-receiver.js';
import { Codel } from './codel.js';
import { ReceiveDelay } from '../tap/receive-delay.js';
import { Sojourn } from './sojourn.js';
import type { ReceiverSnapshot } from './plan.js';

/** What a Worker needs to receive on the sleeve socket. */
export interface SocketReceiverData {
  readonly udpFd: number;
  readonly control: SharedArrayBuffer;
  /** Snapshots arrive here, one message per generation. */
  readonly port: MessagePort;
}

export interface ReceiverSnapshotMessage {
  readonly generation: number;
  readonly snapshot: ReceiverSnapshot;
}

/** A UDP_GRO read holds at most 64 KB; the rest is room. */
const RECEIVE_BUFFER_BYTES = 65_536 + 1024;

export class SocketReceiver {
  readonly control: ReceiverControl;
  private readonly receiver: SleeveReceiver;
  private readonly buffer = new Uint8Array(RECEIVE_BUFFER_BYTES);
  private readonly sockaddr = new Uint8Array(28);
  private readonly addrLength = Buffer.alloc(4);
  private readonly from = (): string => formatSockaddr(this.sockaddr);
  private generation = 0;
  private readonly codel = new Codel();
  /** How long each datagram waited in the socket's queue, from the kernel's receive stamps. */
  private readonly sojourn: Sojourn;

  constructor(
    private readonly data: SocketReceiverData,
    tapVnetHdr: boolean,
    inject: (packet: Uint8Array) => boolean,
    private readonly notify: (note: ReceiverNote) => void,
  ) {
    this.control = ReceiverControl.attach(data.control);
    const delay = new ReceiveDelay(data.udpFd);
    this.sojourn = new Sojourn(() => delay.lastMs());
    this.receiver = new SleeveReceiver({ control: this.control, tapVnetHdr, inject, notify, congested: () => this.congested() });
  }

  /** Receives and handles one datagram: its byte count, or -errno (-EAGAIN: nothing waiting). */
  receiveOne(): number {
    if (this.control.generation !== this.generation) this.refresh();
    const n = recvFromFd(this.data.udpFd, this.buffer, this.buffer.byteLength, this.sockaddr, this.addrLength);
    if (n >= 0) {
      this.sojourn.received();
      this.receiver.onDatagram(this.buffer.subarray(0, n), this.from);
    }
    return n;
  }

  /** The socket's queue is empty now (recvfrom() said EAGAIN). */
  queueEmpty(): void {
    this.sojourn.queueEmpty();
  }

  /** CoDel's verdict for a frame of the datagram received last (every frame of it asks). */
  private congested(): boolean {
    return this.codel.signal(this.sojourn.lastMs(), performance.now());
  }

  /** Applies the latest snapshot on the port (older ones queued behind it are skipped). */
  private refresh(): void {
    const latest = newestMessage<ReceiverSnapshotMessage>(this.data.port);
    if (latest === undefined) return;
    this.generation = latest.generation;
    try {
      this.receiver.apply(latest.snapshot);
    } catch (err) {
      this.receiver.clear();
      this.notify({ type: 'snapshot-error', message: (err as Error).message });
    }
  }
}
