// The bridge's MAC and neighbour table from `ip -j` output (pure).
import t from 'tap';
import { parseBridgeView } from '../../../src/dataplane/host/bridge-view.js';

const MARK = '@@weft-bridge-view@@';

t.test('MAC and neighbours with a known MAC; incomplete and failed entries left out', async (t) => {
  const link = '[{"ifindex":5,"ifname":"weave","flags":["BROADCAST","UP"],"mtu":1376,"address":"8a:90:08:dc:8b:76"}]';
  const neigh = JSON.stringify([
    { dst: '10.32.0.2', dev: 'weave', lladdr: '02:2d:39:f7:bd:b1', state: ['REACHABLE'] },
    { dst: '10.32.0.3', dev: 'weave', lladdr: '02:2d:39:f7:bd:b2', state: ['STALE'] },
    { dst: '10.32.0.4', dev: 'weave', state: ['INCOMPLETE'] },
    { dst: '10.32.0.5', dev: 'weave', lladdr: '02:2d:39:f7:bd:b5', state: ['FAILED'] },
  ]);
  const v = parseBridgeView(`${link}\n${MARK}\n${neigh}\n`);
  t.equal(v.mac, '8a:90:08:dc:8b:76');
  t.same([...v.neighbours], [['10.32.0.2', '02:2d:39:f7:bd:b1'], ['10.32.0.3', '02:2d:39:f7:bd:b2']]);
});

t.test('no bridge, empty or broken output: an empty view, no throw', async (t) => {
  for (const out of ['', `${MARK}\n`, `not json\n${MARK}\n[{`, `[]\n${MARK}\n[]`]) {
    const v = parseBridgeView(out);
    t.equal(v.mac, undefined);
    t.equal(v.neighbours.size, 0);
  }
});
