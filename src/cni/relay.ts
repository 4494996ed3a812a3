// The daemon's half of the executable's raw relay (POST /cni/exec, see cni-protocol.ts): the
// whole plugin (plugin.ts) runs here, in the daemon, on the environment and stdin the executable
// forwarded. Its calls to the daemon go straight to the routes' dispatch, in process (no HTTP
// round trip), so a relayed ADD takes exactly the path a request over the socket takes.
import type { CniExecRequest, CniExecOutcome, CniRelay } from '../api/cni-protocol.js';
import type { CniRouteAnswer } from '../api/cni-server.js';
import { netnsState } from './netns-state.js';
import { runPlugin, type PluginIo } from './plugin.js';

/** The routes of cni-server.ts without HTTP (dispatchCni, bound to the daemon's service). */
export type CniDispatch = (method: 'GET' | 'POST', path: string, body: unknown) => Promise<CniRouteAnswer>;

export function cniRelay(dispatch: CniDispatch): CniRelay {
  const io = (req: CniExecRequest): PluginIo => ({
    readStdin: () => Promise.resolve(req.stdin),
    call: async (method, path, body) => {
      const answer = await dispatch(method, path, body);
      return { status: answer.status, body: JSON.stringify(answer.body) };
    },
    netnsState,
  });
  return (req: CniExecRequest): Promise<CniExecOutcome> => runPlugin(req.env, io(req));
}
