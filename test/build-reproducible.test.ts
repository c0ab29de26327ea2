// Reproducibility of the spine: the manifest digest is a function of the spec and the store
// contents only, never of where, when, or by whom the build runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, utimes, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { checkJsonOutput, runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

/**
 * The manifest digest of examples/hello as of this commit. Any change to output bytes must be
 * deliberate: explain it in the commit and update this value.
 */
const HELLO_MANIFEST_DIGEST = 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580';

async function touchAll(dir: string, when: Date): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isSymbolicLink()) continue;
    await utimes(join(entry.parentPath, entry.name), when, when);
  }
  await utimes(dir, when, when);
}

/** Build a copy of examples/hello made under `umask`, from `cwd`, with the given environment. */
async function buildCopy(root: string, opts: { umask: string; tz: string; lang: string; when: Date }): Promise<string> {
  const example = join(root, 'example');
  const cwd = join(root, 'cwd');
  await mkdir(cwd, { recursive: true });
  // `cp` without preserving modes applies the umask to every copied file.
  await runCommand('sh', ['-c', `umask ${opts.umask} && cp -r "$0" "$1"`, join(repoRoot, 'examples/hello'), example]);
  await touchAll(example, opts.when);
  const r = await runCommand(
    'sh',
    ['-c', `umask ${opts.umask} && exec "$0" "$1" build "$2" -o out.oci --json`, process.execPath, cliPath, example],
    { cwd, env: { ...process.env, TZ: opts.tz, LANG: opts.lang, LC_ALL: opts.lang, IMGBUILD_CACHE_DIR: join(root, 'cache') } },
  );
  assert.equal(r.code, 0, r.stderr);
  checkJsonOutput(['build', example, '-o', 'out.oci', '--json'], r);
  return JSON.parse(r.stdout.toString()).digest;
}

test('two builds of examples/hello with different cwd, umask, TZ, locale and file times give one digest', async () => {
  const a = await buildCopy(await tempDir(), { umask: '022', tz: 'UTC', lang: 'C', when: new Date('2001-02-03T04:05:06Z') });
  const b = await buildCopy(await tempDir(), { umask: '077', tz: 'Asia/Kathmandu', lang: 'de_DE.UTF-8', when: new Date() });
  assert.equal(a, b);
});

test('examples/hello has the pinned golden manifest digest', async () => {
  const digest = await buildCopy(await tempDir(), { umask: '022', tz: 'UTC', lang: 'C', when: new Date() });
  assert.equal(digest, HELLO_MANIFEST_DIGEST);
});
