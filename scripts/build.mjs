#!/usr/bin/env node
// Builds weft: generates the protobuf code from proto/*.proto, then compiles TypeScript.
// The generated JavaScript goes straight to dist/src/gen (it is not type-checked source);
// its declarations go to src/gen so that tsc checks every message we build or read.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, chmodSync, existsSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

const protos = readdirSync(join(root, 'proto')).filter((f) => f.endsWith('.proto')).map((f) => join('proto', f));
const genJs = join(root, 'dist', 'src', 'gen', 'proto.js');
const genDts = join(root, 'src', 'gen', 'proto.d.ts');
const newest = (files) => Math.max(...files.map((f) => statSync(join(root, f)).mtimeMs));
if (!existsSync(genJs) || !existsSync(genDts) || statSync(genJs).mtimeMs < newest(protos)) {
  mkdirSync(dirname(genJs), { recursive: true });
  mkdirSync(dirname(genDts), { recursive: true });
  // --force-number: every 64-bit field we use fits in 53 bits (48-bit names, counters);
  // the random 64-bit UIDs travel as bytes.
  run(bin('pbjs'), ['-t', 'static-module', '-w', 'es6', '--es6', '--force-number', '--no-beautify',
    '--no-delimited', '--no-verify', '--no-convert', '-o', genJs, ...protos]);
  run(bin('pbts'), ['-o', genDts, genJs]);
}
// Compiled tests of deleted sources would still be found by the test glob.
rmSync(join(root, 'dist', 'test'), { recursive: true, force: true });
run(bin('tsc'), ['-p', 'tsconfig.json']);
for (const entry of ['dist/src/daemon/main.js', 'dist/src/cli/main.js', 'dist/src/k8s/launch.js']) {
  if (existsSync(join(root, entry))) chmodSync(join(root, entry), 0o755);
}
// The CNI plugin, a static C executable, dist/bin/weave-net (scripts/build-cni.mjs); compiled
// only when its source, its constants or the compiler changed.
const { buildCni } = await import('./build-cni.mjs');
try {
  if (await buildCni()) process.stdout.write('built dist/bin/weave-net\n');
} catch (err) {
  // The message says what is missing (gcc, libc6-dev) or what the compiler said; no stack.
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
