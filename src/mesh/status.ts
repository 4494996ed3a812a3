// The mesh's published state: an immutable snapshot, rebuilt by the router on every change, that
// the API renders without calling into the router (status never blocks; DESIGN §3). Field names
// follow the `Router` part of Weave's `weave report` JSON, so scripts written for it keep working.

export interface PeerConnectionReport {
  readonly Name: string;
  readonly NickName: string;
  readonly Address: string;
  readonly Outbound: boolean;
  readonly Established: boolean;
}

export interface PeerReport {
  readonly Name: string;
  readonly NickName: string;
  readonly UID: string;
  readonly ShortID: number;
  readonly Version: number;
  readonly Connections: readonly PeerConnectionReport[];
}

/** States of a line in `weave status connections`, in the order the summary lists them. */
export const CONNECTION_STATES = ['established', 'pending', 'retrying', 'failed', 'connecting'] as const;
export type ConnectionState = (typeof CONNECTION_STATES)[number] | 'waiting';

export interface ConnectionReport {
  readonly Address: string;
  readonly Outbound: boolean;
  readonly State: ConnectionState;
  /** Live connections: overlay and peer; targets: the last error and the next retry. */
  readonly Info: string;
  readonly Attrs?: Readonly<Record<string, string | number | boolean>>;
}

export interface RouterStatus {
  readonly Protocol: string;
  readonly ProtocolMinVersion: number;
  readonly ProtocolMaxVersion: number;
  readonly Encryption: boolean;
  readonly PeerDiscovery: boolean;
  readonly Name: string;
  readonly NickName: string;
  readonly Port: number;
  readonly Peers: readonly PeerReport[];
  readonly UnicastRoutes: readonly { readonly Dest: string; readonly Via: string }[];
  readonly BroadcastRoutes: readonly { readonly Source: string; readonly Via: readonly string[] }[];
  readonly Connections: readonly ConnectionReport[];
  readonly TerminationCount: number;
  readonly Targets: readonly string[];
  readonly TrustedSubnets: readonly string[];
}
