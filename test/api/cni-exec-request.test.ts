// The relay's pure parts: what counts as a relayed request or a pending release (both forms),
// what a replayed DEL's outcome means for its record, and the stderr header's encoding.
import t from 'tap';
import { execRequestOf, pendingReleaseOf, percentEncode, replayVerdict } from '../../src/api/cni-exec-request.js';

t.test('execRequestOf: env of strings and stdin text, nothing else', async (t) => {
  t.same(execRequestOf({ env: { CNI_COMMAND: 'ADD' }, stdin: '{}' }), { env: { CNI_COMMAND: 'ADD' }, stdin: '{}' });
  t.same(execRequestOf({ env: {}, stdin: '' }), { env: {}, stdin: '' });
  for (const bad of [null, 'x', [], {}, { env: { A: 1 }, stdin: '' }, { env: [], stdin: '' }, { env: {}, stdin: 5 }, { env: null, stdin: '' }]) {
    t.equal(execRequestOf(bad), undefined, JSON.stringify(bad));
  }
});

t.test('pendingReleaseOf: the relayed DEL (always a DEL), the old CniDelRequest, or nothing', async (t) => {
  t.same(pendingReleaseOf({ env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1' }, stdin: '{}' }),
    { kind: 'relayed', req: { env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1' }, stdin: '{}' } }, 'a record is replayed as DEL whatever it says');
  t.same(pendingReleaseOf({ containerId: 'c1', ifName: 'eth0', netns: '/run/netns/x' }), { kind: 'del', req: { containerId: 'c1', ifName: 'eth0' } });
  t.equal(pendingReleaseOf({ containerId: 'c1' }), undefined);
  t.equal(pendingReleaseOf(42), undefined);
});

t.test('replayVerdict: done on success, retry on try-later, refused otherwise', async (t) => {
  t.equal(replayVerdict({ stdout: '', exitCode: 0 }), 'done');
  t.equal(replayVerdict({ stdout: '{"cniVersion":"1.0.0","code":11,"msg":"later"}\n', exitCode: 1 }), 'retry');
  t.equal(replayVerdict({ stdout: '{"cniVersion":"1.0.0","code":4,"msg":"bad mtu"}\n', exitCode: 1 }), 'refused');
  t.equal(replayVerdict({ stdout: 'garbage', exitCode: 1 }), 'refused');
});

t.test('percentEncode: printable ASCII passes, the rest and % as %XX of the UTF-8', async (t) => {
  t.equal(percentEncode('weave-net: plain (ok) ~'), 'weave-net: plain (ok) ~');
  t.equal(percentEncode('100%\nnext\tcafé'), '100%25%0Anext%09caf%C3%A9');
  t.equal(decodeURIComponent(percentEncode('a%b\r\n€ ✓')), 'a%b\r\n€ ✓', 'decodes back to the text');
});
