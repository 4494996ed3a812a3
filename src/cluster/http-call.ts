// `node http-call.js METHOD URL [BODY]`: one HTTP request, for tests that must call a daemon's
// API from inside a network namespace. Prints the status on the first line, then the body.
import { request } from 'node:http';

const [method, url, body] = process.argv.slice(2) as [string, string, string | undefined];
const req = request(url, { method }, (res) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => {
    process.stdout.write(`${res.statusCode}\n${Buffer.concat(chunks).toString('utf8')}`);
  });
});
req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
req.on('error', (err) => {
  process.stdout.write(`0\n${err.message}`);
});
req.end(body);
