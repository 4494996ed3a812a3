// The node's host plumbing in one import: the bridge `weave` with its TAP port (bridge.ts,
// planned in bridge-plan.ts), weft's iptables rules (iptables.ts, iptables-rules.ts), and the
// Runner through which both run their commands (runner.ts).
export { HostBridge } from './bridge.js';
export type { BridgeRepair } from './bridge.js';
export {
  DEFAULT_BRIDGE, DEFAULT_OVERLAY_MTU, DEFAULT_PORT, FALLBACK_PORT_QDISC, PORT_QDISC, planBridge, parseBridgeProbe, resolveBridgeConfig,
} from './bridge-plan.js';
export type { BridgeConfig, BridgePlan, Fix, HostAction, HostState, QdiscChoice, ResolvedBridgeConfig } from './bridge-plan.js';
export { HostIptables, detectIptablesBackend, parseIptablesVersion } from './iptables.js';
export type { IptablesBackend, IptablesMode } from './iptables.js';
export { CANARY_CHAIN, FORWARD_CHAIN, NAT_CHAIN, ownChains } from './iptables-rules.js';
export type { IptablesConfig } from './iptables-rules.js';
export { DEFAULT_COMMAND_TIMEOUT_MS, HostCommandError, localRunner, runChecked } from './runner.js';
export type { RunOptions, RunResult, Runner } from './runner.js';
