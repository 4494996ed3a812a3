import t from 'tap';
import { weft } from '../src/proto.js';
import { parsePeerName, peerNameFromNumber, peerNameToNumber } from '../src/net/peer-name.js';

t.test('protobuf envelope round trip', async (t) => {
  const bytes = weft.Envelope.encode({ hello: { name: 0x0211_2233_4455, nickname: 'n1' } }).finish();
  const back = weft.Envelope.decode(bytes);
  t.equal(back.hello?.nickname, 'n1');
  t.equal(peerNameFromNumber(back.hello?.name ?? -1), '02:11:22:33:44:55');
});

t.test('peer names parse short forms', async (t) => {
  t.equal(parsePeerName('::1'), '00:00:00:00:00:01');
  t.equal(peerNameToNumber(parsePeerName('ff:ff:ff:ff:ff:ff')), 2 ** 48 - 1);
  t.throws(() => parsePeerName('zz:1'));
});
