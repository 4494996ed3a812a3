// A process that owns a Spawner, for spawner.test.ts: runs one command through it and prints
// the helper's pid and the command's parent pid, then either stays (`stay`: the test kills it)
// or returns, leaving the process to exit when nothing else keeps it alive.
import { Spawner } from '../../../src/dataplane/host/spawner.js';

const spawner = new Spawner();
const r = await spawner.run(['sh', '-c', 'echo $PPID']);
process.stdout.write(`${JSON.stringify({ helper: spawner.pid, parentOfCommand: Number(r.stdout.trim()) })}\n`);
if (process.argv[2] === 'stay') setInterval(() => undefined, 1000);
