// A TAP device for the data path: frames the kernel sends out of the TAP (from the pods, through
// the `weave` bridge) are read by a Worker thread into a shared ring and handed to one handler on
// the main thread, in order; frames from the overlay are written synchronously from the main thread
// (or, with `receiver`, mostly by the reader thread itself, which then also receives the sleeve).
// With vnetHdr (the default) every frame in either direction starts with the 10-byte
// virtio_net_hdr, and with offloads (the default with vnetHdr) TCP arrives as 64 KB super-frames
// with partial checksums, to be carried to a peer that writes them unchanged into its own TAP.
//
//   const tap = await TapDevice.open({ name: 'vethwe-tap' });
//   tap.onFrames((packet) => forward(packet));     // packet: [virtio_net_hdr][Ethernet frame]
//   tap.write(packetFromPeer);                       // same layout; false if dropped
//   await tap.close();                               // stops the reader, deletes the device
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { FrameRing, FrameRingConsumer, DEFAULT_SLOTS } from './frame-ring.js';
import { closeFd, createEventFd, errnoName, signalEventFd, writeFd, EAGAIN, ENOBUFS } from './libc.js';
import { openTapFd, VNET_HDR_SIZE } from './tun-ioctl.js';
import { withNetworkNamespace } from './netns-enter.js';
import { formatVirtioNetHdr, VIRTIO_NET_HDR_NONE, type VirtioNetHdr } from './virtio-net-hdr.js';
import type { TapReaderData, TapReaderMessage } from './tap-reader.worker.js';
import { SenderControl, type SenderCounterValues } from '../sender/counters.js';
import type { SenderNote, SnapshotMessage } from '../sender/worker-sender.js';
import type { SenderSnapshot } from '../sender/snapshot.js';
import { ReceiverControl, type ReceiverCounterValues } from '../receiver/counters.js';
import { receiverSignature, type ReceiverSnapshot } from '../receiver/plan.js';
import type { ReceiverNote } from '../receiver/sleeve-receiver.js';
import type { ReceiverSnapshotMessage } from '../receiver/socket-receiver.js';

const READER_URL = new URL('./tap-reader.worker.js', import.meta.url);

/**
 * How long a full ring is waited for before the reader drops a frame: longer than a major GC
 * pause, so that the main thread stalling drops frames in the kernel's TAP queue (counted as the
 * TAP's tx_dropped) rather than here, one per wait, and the reader still sees close() in time.
 */
export const DEFAULT_FULL_WAIT_MS = 100;
/** How long close() waits for the reader to return before terminating its thread. */
const READER_EXIT_GRACE_MS = 2_000;

export interface TapDeviceOptions {
  /** Device name, at most 15 bytes (e.g. "vethwe-tap"). */
  readonly name: string;
  /**
   * Create the device in the network namespace at this path (e.g. "/run/netns/<name>") instead of
   * this process's own: the main thread enters it just for opening /dev/net/tun.
   */
  readonly netns?: string;
  /** IFF_VNET_HDR: a 10-byte virtio_net_hdr in front of every frame read and written. Default true. */
  readonly vnetHdr?: boolean;
  /** Checksum and TCP segmentation offloads (TUN_F_CSUM|TSO4|TSO6). Default: the same as vnetHdr. */
  readonly offloads?: boolean;
  /** Frames the ring between the reader and the main thread holds: a power of two, default 256. */
  readonly ringSlots?: number;
  /** How long the reader waits for the main thread to free a slot before it drops a frame. */
  readonly fullWaitMs?: number;
  /**
   * Let the reader send the common frames itself on this UDP socket (the sleeve's; it must stay
   * open until close() has returned), as told by updateSender(). Without a snapshot it sends nothing.
   */
  readonly sender?: { readonly udpFd: number; readonly keyUpdateAfterMessages?: number };
  /**
   * Let the reader thread also receive on this UDP socket (the sleeve's; it must stay open until
   * close() has returned, and nothing else may read it), opening datagrams with the links
   * updateReceiver() gives and writing the common frames into this TAP itself (receiver/).
   */
  readonly receiver?: { readonly udpFd: number };
}

export interface TapStats {
  /** Frames handed to the handler, and their bytes (virtio_net_hdr included). */
  readonly framesRead: number;
  readonly bytesRead: number;
  /** Frames the reader dropped because the main thread left the ring full (see fullWaitMs). */
  readonly readDrops: number;
  readonly framesWritten: number;
  readonly bytesWritten: number;
  /** Writes refused for lack of room (EAGAIN, ENOBUFS). */
  readonly writeDrops: number;
  /** Writes that failed otherwise (EINVAL: a header or frame the kernel refuses; EIO: link down; or after close). */
  readonly writeErrors: number;
  /** The errno name of the last failed write, if any. */
  readonly lastWriteError: string | undefined;
}

/** Called once per frame; the array is valid only until it returns (copy it to keep it). */
export type FrameHandler = (packet: Uint8Array) => void;

export class TapDevice {
  /** Bytes in front of the Ethernet frame in every packet read or written: 10 with vnetHdr, else 0. */
  readonly headerLength: number;
  private readonly consumer: FrameRingConsumer;
  private handler: FrameHandler | undefined;
  private flush: (() => void) | undefined;
  private readonly errorListeners = new Set<(err: Error) => void>();
  private readonly senderListeners = new Set<(note: SenderNote) => void>();
  private readonly receiverListeners = new Set<(note: ReceiverNote) => void>();
  private receiverSent = '';
  private closing: Promise<void> | undefined;
  private framesRead = 0;
  private bytesRead = 0;
  private framesWritten = 0;
  private bytesWritten = 0;
  private writeDrops = 0;
  private writeErrors = 0;
  private lastWriteError: string | undefined;

  private constructor(
    /** The device's name as the kernel has it. */
    readonly name: string,
    readonly vnetHdr: boolean,
    readonly offloads: boolean,
    private readonly fd: number,
    private readonly wakeFd: number,
    private readonly ring: FrameRing,
    private readonly worker: Worker,
    private readonly readerExited: Promise<void>,
    private readonly sender: { readonly control: SenderControl; readonly port: MessagePort } | undefined,
    private readonly receiver: { readonly control: ReceiverControl; readonly port: MessagePort } | undefined,
  ) {
    this.headerLength = vnetHdr ? VNET_HDR_SIZE : 0;
    this.consumer = new FrameRingConsumer(ring);
    worker.on('message', (message: TapReaderMessage) => {
      if (message.type === 'error') {
        if (this.closing === undefined) this.emitError(new Error(`TAP ${name}: ${message.message}`));
      } else if (message.type === 'sender') for (const listener of this.senderListeners) listener(message.note);
      else if (message.type === 'receiver') for (const listener of this.receiverListeners) listener(message.note);
    });
    worker.on('error', (err) => this.emitError(new Error(`TAP ${name}: the reader thread failed: ${err.message}`)));
  }

  /**
   * Creates (or attaches to) the TAP device and starts its reader. Rejects with a SysError that
   * says what is missing (no /dev/net/tun, no CAP_NET_ADMIN, a name in use) and leaves nothing open.
   */
  static async open(options: TapDeviceOptions): Promise<TapDevice> {
    const vnetHdr = options.vnetHdr ?? true;
    const offloads = options.offloads ?? vnetHdr;
    const ring = FrameRing.create({ slots: options.ringSlots ?? DEFAULT_SLOTS });
    const request = { name: options.name, vnetHdr, offloads, nonBlocking: true };
    const tap = options.netns === undefined ? openTapFd(request) : withNetworkNamespace(options.netns, () => openTapFd(request));
    let wakeFd: number | undefined;
    let sender: { control: SenderControl; port: MessagePort } | undefined;
    let receiver: { control: ReceiverControl; port: MessagePort } | undefined;
    try {
      wakeFd = createEventFd();
      const channel = options.sender === undefined ? undefined : new MessageChannel();
      const control = options.sender === undefined ? undefined : SenderControl.create();
      const receiverChannel = options.receiver === undefined ? undefined : new MessageChannel();
      if (receiverChannel) receiver = { control: ReceiverControl.create(), port: receiverChannel.port1 };
      const data: TapReaderData = {
        fd: tap.fd, wakeFd, ring: ring.buffer, fullWaitMs: options.fullWaitMs ?? DEFAULT_FULL_WAIT_MS, headerLength: vnetHdr ? VNET_HDR_SIZE : 0,
        ...(options.sender && channel && control ? { sender: { ...options.sender, control: control.buffer, port: channel.port2 } } : {}),
        ...(options.receiver && receiverChannel && receiver ? { receiver: { udpFd: options.receiver.udpFd, control: receiver.control.buffer, port: receiverChannel.port2 } } : {}),
      };
      if (channel && control) sender = { control, port: channel.port1 };
      const transfer: MessagePort[] = [channel?.port2, receiverChannel?.port2].filter((p): p is MessagePort => p !== undefined);
      // execArgv []: the reader needs none of the process's flags, and inheriting --import loader
      // hooks (a test runner's, an APM's) would cost a hooks thread and half a second per device.
      const worker = new Worker(READER_URL, {
        workerData: data, name: `tap-reader ${tap.name}`, execArgv: [], transferList: transfer,
      });
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        const onMessage = (m: TapReaderMessage): void => {
          if (m.type === 'ready') done(resolve);
          else if (m.type === 'error') done(() => reject(new Error(`TAP ${tap.name}: ${m.message}`)));
        };
        const onError = (err: Error): void => done(() => reject(new Error(`TAP ${tap.name}: the reader thread failed to start: ${err.message}`)));
        const onExit = (code: number): void => done(() => reject(new Error(`TAP ${tap.name}: the reader thread exited (${code}) before it was ready`)));
        const done = (then: () => void): void => {
          worker.off('message', onMessage).off('error', onError).off('exit', onExit);
          then();
        };
        worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      }).catch(async (err: unknown) => {
        await worker.terminate();
        throw err;
      });
      return new TapDevice(tap.name, vnetHdr, offloads, tap.fd, wakeFd, ring, worker, exited, sender, receiver);
    } catch (err) {
      sender?.port.close();
      receiver?.port.close();
      if (wakeFd !== undefined) closeFd(wakeFd);
      closeFd(tap.fd);
      throw err;
    }
  }

  /**
   * Starts delivering frames read from the device to `handler`, in order, one call per frame;
   * `flush`, if given, is called after each batch (for a sender that aggregates). One handler
   * per device. Frames read before this is called wait in the ring (and are dropped once it is full).
   * An exception from the handler goes to the onError listeners; delivery goes on.
   */
  onFrames(handler: FrameHandler, flush?: () => void): void {
    if (this.handler !== undefined) throw new Error(`TAP ${this.name} has a frame handler already`);
    if (this.closing !== undefined) throw new Error(`TAP ${this.name} is closed`);
    this.handler = handler;
    this.flush = flush;
    this.pump();
  }

  /**
   * With `sender`: what the reader may send itself from now on (replacing the last snapshot). The
   * reader picks it up at its next frame.
   */
  updateSender(snapshot: SenderSnapshot): void {
    if (this.sender === undefined) throw new Error(`TAP ${this.name} was opened without a sender`);
    if (this.closing !== undefined) return;
    const generation = this.sender.control.generation + 1;
    const message: SnapshotMessage = { generation, snapshot };
    this.sender.port.postMessage(message);
    this.sender.control.bumpGeneration();
  }

  /**
   * With `receiver`: the links the reader opens datagrams of, and the MACs it injects for; posted
   * only if it differs from the last. The reader applies it before the next datagram.
   */
  updateReceiver(snapshot: ReceiverSnapshot): void {
    if (this.receiver === undefined) throw new Error(`TAP ${this.name} was opened without a receiver`);
    if (this.closing !== undefined) return;
    const signature = receiverSignature(snapshot);
    if (signature === this.receiverSent) return;
    this.receiverSent = signature;
    const message: ReceiverSnapshotMessage = { generation: this.receiver.control.generation + 1, snapshot };
    this.receiver.port.postMessage(message);
    this.receiver.control.bumpGeneration();
  }

  /** What the reader's receive path has counted (undefined without `receiver`). */
  receiverCounters(): ReceiverCounterValues | undefined {
    return this.receiver?.control.read();
  }

  /** What the reader's receive path hands over: decoded messages, MACs seen, malformed datagrams. */
  onReceiverNote(listener: (note: ReceiverNote) => void): void {
    this.receiverListeners.add(listener);
  }

  /** What the reader's send path has counted (undefined without `sender`). */
  senderCounters(): SenderCounterValues | undefined {
    return this.sender?.control.read();
  }

  /** What the reader's send path reports: local MACs it sent for, send errors. */
  onSenderNote(listener: (note: SenderNote) => void): void {
    this.senderListeners.add(listener);
  }

  /** Errors after open(): the reader failing (device deleted under us), a handler throwing. */
  onError(listener: (err: Error) => void): void {
    this.errorListeners.add(listener);
  }

  /**
   * Writes one packet ([virtio_net_hdr][Ethernet frame] with vnetHdr, the bare frame without)
   * synchronously. False if the kernel dropped it (counted in writeDrops) or refused it
   * (writeErrors: a malformed header, the link down, or the device closed); never throws.
   */
  write(packet: Uint8Array): boolean {
    if (this.closing !== undefined) {
      this.writeErrors++;
      this.lastWriteError = 'closed';
      return false;
    }
    const n = writeFd(this.fd, packet);
    if (n >= 0) {
      this.framesWritten++;
      this.bytesWritten += n;
      return true;
    }
    if (n === -EAGAIN || n === -ENOBUFS) this.writeDrops++;
    else this.writeErrors++;
    this.lastWriteError = errnoName(-n);
    return false;
  }

  /** Writes a bare Ethernet frame, putting `hdr` (all zero: nothing to finish) in front of it with vnetHdr. Copies: not for the hot path. */
  writeFrame(frame: Uint8Array, hdr: VirtioNetHdr = VIRTIO_NET_HDR_NONE): boolean {
    if (!this.vnetHdr) {
      if (hdr !== VIRTIO_NET_HDR_NONE) throw new RangeError(`TAP ${this.name} has no virtio_net_hdr to carry offload information`);
      return this.write(frame);
    }
    const packet = new Uint8Array(VNET_HDR_SIZE + frame.byteLength);
    formatVirtioNetHdr(hdr, packet, 0);
    packet.set(frame, VNET_HDR_SIZE);
    return this.write(packet);
  }

  get stats(): TapStats {
    return {
      framesRead: this.framesRead,
      bytesRead: this.bytesRead,
      readDrops: this.ring.producerStats().overruns,
      framesWritten: this.framesWritten,
      bytesWritten: this.bytesWritten,
      writeDrops: this.writeDrops,
      writeErrors: this.writeErrors,
      lastWriteError: this.lastWriteError,
    };
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * Stops the reader (waking it from its poll() at once), then closes the fd, which deletes the
   * device. Frames still in the ring are not delivered. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.consumer.requestStop();
    signalEventFd(this.wakeFd);
    this.consumer.interruptWait();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), READER_EXIT_GRACE_MS)));
    if ((await Promise.race([this.readerExited, late])) === 'late') await this.worker.terminate();
    clearTimeout(timer);
    // Only now: the reader must never read from an fd number that may already be reused.
    closeFd(this.wakeFd);
    closeFd(this.fd);
    this.sender?.port.close();
    this.receiver?.port.close();
  }

  private readonly pump = (): void => {
    const handler = this.handler;
    if (this.closing !== undefined || handler === undefined) return;
    const drained = this.consumer.drain(this.deliver);
    if (drained > 0 && this.flush !== undefined) {
      try {
        this.flush();
      } catch (err) {
        this.emitError(err);
      }
    }
    const wait = this.consumer.waitForFrames();
    // More ready at once: drain again after pending I/O has had its turn (the other direction's
    // writes, timers), so a flood from the pods cannot starve the main thread.
    if (wait === undefined) setImmediate(this.pump);
    else void wait.then(this.pump);
  };

  private readonly deliver = (packet: Uint8Array): void => {
    this.framesRead++;
    this.bytesRead += packet.byteLength;
    try {
      this.handler?.(packet);
    } catch (err) {
      this.emitError(err);
    }
  };

  private emitError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.errorListeners.size === 0) {
      // As an EventEmitter's unhandled 'error': nobody listening means nobody would ever know.
      queueMicrotask(() => {
        throw error;
      });
      return;
    }
    for (const listener of this.errorListeners) listener(error);
  }
}
