// A push's process grows V8's young generation to its full size at once (startup.ts
// growYoungGenerationAtOnce), so that its mostly long-lived start-up heap is not copied by scavenge
// after scavenge; a process that does not ask keeps V8's doubling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCommand } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';

/** The young generation's size (MiB) after keeping 20,000 small objects, in a fresh Node process. */
async function youngGenerationAfterAllocating(grow: boolean): Promise<number> {
  const startup = pathToFileURL(join(repoRoot, 'dist', 'builder', 'startup.js')).href;
  const script = [
    "import { getHeapSpaceStatistics } from 'node:v8';",
    `const { growYoungGenerationAtOnce } = await import(${JSON.stringify(startup)});`,
    grow ? 'growYoungGenerationAtOnce();' : '',
    'const kept = []; for (let i = 0; i < 20000; i++) kept.push({ i, s: `x${i}` });',
    "process.stdout.write(String(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576));",
  ].join('\n');
  const r = await runCommand(process.execPath, ['--input-type=module', '-e', script]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  return Number(r.stdout);
}

test('growYoungGenerationAtOnce: the young generation goes to its full size (32 MiB) at its first growth, not by doubling (4 MiB)', async () => {
  assert.equal(await youngGenerationAfterAllocating(false), 4);
  assert.equal(await youngGenerationAfterAllocating(true), 32);
});
