// The main thread's handle on the sleeve receiver Worker (receiver.worker.ts): starts it on the
// sleeve socket's and the TAP's fds, posts it snapshots, reads its counters, stops it. The fds stay
// the caller's: they must stay open until stop() has resolved.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { closeFd, createEventFd, signalEventFd } from '../tap/libc.js';
import { ReceiverControl, type ReceiverCounterValues } from './counters.js';
import { receiverSignature, type ReceiverSnapshot } from './plan.js';
import type { ReceiverNote } from './sleeve-receiver.js';
import type { ReceiverData, ReceiverMessage } from './receiver.worker.js';
import type { ReceiverSnapshotMessage } from './socket-receiver.js';

const WORKER_URL = new URL('./receiver.worker.js', import.meta.url);
/** How long stop() waits for the Worker to return before terminating its thread. */
const EXIT_GRACE_MS = 2_000;

export interface ReceiverThreadOptions {
  readonly udpFd: number;
  readonly tapFd: number;
  readonly tapVnetHdr: boolean;
  /** Decoded messages and notes, in the order the Worker posted them. */
  readonly onNote: (note: ReceiverNote) => void;
  /** Receiving failed for good (the Worker has ended). */
  readonly onError: (err: Error) => void;
}

export class ReceiverThread {
  private stopping: Promise<void> | undefined;
  private signature = '';

  private constructor(
    private readonly worker: Worker,
    private readonly control: ReceiverControl,
    private readonly port: MessagePort,
    private readonly wakeFd: number,
    private readonly exited: Promise<void>,
  ) {}

  /** Starts the Worker; resolves once it receives. Rejects (leaving nothing open) if it cannot start. */
  static async start(options: ReceiverThreadOptions): Promise<ReceiverThread> {
    const control = ReceiverControl.create();
    const channel = new MessageChannel();
    const wakeFd = createEventFd();
    const data: ReceiverData = {
      udpFd: options.udpFd, tapFd: options.tapFd, tapVnetHdr: options.tapVnetHdr, wakeFd, control: control.buffer, port: channel.port2,
    };
    // execArgv []: as the TAP reader, it needs none of the process's flags or loader hooks.
    const worker = new Worker(WORKER_URL, { workerData: data, name: 'sleeve-receiver', execArgv: [], transferList: [channel.port2] });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        const onMessage = (m: ReceiverMessage): void => {
          if (m.type === 'ready') done(resolve);
          else if (m.type === 'error') done(() => reject(new Error(`sleeve receiver: ${m.message}`)));
        };
        const onError = (err: Error): void => done(() => reject(new Error(`sleeve receiver failed to start: ${err.message}`)));
        const onExit = (code: number): void => done(() => reject(new Error(`sleeve receiver exited (${code}) before it was ready`)));
        const done = (then: () => void): void => {
          worker.off('message', onMessage).off('error', onError).off('exit', onExit);
          then();
        };
        worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      });
    } catch (err) {
      await worker.terminate();
      channel.port1.close();
      closeFd(wakeFd);
      throw err;
    }
    let stopped = false;
    worker.on('message', (m: ReceiverMessage) => {
      if (m.type === 'note') options.onNote(m.note);
      else if (m.type === 'error' && !stopped) options.onError(new Error(`sleeve receiver: ${m.message}`));
    });
    worker.on('error', (err) => options.onError(new Error(`sleeve receiver thread failed: ${err.message}`)));
    const thread = new ReceiverThread(worker, control, channel.port1, wakeFd, exited);
    void thread.exited.then(() => (stopped = true));
    return thread;
  }

  /** What the Worker may do from now on; posted only if it differs from the last. */
  update(snapshot: ReceiverSnapshot): void {
    if (this.stopping !== undefined) return;
    const signature = receiverSignature(snapshot);
    if (signature === this.signature) return;
    this.signature = signature;
    const message: ReceiverSnapshotMessage = { generation: this.control.generation + 1, snapshot };
    this.port.postMessage(message);
    this.control.bumpGeneration();
    // Wake it: a snapshot (a new link's keys) matters before the next datagram does.
    signalEventFd(this.wakeFd);
  }

  counters(): ReceiverCounterValues {
    return this.control.read();
  }

  /** Stops the Worker (waking it at once); the fds it used may be closed once this resolves. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.control.requestStop();
    signalEventFd(this.wakeFd);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), EXIT_GRACE_MS)));
    if ((await Promise.race([this.exited, late])) === 'late') await this.worker.terminate();
    clearTimeout(timer);
    closeFd(this.wakeFd);
    this.port.close();
  }
}
