// `node fake-kube-api-main.js HOST:PORT [NAME=IP ...]`: the fake API server as a process of its
// own, with the given nodes, for a local cluster whose nodes are network namespaces (the demo runs
// it in node 1's namespace, where every node can reach it). Prints "listening on URL", then serves
// until SIGTERM or SIGINT.
import { FakeKubeApi } from './fake-kube-api.js';

const [listen, ...nodes] = process.argv.slice(2);
const m = /^([\d.]+):(\d+)$/.exec(listen ?? '');
if (!m) {
  process.stderr.write('usage: fake-kube-api-main HOST:PORT [NAME=IP ...]\n');
  process.exit(2);
}
const api = await FakeKubeApi.start(m[1], Number(m[2]));
for (const n of nodes) {
  const [name, ip] = n.split('=');
  if (!name || !ip) {
    process.stderr.write(`fake-kube-api: bad node "${n}": want NAME=IP\n`);
    process.exit(2);
  }
  api.addNode(name, { internalIP: ip });
}
process.stdout.write(`listening on ${api.url}\n`);
const stop = (): void => void api.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
