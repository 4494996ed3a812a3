// The local cluster library in one import: nodes and pods as network namespaces on one machine,
// for the network tests, the benchmarks and `npm run demo`. See cluster.ts for the layout.
export { LocalCluster, ClusterNode, Pod, DEFAULT_MTU, DEFAULT_UNDERLAY_SUBNET } from './cluster.js';
export type { LocalClusterOptions, PodOptions, BridgeOptions } from './cluster.js';
export { NetnsHandle, PingError } from './netns-handle.js';
export type { PingOptions, ProcessKeeper } from './netns-handle.js';
export { NsProcess, DEFAULT_STOP_GRACE_MS } from './ns-process.js';
export type { SpawnOptions, Exit } from './ns-process.js';
export { exec, run, ip, ipBatch, inNetns, CommandError, DEFAULT_EXEC_TIMEOUT_MS } from './exec.js';
export type { Netns, ExecOptions, ExecResult } from './exec.js';
export { sweep, listNetns, addNetns, deleteNetns, netnsPids, killNetnsProcesses, netnsPath, NETNS_DIR } from './netns.js';
export { ClusterNames, MAX_IFNAME_LENGTH, ownedByPrefix, validatePrefix, validatePodName, validateIfName } from './names.js';
export { parsePing, repliesBySource } from './ping.js';
export type { PingStats, PingReply, PingRtt } from './ping.js';
export { parseLinks, parseAddrs } from './iproute-json.js';
export type { LinkInfo, LinkAddresses, IfAddress } from './iproute-json.js';
export { startTcpSink, tcpSend, tcpTransfer } from './tcp.js';
export type { TcpSink, TcpDigest, TcpTransferResult, NamespaceRunner } from './tcp.js';
