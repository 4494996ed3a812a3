// The TAP reader: a Worker thread that read()s frames from the TAP fd straight into the slots of
// a FrameRing, one frame per read(), in the order the kernel hands them over. Reads are
// synchronous koffi calls on this thread: never fs.read or koffi's async calls, which make a
// thread-pool round trip per frame and reorder frames when several are in flight (DESIGN §6).
//
// The fd is non-blocking: the Worker reads until EAGAIN, then sleeps in poll() on the TAP fd and
// an eventfd. close() on the main thread raises the ring's stop flag and signals the eventfd, so
// the Worker wakes at once and returns; a read() sleeping in the kernel could not be woken (closing
// the fd from another thread does not interrupt it), which is why the sleep happens in poll().
//
// Stages of one frame:
//   1. reserve the next free slot (if the ring stays full: wait a bounded time, then drop one frame)
//   2. read() into the slot: [virtio_net_hdr][Ethernet frame], or just the frame without VNET_HDR
//   3. with a sender (DataPlane's): a frame the Worker can send itself is sent here, on this
//      thread, and its slot reused (src/dataplane/sender/worker-sender.ts);
//   4. otherwise commit: publish the slot, waking the main thread if it sleeps.
// With a receiver (DataPlane's), the same loop also receives on the sleeve socket, one datagram
// before each frame, and sleeps in poll() on the socket too (src/dataplane/receiver/).
import { parentPort, workerData } from 'node:worker_threads';
import { FrameRing, FrameRingProducer } from './frame-ring.js';
import { EAGAIN, EINTR, PollSet, errnoName, readFd, writeFd } from './libc.js';
import { WorkerSender, type SenderData, type SenderNote } from '../sender/worker-sender.js';
import { SocketReceiver, type SocketReceiverData } from '../receiver/socket-receiver.js';
import type { ReceiverNote } from '../receiver/sleeve-receiver.js';

/** What TapDevice passes in `workerData`. */
export interface TapReaderData {
  readonly fd: number;
  /** An eventfd signalled by close(): readable means stop. */
  readonly wakeFd: number;
  readonly ring: SharedArrayBuffer;
  /** How long a full ring is waited for before a frame is dropped. */
  readonly fullWaitMs: number;
  /** Bytes in front of each frame's Ethernet header (the virtio_net_hdr): 0 or 10. */
  readonly headerLength: number;
  /** Send the common frames from this thread (see worker-sender.ts). */
  readonly sender?: SenderData;
  /** Receive on the sleeve socket in this thread too, injecting the common frames (see receiver/). */
  readonly receiver?: SocketReceiverData;
}

/** What the Worker posts to the main thread. */
export type TapReaderMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'sender'; readonly note: SenderNote }
  | { readonly type: 'receiver'; readonly note: ReceiverNote }
  /** Reading failed for good (e.g. the device was deleted under us); the Worker exits after this. */
  | { readonly type: 'error'; readonly errno: number; readonly code: string; readonly message: string };

/**
 * The longest the reader sleeps without looking at the stop flag: close() wakes it through the
 * eventfd at once; this only bounds close() should that wake ever be lost.
 */
const SAFETY_POLL_MS = 5_000;

function post(message: TapReaderMessage): void {
  parentPort?.postMessage(message);
}

/** recvfrom() errors that mean the socket is not usable any more (EBADF, EFAULT, EINVAL, ENOTSOCK). */
const SOCKET_GONE = new Set([9, 14, 22, 88]);

/**
 * Datagrams received in one go before the TAP gets its turn again: one, so that the two directions
 * take turns frame by datagram. Under a bulk flow each side is busy with one direction (the
 * receiving node with 64 KB datagrams of ~50 µs each, the sending node with its super-frames),
 * and whatever travels the other way (the TCP acks, a ping's reply) waited for a whole batch at
 * every turn: with 32, the replies sat in the TAP for 1.5 ms (median, traced) and the RTT under
 * load was 3 ms; with 1, 10 µs and 1.5 ms, at the same throughput. An empty turn costs one
 * EAGAIN (about 1 µs).
 */
const RECEIVE_BATCH = 1;

function run(data: TapReaderData): void {
  const ring = FrameRing.attach(data.ring);
  const producer = new FrameRingProducer(ring);
  const pollSet = new PollSet(data.receiver === undefined ? [data.fd, data.wakeFd] : [data.fd, data.wakeFd, data.receiver.udpFd]);
  const overflow = new Uint8Array(ring.slotCapacity);
  const sender = data.sender === undefined ? undefined : new WorkerSender(data.sender, data.headerLength, (note) => post({ type: 'sender', note }));
  // One thread for both directions: a frame this thread injects is often answered at once (an echo
  // reply, a TCP ack), and it finds the answer on the TAP without sleeping and being woken again.
  const receiver = data.receiver === undefined ? undefined : new SocketReceiver(
    data.receiver, data.headerLength > 0, (packet) => writeFd(data.fd, packet) >= 0, (note) => post({ type: 'receiver', note }));
  /**
   * Receives up to a batch; true if the socket may hold more. Fails for good only when the socket
   * itself is gone; any other error (a pending ICMP error, no memory for a moment) is counted as
   * a drop and receiving goes on: input from the network must not end the data path.
   */
  let receiveFailed = 0;
  const receive = (): boolean => {
    if (receiver === undefined) return false;
    for (let i = 0; i < RECEIVE_BATCH; i++) {
      const n = receiver.receiveOne();
      if (n >= 0 || n === -EINTR) continue;
      if (n === -EAGAIN) {
        receiver.queueEmpty(); // the next datagram's wait is known without asking (sojourn.ts)
        return false;
      }
      if (SOCKET_GONE.has(-n)) receiveFailed = -n;
      else receiver.control.drop('receive-error');
      return false;
    }
    return true;
  };
  post({ type: 'ready' });
  while (!producer.stopRequested) {
    let more = receive();
    if (receiveFailed !== 0) return fail(receiveFailed, 'recvfrom() on the sleeve socket failed');
    let slot = producer.reserve();
    if (slot === undefined) {
      // The ring is full: wait for the main thread to free a slot, receiving meanwhile.
      const deadline = performance.now() + data.fullWaitMs;
      while (slot === undefined && !producer.stopRequested && performance.now() < deadline) {
        if (!producer.waitForSpace(receiver === undefined ? data.fullWaitMs : 1)) more = receive();
        slot = producer.reserve();
      }
      if (producer.stopRequested) break;
      // The consumer has not freed a slot for fullWaitMs: read one frame into the bin so that
      // this thread keeps going (and sees stop); the kernel's queue drops the rest meanwhile.
      slot ??= overflow;
    }
    const n = readFd(data.fd, slot);
    if (n > 0) {
      if (sender?.trySend(slot, n) === true) continue;
      if (slot === overflow) producer.countOverrun(n);
      else producer.commit(n);
      continue;
    }
    if (n === -EAGAIN) {
      if (more) continue; // the socket has more: no sleep
      const ready = pollSet.wait(SAFETY_POLL_MS);
      if (ready < 0 && ready !== -EINTR) return fail(-ready, 'poll() on the TAP failed');
      continue;
    }
    if (n === -EINTR) continue;
    // 0 or an error: the device is gone (a tun read returns EBADFD once the device is deleted).
    return fail(n === 0 ? 0 : -n, n === 0 ? 'the TAP returned end of file' : 'read() from the TAP failed');
  }
}

function fail(errno: number, what: string): void {
  const code = errno === 0 ? 'EOF' : errnoName(errno);
  post({ type: 'error', errno, code, message: `${what}: ${code}` });
}

run(workerData as TapReaderData);
