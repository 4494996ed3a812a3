// The fast path's heartbeat frames: layout, round trip, what is not a heartbeat.
import t from 'tap';
import { decodeHeartbeat, encodeHeartbeat, heartbeatMac, HEARTBEAT_ETHERTYPE, type Heartbeat } from '../../../src/dataplane/fastdp/heartbeat-frame.js';
import { formatMac, isGroupMac } from '../../../src/dataplane/forwarder/mac.js';
import type { PeerName } from '../../../src/net/peer-name.js';

const A = '02:00:00:00:3c:01' as PeerName;
const B = '02:00:00:00:3c:02' as PeerName;

t.test('heartbeat MACs: one per peer, stable, unicast and locally administered, not the name', async (t) => {
  const a = heartbeatMac(A);
  t.equal(heartbeatMac(A), a);
  t.not(heartbeatMac(B), a);
  t.notOk(isGroupMac(a));
  t.equal(Math.floor(a / 2 ** 40) & 0x02, 0x02, 'locally administered');
  t.not(formatMac(a), A);
});

t.test('round trip, full-size and small, every kind', async (t) => {
  for (const kind of ['request', 'answer', 'announce'] as const) {
    for (const [full, payload] of [[true, 1376], [false, 46]] as const) {
      const hb: Heartbeat = { dst: heartbeatMac(B), src: heartbeatMac(A), kind, full, connectionUid: 0xfedcba9876543210n, seq: 0xfffffffe };
      const frame = encodeHeartbeat(hb, payload);
      t.equal(frame.length, 14 + payload, 'Ethernet header plus the payload asked for');
      t.equal(frame.readUInt16BE(12), HEARTBEAT_ETHERTYPE);
      t.same(decodeHeartbeat(frame), hb);
      // Past a 10-byte virtio header, as the TAP hands it over.
      t.same(decodeHeartbeat(Buffer.concat([Buffer.alloc(10), frame]), 10), hb);
    }
  }
});

t.test('not heartbeats: other ethertypes, wrong magic, unknown kind, too short', async (t) => {
  const frame = encodeHeartbeat({ dst: heartbeatMac(B), src: heartbeatMac(A), kind: 'request', full: true, connectionUid: 1n, seq: 1 }, 100);
  const altered = (at: number, value: number): Buffer => {
    const b = Buffer.from(frame);
    b[at] = value;
    return b;
  };
  t.equal(decodeHeartbeat(altered(13, 0x00)), undefined, 'ethertype');
  t.equal(decodeHeartbeat(altered(14, 0x00)), undefined, 'magic');
  t.equal(decodeHeartbeat(altered(18, 9)), undefined, 'kind');
  t.equal(decodeHeartbeat(altered(19, 7)), undefined, 'size class');
  t.equal(decodeHeartbeat(frame.subarray(0, 30)), undefined, 'truncated');
  t.throws(() => encodeHeartbeat({ dst: heartbeatMac(B), src: heartbeatMac(A), kind: 'request', full: true, connectionUid: 1n, seq: 1 }, 10), /at least 20/);
});
