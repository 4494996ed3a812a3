// The forwarder in one import: the per-frame decision (forwarder.ts), the MAC table it learns
// into (mac-table.ts), MAC values (mac.ts) and the events it reports (events.ts).
export { Forwarder } from './forwarder.js';
export type { Decision, DropReason, ForwarderOptions, ForwardingRoutes, OverlayHeader, Send } from './forwarder.js';
export { MacTable, DEFAULT_MAC_MAX_AGE_MS, DEFAULT_MAC_MAX_ENTRIES, DEFAULT_LOCAL_TAKEOVER_MS } from './mac-table.js';
export type { MacTableOptions, LocalLearning, RemoteLearning, MacEntry } from './mac-table.js';
export { BROADCAST_MAC, formatMac, frameMacs, isBridgeReservedMac, isGroupMac, macFromBytes, macFromNumber, parseMac } from './mac.js';
export type { FrameMacs, Mac } from './mac.js';
export { describeForwarderEvent } from './events.js';
export type { ForwarderEvent } from './events.js';
