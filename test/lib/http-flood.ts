// `node http-flood.js HOST:PORT METHOD PATH-PREFIX COUNT`: COUNT concurrent requests to
// PATH-PREFIX0 .. PATH-PREFIX<COUNT-1>, from a process of its own so that the process measuring
// latencies stays quiet. Prints "sent" once every request is on the wire, then
// "done <status>=<count> ..." when all have answered (status 0: no answer, connection lost).
import { Agent, request } from 'node:http';

const [addr, method, prefix, countText] = process.argv.slice(2) as [string, string, string, string];
const [host, port] = addr.split(':') as [string, string];
const count = Number(countText);
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
const statuses = new Map<number, number>();
let written = 0;
let answered = 0;

for (let i = 0; i < count; i++) {
  const req = request({ host, port: Number(port), method, path: `${prefix}${i}`, agent }, (res) => {
    res.resume();
    res.on('end', () => finish(res.statusCode ?? 0));
  });
  req.on('error', () => finish(0));
  req.end(() => {
    if (++written === count) process.stdout.write('sent\n');
  });
}

function finish(status: number): void {
  statuses.set(status, (statuses.get(status) ?? 0) + 1);
  if (++answered === count) {
    process.stdout.write(`done ${[...statuses].map(([s, n]) => `${s}=${n}`).join(' ')}\n`);
    process.exit(0);
  }
}
