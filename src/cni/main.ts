#!/usr/bin/env node
// weave-net: the CNI plugin, a thin client of the weave daemon (see plugin.ts for the steps).
// Run by the container runtime with CNI_* in the environment and the network config on stdin;
// the result, or a CNI error, goes to stdout. Kept to node: built-ins and the few modules under
// src/cni, because it starts once per pod and its start-up is the runtime's wait.
import { realIo } from './io.js';
import { runPlugin } from './plugin.js';

runPlugin(process.env, realIo).then((outcome) => {
  if (outcome.stderr) process.stderr.write(`${outcome.stderr}\n`);
  process.stdout.write(outcome.stdout);
  process.exitCode = outcome.exitCode;
}, (err: unknown) => {
  // runPlugin turns every failure into an Outcome; this is for a bug in that.
  process.stdout.write(`${JSON.stringify({ cniVersion: '1.0.0', code: 100, msg: `weave-net crashed: ${String(err)}` })}\n`);
  process.exitCode = 1;
});
