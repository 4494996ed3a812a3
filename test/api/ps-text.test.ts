// `weave ps` text: which lines, in which order, with which MAC (pure).
import t from 'tap';
import { renderPs } from '../../src/api/ps-text.js';

const bridge = { mac: '7a:c4:8b:a1:e6:ad', cidr: '10.32.0.1/12' };

t.test('weave:expose first, then addresses by id; CNI MACs win; neighbours fill in; "-" when unknown', async (t) => {
  const text = renderPs({
    bridge,
    attachments: [{ containerId: 'f3c9a1b2d4e5f60718293a4b5c6d7e8f', ifName: 'eth0', mac: '0a:00:00:00:00:01', cidr: '10.32.0.2/12' }],
    allocations: [
      { id: 'weave:expose', cidr: '10.32.0.1/12' },
      { id: 'f3c9a1b2d4e5f60718293a4b5c6d7e8f', cidr: '10.32.0.2/12' },
      { id: 'script-made', cidr: '10.32.0.3/12' },
      { id: 'leaked', cidr: '10.32.0.4/12' },
    ],
    neighbours: new Map([['10.32.0.3', '0a:00:00:00:00:03'], ['10.32.0.2', 'ff:ff:ff:ff:ff:ff']]),
  });
  t.equal(text, [
    'weave:expose 7a:c4:8b:a1:e6:ad 10.32.0.1/12',
    'f3c9a1b2d4e5 0a:00:00:00:00:01 10.32.0.2/12',
    'leaked - 10.32.0.4/12',
    'script-made 0a:00:00:00:00:03 10.32.0.3/12',
    '',
  ].join('\n'));
});

t.test('a container with two addresses is one line; no bridge, no expose line; the bridge without an address yet', async (t) => {
  t.equal(renderPs({
    attachments: [
      { containerId: 'c1', ifName: 'eth0', mac: '0a:00:00:00:00:01', cidr: '10.32.0.2/12' },
      { containerId: 'c1', ifName: 'eth1', mac: '0a:00:00:00:00:01', cidr: '10.32.0.9/12' },
    ],
    allocations: [],
    neighbours: new Map(),
  }), 'c1 0a:00:00:00:00:01 10.32.0.2/12 10.32.0.9/12\n');
  t.equal(renderPs({ bridge: { mac: bridge.mac, cidr: undefined }, attachments: [], allocations: [], neighbours: new Map() }), 'weave:expose 7a:c4:8b:a1:e6:ad\n');
});
