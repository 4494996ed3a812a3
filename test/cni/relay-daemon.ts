// The daemon's CNI server with its relay, in the test process, for the executable's tests: the
// real createCniServer, cniRelay and dispatchCni over a CniService whose IPAM has no space yet and
// whose bridge has no address (so an ADD that reaches the service is told to try again later, as
// by a daemon that has just started). Errors the plugin logic decides (env, config, netns) come
// back exactly as a running daemon gives them, without a cluster.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { CniService } from '../../src/api/cni-service.js';
import { createCniServer, dispatchCni, listenUnix } from '../../src/api/cni-server.js';
import { cniRelay, type CniDispatch } from '../../src/cni/relay.js';
import { PodLinks } from '../../src/dataplane/host/pod-link.js';
import { localRunner } from '../../src/dataplane/host/runner.js';
import { silentLogger } from '../../src/log/logger.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Serves the CNI socket at `socket`; `dispatch` replaces the service's routes when given. */
export async function startRelayDaemon(t: Teardown, socket: string, dispatch?: CniDispatch): Promise<Server> {
  const state = mkdtempSync(join(tmpdir(), 'weft-relay-daemon-'));
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const service = await CniService.open({
    ipam: {
      allocate: () => Promise.resolve({ ok: false, status: 503, error: 'awaiting consensus' }),
      release: () => Promise.resolve({ ok: true, value: undefined }),
      lookup: () => undefined,
      status: () => 'awaiting consensus',
    },
    links: new PodLinks(localRunner()), gateway: () => undefined, bridge: 'weave', mtu: 1376,
    statePath: join(state, 'cni.json'), socketPath: socket, log: silentLogger,
  });
  const server = createCniServer(service, silentLogger, cniRelay(dispatch ?? ((m, p, b) => dispatchCni(service, silentLogger, m, p, b))));
  await listenUnix(server, socket);
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return server;
}
