// Passwords and hostile input against real daemons.
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Weaver, waitFor } from '../lib/weaver.js';
import { encodePreamble, PROTOCOL_MIN_VERSION, PROTOCOL_MAX_VERSION } from '../../src/mesh/preamble.js';
import { encodeFrame } from '../../src/mesh/frame-reader.js';

const ip = (n: number): string => `127.0.11.${n}`;
const FAST = ['--heartbeat-interval', '1', '--gossip-interval', '1'];

t.test('same password: encrypted connection, shown in status', async (t) => {
  const a = await Weaver.start(t, { ip: ip(1), nickname: 'a', args: FAST, env: { WEAVE_PASSWORD: 'correct horse' } });
  const b = await Weaver.start(t, { ip: ip(2), nickname: 'b', args: [...FAST, '--password', 'correct horse'], peers: [a.address] });
  const conns = await waitFor('encrypted connection', async () => {
    const s = (await b.cli(['status', 'connections'])).stdout;
    return /established encrypted/.test(s) ? s : undefined;
  });
  t.match(conns, new RegExp(`^-> ${ip(1)}:6783 +established encrypted +none +[0-9a-f:]{17}\\(a\\)`, 'm'));
  t.match((await a.cli(['status'])).stdout, /\n {5}Encryption: enabled\n/);
});

t.test('different passwords: refused with a clear log line on both sides', async (t) => {
  const a = await Weaver.start(t, { ip: ip(11), nickname: 'a', args: [...FAST, '--password', 'one'] });
  const b = await Weaver.start(t, { ip: ip(12), nickname: 'b', args: [...FAST, '--password', 'two'], peers: [a.address] });
  await b.waitForLog((l) => /different password/.test(l.msg));
  await a.waitForLog((l) => /different password/.test(l.msg));
  t.equal((await a.report()).Router.Peers.length, 1, 'no connection formed');
  t.match((await b.cli(['status', 'connections'])).stdout, /failed +cannot decrypt the peer's Hello: the peer uses a different password, retry: /);
});

t.test('password on one side only: refused, and the message says which side lacks it', async (t) => {
  const a = await Weaver.start(t, { ip: ip(21), nickname: 'a', args: [...FAST, '--password', 'x'] });
  const b = await Weaver.start(t, { ip: ip(22), nickname: 'b', args: FAST, peers: [a.address] });
  await a.waitForLog((l) => /password specified, but peer requested an unencrypted connection/.test(l.msg));
  await b.waitForLog((l) => /peer requested an encrypted connection, but no password was specified/.test(l.msg));
  t.equal((await b.report()).Router.Peers.length, 1);
});

/** Opens a raw TCP connection to the daemon, sends `bytes`, and resolves when the daemon closes it. */
function sendRaw(address: string, bytes: Uint8Array, timeoutMs = 15_000): Promise<'closed' | 'open'> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve) => {
    const s: Socket = connect({ host, port: Number(port) }, () => s.write(bytes));
    s.on('error', () => undefined);
    s.resume(); // read (and drop) what the daemon sends, or its close would go unnoticed
    const timer = setTimeout(() => {
      s.destroy();
      resolve('open');
    }, timeoutMs);
    s.on('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
  });
}

t.test('garbage from a "peer" closes that connection with a log line; the daemon carries on', async (t) => {
  const a = await Weaver.start(t, { ip: ip(31), nickname: 'a', args: ['--heartbeat-interval', '1'] });
  const b = await Weaver.start(t, { ip: ip(32), nickname: 'b', args: FAST, peers: [a.address] });
  await waitFor('a and b connected', async () => ((await a.report()).Router.Peers.length === 2 ? true : undefined));
  const preamble = encodePreamble({ minVersion: PROTOCOL_MIN_VERSION, maxVersion: PROTOCOL_MAX_VERSION });
  const fourGiB = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  // Field 15 of Envelope does not exist: a well-formed frame of an unknown type.
  const unknownType = encodeFrame(Uint8Array.from([0x7a, 0x00]));
  const cases: [string, Uint8Array, RegExp][] = [
    ['random bytes', randomBytes(4096), /not a weft peer/],
    ['a frame announcing 4 GiB', Buffer.concat([preamble, fourGiB]), /announced a frame of 4294967295 bytes, more than the limit/],
    ['a valid frame of an unknown type', Buffer.concat([preamble, unknownType]), /unknown type/],
    ['an incompatible version range', Uint8Array.from([...Buffer.from('weft'), 7, 9, 0]), /remote version range \[7,9\] is incompatible with ours \[1,1\]/],
  ];
  for (const [what, bytes, logged] of cases) {
    const before = a.logs.length;
    t.equal(await sendRaw(a.address, bytes), 'closed', `${what}: connection closed`);
    await a.waitForLog((l) => a.logs.indexOf(l) >= before && logged.test(String(l.msg)), 5000);
    t.pass(`${what}: logged`);
  }
  // A truncated frame: the daemon waits for the rest, then the handshake deadline closes it.
  t.equal(await sendRaw(a.address, Buffer.concat([preamble, Buffer.from([0, 0, 0, 50, 1, 2, 3])]), 20_000), 'closed', 'truncated frame closed by deadline');
  t.ok(a.running, 'daemon still running');
  t.equal((await a.get('/status')).status, 200, 'status still answers');
  t.equal((await a.report()).Router.Peers.length, 2, 'the real peer is still connected');
});
