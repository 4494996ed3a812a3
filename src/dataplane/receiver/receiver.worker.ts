// The sleeve receiver: a Worker thread that owns the receive side of the sleeve socket (DESIGN §6:
// the UDP->TAP direction on the second core). It recvfrom()s datagrams until EAGAIN, then sleeps
// in poll() on the socket and an eventfd that stop() signals (a recv sleeping in the kernel could
// not be woken, as with the TAP reader). Each datagram goes to a SleeveReceiver (through
// SocketReceiver), which writes the common frames into the TAP itself (synchronous write through
// koffi) and posts the rest to the main thread, decoded.
import { parentPort, workerData } from 'node:worker_threads';
import { EAGAIN, EINTR, POLLIN, PollSet, errnoName, readFd, writeFd } from '../tap/libc.js';
import { SocketReceiver, type SocketReceiverData } from './socket-receiver.js';
import type { ReceiverNote } from './sleeve-receiver.js';

/** What ReceiverThread passes in `workerData`. */
export interface ReceiverData extends SocketReceiverData {
  readonly tapFd: number;
  readonly tapVnetHdr: boolean;
  /** An eventfd signalled by stop() and by new snapshots: readable means look at the flags. */
  readonly wakeFd: number;
}

export type ReceiverMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'note'; readonly note: ReceiverNote }
  /** Receiving failed for good; the Worker exits after this. */
  | { readonly type: 'error'; readonly code: string; readonly message: string };

/** The longest sleep without looking at the stop flag, should the eventfd's wake ever be lost. */
const SAFETY_POLL_MS = 5_000;

function post(message: ReceiverMessage): void {
  parentPort?.postMessage(message);
}

function run(data: ReceiverData): void {
  // A synchronous write of one packet into the TAP: the tun driver takes a whole frame per write().
  const inject = (packet: Uint8Array): boolean => writeFd(data.tapFd, packet) >= 0;
  const receiver = new SocketReceiver(data, data.tapVnetHdr, inject, (note) => post({ type: 'note', note }));
  const pollSet = new PollSet([data.udpFd, data.wakeFd]);
  const wakeCount = new Uint8Array(8);
  post({ type: 'ready' });
  while (!receiver.control.stopRequested) {
    const n = receiver.receiveOne();
    if (n >= 0 || n === -EINTR) continue;
    if (n === -EAGAIN) {
      const ready = pollSet.wait(SAFETY_POLL_MS);
      if (ready < 0 && ready !== -EINTR) return fail(-ready, 'poll() on the sleeve socket failed');
      // Reset the eventfd (a new snapshot, or stop): left readable, every poll() would return at once.
      if (ready > 0 && (pollSet.revents(1) & POLLIN) !== 0) readFd(data.wakeFd, wakeCount);
      continue;
    }
    return fail(-n, 'recvfrom() on the sleeve socket failed');
  }
}

function fail(errno: number, what: string): void {
  const code = errnoName(errno);
  post({ type: 'error', code, message: `${what}: ${code}` });
}

run(workerData as ReceiverData);
