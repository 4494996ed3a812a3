// What the Worker's send path counts (see tap/worker-counters.ts for how it is shared).
import { WorkerCounters, type WorkerCounterValues } from '../tap/worker-counters.js';

/** Counters as the main thread's stats name them; drops by the reasons its drops map uses. */
export const SENDER_STATS = ['captured', 'capturedBytes', 'sent', 'sentBytes', 'sendErrors'] as const;
export type SenderStat = (typeof SENDER_STATS)[number];
export const SENDER_DROPS = ['send-buffer-full', 'cannot-pack'] as const;
export type SenderDrop = (typeof SENDER_DROPS)[number];

export type SenderCounterValues = WorkerCounterValues<SenderStat, SenderDrop>;

/** The send path's counters: SenderControl.create() on the main thread, .attach() in the Worker. */
export const SenderControl = WorkerCounters.kind(SENDER_STATS, SENDER_DROPS);
export type SenderControl = WorkerCounters<SenderStat, SenderDrop>;

export const CAPTURED = SENDER_STATS.indexOf('captured');
export const CAPTURED_BYTES = SENDER_STATS.indexOf('capturedBytes');
export const SENT = SENDER_STATS.indexOf('sent');
export const SENT_BYTES = SENDER_STATS.indexOf('sentBytes');
