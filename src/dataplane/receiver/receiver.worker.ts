// The sleeve receiver: a Worker thread that owns the receive side of the sleeve socket (DESIGN §6:
// the UDP->TAP direction on the second core). It recvfrom()s datagrams into one reused buffer
// until EAGAIN, then sleeps in poll() on the socket and an eventfd that stop() signals (a recv
// sleeping in the kernel could not be woken, as with the TAP reader). Each datagram goes to a
// SleeveReceiver, which writes the common frames into the TAP itself (synchronous write through
// koffi) and posts the rest to the main thread, decoded.
//
// The main thread's snapshots (links and keys, local MACs) arrive on a MessagePort; the
// generation word in shared memory says a new one waits, so the loop needs no event loop turn.
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { EAGAIN, EINTR, POLLIN, PollSet, errnoName, readFd, recvFromFd, writeFd } from '../tap/libc.js';
import { formatSockaddr } from '../tap/udp-offload.js';
import { ReceiverControl } from './counters.js';
import { SleeveReceiver, type ReceiverNote } from './sleeve-receiver.js';
import type { ReceiverSnapshot } from './plan.js';

/** What ReceiverThread passes in `workerData`. */
export interface ReceiverData {
  readonly udpFd: number;
  readonly tapFd: number;
  readonly tapVnetHdr: boolean;
  /** An eventfd signalled by stop(): readable means look at the stop flag. */
  readonly wakeFd: number;
  readonly control: SharedArrayBuffer;
  readonly port: MessagePort;
}

export interface ReceiverSnapshotMessage {
  readonly generation: number;
  readonly snapshot: ReceiverSnapshot;
}

export type ReceiverMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'note'; readonly note: ReceiverNote }
  /** Receiving failed for good; the Worker exits after this. */
  | { readonly type: 'error'; readonly code: string; readonly message: string };

/** A UDP_GRO read holds at most 64 KB; the rest is room. */
const RECEIVE_BUFFER_BYTES = 65_536 + 1024;
/** The longest sleep without looking at the stop flag, should the eventfd's wake ever be lost. */
const SAFETY_POLL_MS = 5_000;
/** A synchronous write of one packet into the TAP: the tun driver takes a whole frame per write(). */
const tapWriteOk = (tapFd: number) => (packet: Uint8Array): boolean => writeFd(tapFd, packet) >= 0;

function post(message: ReceiverMessage): void {
  parentPort?.postMessage(message);
}

function run(data: ReceiverData): void {
  const control = ReceiverControl.attach(data.control);
  const receiver = new SleeveReceiver({
    control, tapVnetHdr: data.tapVnetHdr, inject: tapWriteOk(data.tapFd), notify: (note) => post({ type: 'note', note }),
  });
  const buffer = new Uint8Array(RECEIVE_BUFFER_BYTES);
  const sockaddr = new Uint8Array(28);
  const addrLength = Buffer.alloc(4);
  const from = (): string => formatSockaddr(sockaddr);
  const pollSet = new PollSet([data.udpFd, data.wakeFd]);
  const wakeCount = new Uint8Array(8);
  let generation = 0;
  post({ type: 'ready' });
  while (!control.stopRequested) {
    if (control.generation !== generation) generation = refresh(data.port, receiver, generation);
    const n = recvFromFd(data.udpFd, buffer, buffer.byteLength, sockaddr, addrLength);
    if (n >= 0) {
      receiver.onDatagram(buffer.subarray(0, n), from);
      continue;
    }
    if (n === -EAGAIN) {
      const ready = pollSet.wait(SAFETY_POLL_MS);
      if (ready < 0 && ready !== -EINTR) return fail(-ready, 'poll() on the sleeve socket failed');
      // Reset the eventfd (a new snapshot, or stop): left readable, every poll() would return at once.
      if (ready > 0 && (pollSet.revents(1) & POLLIN) !== 0) readFd(data.wakeFd, wakeCount);
      continue;
    }
    if (n === -EINTR) continue;
    return fail(-n, 'recvfrom() on the sleeve socket failed');
  }
}

/** Applies the latest snapshot on the port (older ones queued behind it are skipped); returns its generation. */
function refresh(port: MessagePort, receiver: SleeveReceiver, had: number): number {
  let latest: ReceiverSnapshotMessage | undefined;
  for (;;) {
    const m = receiveMessageOnPort(port) as { message: ReceiverSnapshotMessage } | undefined;
    if (m === undefined) break;
    latest = m.message;
  }
  // The generation is bumped after posting, so the message is normally here; if not, look again next time.
  if (latest === undefined) return had;
  try {
    receiver.apply(latest.snapshot);
  } catch (err) {
    receiver.clear();
    post({ type: 'note', note: { type: 'snapshot-error', message: (err as Error).message } });
  }
  return latest.generation;
}

function fail(errno: number, what: string): void {
  const code = errnoName(errno);
  post({ type: 'error', code, message: `${what}: ${code}` });
}

run(workerData as ReceiverData);
