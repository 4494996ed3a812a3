// A UDP echo that answers with the source address it saw: how a test tells whether traffic was
// masqueraded on its way, without a packet capture. Run inside a namespace:
//   node udp-echo.js serve <host>              prints {"listening":port}, answers every datagram
//                                              with {"from":"<source address>"}
//   node udp-echo.js ask <host> <port> <ms>    sends one datagram (again every 100 ms until an
//                                              answer), prints the answer; exits 2 on timeout
import { createSocket } from 'node:dgram';

const [mode, host = '', portText = '0', timeoutText = '2000'] = process.argv.slice(2);

if (mode === 'serve') {
  const socket = createSocket('udp4');
  socket.on('message', (_msg, rinfo) => socket.send(JSON.stringify({ from: rinfo.address }), rinfo.port, rinfo.address));
  socket.bind(0, host, () => process.stdout.write(`${JSON.stringify({ listening: socket.address().port })}\n`));
} else if (mode === 'ask') {
  const socket = createSocket('udp4');
  const send = (): void => socket.send('who am i', Number(portText), host);
  socket.on('message', (msg) => {
    process.stdout.write(`${msg.toString()}\n`);
    process.exit(0);
  });
  socket.on('error', () => undefined); // e.g. no route yet: the retries and the timeout decide
  send();
  setInterval(send, 100);
  setTimeout(() => process.exit(2), Number(timeoutText));
} else {
  process.stderr.write('usage: udp-echo.js serve <host> | ask <host> <port> <ms>\n');
  process.exit(64);
}
