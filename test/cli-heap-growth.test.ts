// The CLI limits V8's heap growth for `build` (startup.ts: a process-wide flag the library never
// sets): a cold build of 50,000 tiny store paths otherwise carried ~40-50 MiB of dead objects at
// its peak RSS. Other commands keep V8's default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HEAP_GROWING_PERCENT } from '../builder/startup.js';
import { runCommand } from './helpers/cli.js';
import { cliPath } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

/** The V8 flags the CLI sets with `args` (a preload records each setFlagsFromString), and its exit code. */
async function flagsSetBy(args: string[]): Promise<{ code: number | null; flags: string[] }> {
  const work = await tempDir('imgbuild-heap-growth-');
  const log = join(work, 'flags.log');
  await writeFile(log, '');
  await writeFile(join(work, 'record.cjs'), [
    "const v8 = require('node:v8');",
    "const { appendFileSync } = require('node:fs');",
    'const set = v8.setFlagsFromString;',
    "v8.setFlagsFromString = (flags) => { appendFileSync(process.env.IMGBUILD_TEST_FLAG_LOG, flags + '\\n'); return set(flags); };",
    "require('node:module').syncBuiltinESMExports();",
  ].join('\n'));
  const env = { ...process.env, IMGBUILD_TEST_FLAG_LOG: log, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  const r = await runCommand(process.execPath, ['--require', join(work, 'record.cjs'), cliPath, ...args], { env });
  return { code: r.code, flags: (await readFile(log, 'utf8')).split('\n').filter((l) => l !== '') };
}

test('imgbuild build sets --heap-growing-percent (50) once its command is loaded; a failing build too', async () => {
  assert.equal(HEAP_GROWING_PERCENT, 50);
  const { code, flags } = await flagsSetBy(['build', '/no/such/spec.json']);
  assert.equal(code, 1);
  assert.ok(flags.includes('--heap-growing-percent=50'), `flags set: ${flags.join(' ')}`);
});

test('other commands leave the heap growth to V8', async () => {
  for (const args of [['--help'], ['cache', 'verify']]) {
    const { code, flags } = await flagsSetBy(args);
    assert.equal(code, 0, args.join(' '));
    assert.ok(!flags.some((f) => f.startsWith('--heap-growing-percent')), `${args.join(' ')} set: ${flags.join(' ')}`);
  }
});
