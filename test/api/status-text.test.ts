import t from 'tap';
import { renderConnections, renderPeers, renderRouterSection, renderStatus, field } from '../../src/api/status-text.js';
import type { RouterStatus } from '../../src/mesh/status.js';

const status: RouterStatus = {
  Protocol: 'weft', ProtocolMinVersion: 1, ProtocolMaxVersion: 2, Encryption: false, PeerDiscovery: true,
  Name: 'ce:31:e0:06:45:1a', NickName: 'node-1', Port: 6783,
  Peers: [
    { Name: 'ce:31:e0:06:45:1a', NickName: 'node-1', UID: '1', ShortID: 1, Version: 3, Connections: [
      { Name: '7e:21:4a:70:2f:45', NickName: 'node-2', Address: '10.0.0.12:6783', Outbound: true, Established: true },
      { Name: 'ee:38:33:a7:d9:71', NickName: 'node-3', Address: '10.0.0.13:44122', Outbound: false, Established: false },
    ] },
    { Name: '7e:21:4a:70:2f:45', NickName: 'node-2', UID: '2', ShortID: 2, Version: 2, Connections: [
      { Name: 'ce:31:e0:06:45:1a', NickName: 'node-1', Address: '10.0.0.11:6783', Outbound: false, Established: true },
    ] },
  ],
  UnicastRoutes: [], BroadcastRoutes: [],
  Connections: [
    { Address: '10.0.0.12:6783', Outbound: true, State: 'established', Info: 'fastdp 7e:21:4a:70:2f:45(node-2)', Attrs: { mtu: 1376 } },
    { Address: '10.0.0.14:6783', Outbound: true, State: 'failed', Info: 'connect: no route to host, retry: 2026-11-21T11:45:06.123Z' },
    { Address: '10.0.0.15:6783', Outbound: true, State: 'connecting', Info: '' },
    { Address: '10.0.0.16:6783', Outbound: true, State: 'failed', Info: 'x, retry: never' },
  ],
  TerminationCount: 0, Targets: ['10.0.0.12', '10.0.0.14', '10.0.0.15'], TrustedSubnets: [],
};

t.test('labels are right-aligned to 15 columns', async (t) => {
  t.equal(field('Version', 'x'), '        Version: x');
  t.equal(field('TrustedSubnets', 'none'), ' TrustedSubnets: none');
});

t.test('router section in Weave\'s layout', async (t) => {
  t.same(renderRouterSection(status), [
    '        Service: router',
    '       Protocol: weft 1..2',
    '           Name: ce:31:e0:06:45:1a(node-1)',
    '     Encryption: disabled',
    '  PeerDiscovery: enabled',
    '        Targets: 3',
    '    Connections: 4 (1 established, 2 failed, 1 connecting)',
    '          Peers: 2 (with 2 established, 1 pending connections)',
    ' TrustedSubnets: none',
  ]);
  t.equal(renderStatus('0.1.0', [['a'], ['b']]), '        Version: 0.1.0 (version check update disabled)\n\na\n\nb\n');
});

t.test('connections and peers lines', async (t) => {
  t.equal(renderConnections(status),
    '-> 10.0.0.12:6783        established fastdp 7e:21:4a:70:2f:45(node-2) mtu=1376\n' +
    '-> 10.0.0.14:6783        failed      connect: no route to host, retry: 2026-11-21T11:45:06.123Z \n' +
    '-> 10.0.0.15:6783        connecting   \n' +
    '-> 10.0.0.16:6783        failed      x, retry: never \n');
  t.equal(renderPeers(status),
    'ce:31:e0:06:45:1a(node-1)\n' +
    '   -> 10.0.0.12:6783        7e:21:4a:70:2f:45(node-2)             established\n' +
    '   <- 10.0.0.13:44122       ee:38:33:a7:d9:71(node-3)             pending\n' +
    '7e:21:4a:70:2f:45(node-2)\n' +
    '   <- 10.0.0.11:6783        ce:31:e0:06:45:1a(node-1)             established\n');
});
