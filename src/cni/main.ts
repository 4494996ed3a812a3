#!/usr/bin/env node
// weave-net: the CNI plugin. For now it answers VERSION only; ADD, DEL, CHECK, GC and STATUS
// arrive with the plugin itself. Errors are CNI error JSON on stdout, as the spec asks.
const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];

function cniError(code: number, msg: string, details?: string): never {
  process.stdout.write(`${JSON.stringify({ cniVersion: '1.0.0', code, msg, ...(details ? { details } : {}) })}\n`);
  process.exit(1);
}

const command = process.env.CNI_COMMAND;
if (command === 'VERSION') {
  process.stdout.write(`${JSON.stringify({ cniVersion: '1.0.0', supportedVersions: SUPPORTED })}\n`);
} else if (command === undefined || command === '') {
  cniError(7, 'CNI_COMMAND is not set', 'weave-net is a CNI plugin: a container runtime runs it with CNI_COMMAND and the network config on stdin');
} else {
  cniError(4, `CNI_COMMAND ${command} is not supported by this build of weave-net`);
}
