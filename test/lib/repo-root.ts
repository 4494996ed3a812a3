import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository root: the nearest directory above `from` whose package.json is weft's. Found by
 * walking up, so compiled tests work from any output directory (dist/test/... or another).
 */
export function repoRoot(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'weft') return dir;
    if (dirname(dir) === dir) throw new Error(`no weft package.json above ${from}`);
  }
}
