// The one stderr line an error answer becomes (pure).
import t from 'tap';
import { errorLine } from '../../src/cli/http-client.js';

t.test('the daemon\'s one-line message as is; empty, multi-line and long bodies summarised', async (t) => {
  t.equal(errorLine({ status: 409, body: 'peer x is reachable; rmpeer is only for peers that are dead\n' }), 'peer x is reachable; rmpeer is only for peers that are dead');
  t.equal(errorLine({ status: 500, body: '' }), 'the daemon answered HTTP 500 with no message');
  t.equal(errorLine({ status: 500, body: ' \n' }), 'the daemon answered HTTP 500 with no message');
  t.equal(errorLine({ status: 502, body: '<html>\n<body>x</body>\n</html>\n' }), 'the daemon answered HTTP 502: <html> ...');
  const long = 'x'.repeat(400);
  t.equal(errorLine({ status: 500, body: long }), `the daemon answered HTTP 500: ${'x'.repeat(200)} ...`);
});
