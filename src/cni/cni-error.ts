// A CNI error: what the plugin prints on stdout (and exits non-zero) when a command fails. The
// code tells the runtime what kind of failure it is (spec §"Error"); the message is for a person
// reading kubelet's or podman's log, so it says what was wrong and, where it can, what to do.
import { CniCode, type CniErrorBody } from '../api/cni-protocol.js';

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
  ) {
    super(msg);
    this.name = 'CniError';
  }

  get body(): CniErrorBody {
    return this.details === undefined ? { code: this.code, msg: this.message } : { code: this.code, msg: this.message, details: this.details };
  }
}

export const badConfig = (msg: string, details?: string): CniError => new CniError(CniCode.invalidNetworkConfig, msg, details);
export const badEnv = (msg: string, details?: string): CniError => new CniError(CniCode.invalidEnvironment, msg, details);

/** The error JSON for `cniVersion` (the config's, when it had one weave-net knows). */
export function encodeError(cniVersion: string, error: CniErrorBody): string {
  return `${JSON.stringify({ cniVersion, code: error.code, msg: error.msg, ...(error.details ? { details: error.details } : {}) })}\n`;
}
