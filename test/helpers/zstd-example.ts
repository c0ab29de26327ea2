import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from './cli.js';
import { repoRoot } from './paths.js';

/** A copy of examples/<name> in `dir` whose spec says compressor zstd (busybox: with its store made by make-store.sh). */
export async function zstdExample(name: 'hello' | 'busybox', dir: string): Promise<string> {
  await cp(join(repoRoot, 'examples', name), dir, { recursive: true, filter: (src) => name !== 'busybox' || !src.endsWith('/store') });
  if (name === 'hello') {
    const spec = join(dir, 'image.ts');
    await writeFile(spec, (await readFile(spec, 'utf8')).replace("architecture: 'amd64',", "architecture: 'amd64',\n  compressor: 'zstd',"));
  } else {
    const r = await runCommand('bash', [join(dir, 'make-store.sh')]);
    assert.equal(r.code, 0, r.stderr);
    const spec = join(dir, 'image.yaml');
    await writeFile(spec, (await readFile(spec, 'utf8')).replace('architecture: amd64', 'architecture: amd64\ncompressor: zstd'));
  }
  return dir;
}
