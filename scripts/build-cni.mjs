#!/usr/bin/env node
// Builds dist/bin/weave-net, the CNI plugin as one self-contained executable (a Node.js single
// executable application), so that it runs on a host without Node.js, where runtimes look for it
// (/opt/cni/bin):
//   1. esbuild bundles src/cni/main.ts and what it imports into one CommonJS script;
//   2. `node --experimental-sea-config` turns it into a blob, with V8's code cache for a faster start;
//   3. postject injects the blob into a copy of this node binary, flipping the SEA fuse.
// Step 1 runs on every build (tens of milliseconds); 2 and 3 (seconds: the binary is ~100 MB) only
// when the bundle or the node binary changed, which a stamp file beside the executable records.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'bin');
const exe = join(outDir, 'weave-net');
const stampFile = `${exe}.stamp`;
const bundleFile = join(outDir, 'weave-net.cjs');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function quiet(cmd, args) {
  try {
    execFileSync(cmd, args, { cwd: root, stdio: 'pipe' });
  } catch (err) {
    process.stderr.write(`${err.stdout ?? ''}${err.stderr ?? ''}`);
    throw err;
  }
}

export async function buildCni({ force = false } = {}) {
  const require = createRequire(import.meta.url);
  const esbuild = require('esbuild');
  const built = await esbuild.build({
    entryPoints: [join(root, 'src', 'cni', 'main.ts')],
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', write: false, legalComments: 'none',
  });
  // The SEA runs its script wrapped in a function, where a #! line would not parse.
  const bundle = built.outputFiles[0].text.replace(/^#!.*\n/, '');
  const stamp = createHash('sha256').update(bundle).update(process.version).update(process.execPath).digest('hex');
  if (!force && existsSync(exe) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return false;

  mkdirSync(outDir, { recursive: true });
  writeFileSync(bundleFile, bundle);
  const blob = join(outDir, 'weave-net.blob');
  const seaConfig = join(outDir, 'sea-config.json');
  writeFileSync(seaConfig, JSON.stringify({ main: bundleFile, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
  quiet(process.execPath, ['--experimental-sea-config', seaConfig]);

  // Built beside and renamed, so that a failed build never leaves a half-made executable.
  const tmp = `${exe}.tmp`;
  copyFileSync(process.execPath, tmp);
  chmodSync(tmp, 0o755);
  // postject's ELF library warns about every note section of node's binary: harmless, so it runs
  // as a child whose output is shown only when it fails.
  quiet(process.execPath, [require.resolve('postject/dist/cli.js'), tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE]);
  renameSync(tmp, exe);
  rmSync(blob, { force: true });
  rmSync(seaConfig, { force: true });
  writeFileSync(stampFile, stamp);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = Date.now();
  const made = await buildCni({ force: process.argv.includes('--force') });
  process.stdout.write(made ? `built ${exe} in ${Date.now() - started} ms\n` : '');
}
