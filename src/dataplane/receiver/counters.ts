// What the receive path in the TAP reader Worker counts (see tap/worker-counters.ts for how it is
// shared); drop reasons are named as the main thread's drops map names them.
import { WorkerCounters, type WorkerCounterValues } from '../tap/worker-counters.js';
import type { FormatErrorReason } from '../sleeve/header.js';
import type { InboundDrop } from '../sleeve/inbound.js';

export const RECEIVER_STATS = ['received', 'receivedBytes', 'injected', 'injectedBytes', 'malformed', 'unknownConnection', 'ecnMarked'] as const;
export type ReceiverStat = (typeof RECEIVER_STATS)[number];

const INBOUND_DROPS = [
  'foreign-connection', 'direction', 'encryption-mismatch', 'replay', 'duplicate', 'inconsistent', 'chunk-length', 'too-large',
  'authentication', 'short-frame',
] as const satisfies readonly InboundDrop[];
const FORMAT_ERRORS = [
  'short', 'magic', 'version', 'kind', 'flags', 'sequence', 'chunk-count', 'chunk-index', 'chunk-length',
] as const satisfies readonly FormatErrorReason[];

/** Drop reasons, named as the main thread's drops map names them. */
export const RECEIVER_DROPS: readonly string[] = [
  'unknown-connection', 'tap-write', 'receive-error', 'queue-delay', 'other', ...INBOUND_DROPS, ...FORMAT_ERRORS.map((r) => `malformed-${r}`),
];

export type ReceiverCounterValues = WorkerCounterValues<ReceiverStat, string>;

/** The receive path's counters: ReceiverControl.create() on the main thread, .attach() in the Worker. */
export const ReceiverControl = WorkerCounters.kind<ReceiverStat, string>(RECEIVER_STATS, RECEIVER_DROPS);
export type ReceiverControl = WorkerCounters<ReceiverStat, string>;
