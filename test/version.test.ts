import t from 'tap';
import { readFileSync } from 'node:fs';
import { VERSION } from '../src/version.js';

t.test('the version in code is the package version', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(VERSION, pkg.version);
});
