import t from 'tap';
import { weft } from '../src/proto.js';

t.test('64-bit fields decode as plain numbers, also when absent', async (t) => {
  const g = weft.Gossip.decode(weft.Gossip.encode({ channel: 'x', src: 2 ** 47 + 5 }).finish());
  t.equal(g.src, 2 ** 47 + 5);
  t.equal(typeof g.dst, 'number', 'absent field is a number');
  t.equal(g.dst, 0);
});
