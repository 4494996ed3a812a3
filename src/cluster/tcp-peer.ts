// The two ends of a TCP transfer check, run as a process inside a namespace by tcp.ts:
//   node tcp-peer.js sink <host> <port>          accept one connection, read to EOF, answer with
//                                                 what arrived ({"bytes","sha256"}), exit
//   node tcp-peer.js send <host> <port> <bytes>  send that many random bytes, print what was sent,
//                                                 what the sink answered and how long it took
// Each prints one JSON object per line on stdout. Node rather than iperf3 so that it runs wherever
// the tests run; the benchmarks use iperf3.
import { createServer, connect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

const CHUNK = 256 * 1024;

function print(o: unknown): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

function fail(message: string): never {
  process.stderr.write(`tcp-peer: ${message}\n`);
  process.exit(2);
}

function sink(host: string, port: number): void {
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    server.close(); // one transfer per sink
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    socket.on('end', () => {
      const result = { bytes, sha256: hash.digest('hex') };
      print({ received: result });
      socket.end(`${JSON.stringify(result)}\n`);
    });
    socket.on('error', (err) => fail(`sink connection: ${err.message}`));
  });
  server.on('error', (err) => fail(`sink: ${err.message}`));
  server.listen(port, host, () => {
    const address = server.address();
    print({ listening: typeof address === 'object' && address !== null ? address.port : port });
  });
}

function send(host: string, port: number, total: number): void {
  const block = randomBytes(CHUNK);
  const hash = createHash('sha256');
  const started = process.hrtime.bigint();
  let reply = '';
  let sent = 0;
  const socket = connect({ host, port, allowHalfOpen: true });
  const pump = (): void => {
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent);
      const piece = n === CHUNK ? block : block.subarray(0, n);
      hash.update(piece);
      sent += n;
      if (!socket.write(piece)) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  socket.on('connect', pump);
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => (reply += text));
  socket.on('end', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    let answered: unknown;
    try {
      answered = JSON.parse(reply);
    } catch {
      fail(`sink answered ${JSON.stringify(reply)}`);
    }
    print({ sent: { bytes: sent, sha256: hash.digest('hex') }, received: answered, ms });
  });
  socket.on('error', (err) => fail(`send: ${err.message}`));
}

const [mode, host, portText, bytesText] = process.argv.slice(2);
const port = Number(portText);
if (host === undefined || !Number.isInteger(port) || port < 0 || port > 65535) fail('usage: sink|send <host> <port> [bytes]');
if (mode === 'sink') sink(host, port);
else if (mode === 'send' && Number.isSafeInteger(Number(bytesText)) && Number(bytesText) >= 0) send(host, port, Number(bytesText));
else fail('usage: sink <host> <port> | send <host> <port> <bytes>');
