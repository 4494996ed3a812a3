// `node udp-send.js HOST PORT HEX...`: sends each hex string as one UDP datagram, for tests that
// replay captured datagrams from inside a network namespace.
import { createSocket } from 'node:dgram';

const [host, port, ...payloads] = process.argv.slice(2) as [string, string, ...string[]];
const socket = createSocket('udp4');
let left = payloads.length;
for (const hex of payloads) {
  socket.send(Buffer.from(hex, 'hex'), Number(port), host, () => {
    if (--left === 0) socket.close();
  });
}
