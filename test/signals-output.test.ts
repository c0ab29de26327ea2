// SIGINT while an output is being written stops the write: the temp output is removed, the
// output name is left as it was, and the build says "interrupted: nothing was written" (exit
// 130), true to the letter. A spec stuck in an endless loop still ends on SIGTERM.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, runCommand, withoutCiEnv } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { noise } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';

let work: string;
let spec: string;
const BIG = 24 * 1024 * 1024;

before(async () => {
  work = await tempDir('imgbuild-sigint-');
  const store = join(work, 'store');
  const big = `${'3'.repeat(32)}-big-1.0`;
  await mkdir(join(store, big), { recursive: true });
  await writeFile(join(store, big, 'data'), noise(BIG, 'sigint'));
  spec = join(work, 'image.json');
  await writeFile(spec, JSON.stringify({ name: 'sigint/app', tag: '1', architecture: 'amd64', store: { dir: store }, contents: [`/nix/store/${big}`] }));
});

/** Whether every thread of `pid` is stopped (state T or t in /proc). */
async function stopped(pid: number): Promise<boolean> {
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const text = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const state = text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
    if (state !== 'T' && state !== 't') return false;
  }
  return true;
}

/** Size of the temp output beside `out` (`.<name>.tmp-<pid>-*`, a file or a layout directory's biggest blob), or 0. */
async function tempOutputBytes(out: string): Promise<number> {
  const dir = join(out, '..');
  const name = out.split('/').pop()!;
  let most = 0;
  for (const n of await readdir(dir)) {
    if (!n.startsWith(`.${name}.tmp-`)) continue;
    const p = join(dir, n);
    const st = await stat(p).catch(() => undefined);
    if (st?.isFile()) most = Math.max(most, st.size);
    else if (st?.isDirectory()) {
      const blobs = join(p, 'blobs', 'sha256');
      for (const b of await readdir(blobs).catch(() => [] as string[])) most = Math.max(most, (await stat(join(blobs, b)).catch(() => ({ size: 0 }))).size);
    }
  }
  return most;
}

for (const format of ['docker-archive', 'oci-archive', 'oci'] as const) {
  test(`SIGINT while ${format} is written: exit 130, "nothing was written", no output and no temp file`, async () => {
    const cache = await tempDir('imgbuild-sigint-cache-');
    const env = { ...process.env, IMGBUILD_CACHE_DIR: cache };
    // A warm cache without the big blob (its record kept): the output makes the layer from the
    // store as it writes it, so the write takes long enough to be interrupted in the middle.
    const warm = await runCli(['build', spec, '-f', 'docker-archive', '-o', join(work, `warm-${format}.tar`), '--json'], { env });
    assert.equal(warm.code, 0, warm.stderr);
    const digest = JSON.parse(warm.stdout.toString()).layers[0].digest as string;
    await rm(join(cache, 'blobs', 'sha256', digest.slice('sha256:'.length)));

    const out = join(work, `out.${format}`);
    const child: ChildProcess = spawn(process.execPath, [cliPath, 'build', spec, '-f', format, '-o', out], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout!.resume();
    const closed = new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    while ((await tempOutputBytes(out)) < 1024 * 1024) {
      if (child.exitCode !== null) throw new Error(`the build ended (${child.exitCode}) before its output was part-written:\n${stderr}`);
      await sleep(5);
    }
    // Frozen, the output is part-written and not renamed: SIGINT lands in the middle of the write.
    child.kill('SIGSTOP');
    while (!(await stopped(child.pid!))) await sleep(5);
    const part = await tempOutputBytes(out);
    assert.ok(part >= 1024 * 1024 && part < BIG, `part-written: ${part}`);
    await assert.rejects(stat(out), { code: 'ENOENT' });
    child.kill('SIGINT');
    child.kill('SIGCONT');

    const code = await closed;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /^interrupted: nothing was written$/m);
    assert.doesNotMatch(stderr, /^wrote /m);
    await assert.rejects(stat(out), { code: 'ENOENT' });
    assert.deepEqual((await readdir(work)).filter((n) => n.startsWith(`.out.${format}.`)), []);
  });
}

/**
 * A preload (`node --require`) that fires the CLI's SIGINT listeners the moment the output
 * `IMGBUILD_TEST_INTERRUPT_AFTER` names is renamed into place, and leaves `<output>.renamed` to
 * say it did: an interrupt that lands just after the commit, every time, with no timing.
 */
async function interruptAfterRename(): Promise<string> {
  const hook = join(work, 'interrupt-after-rename.cjs');
  await writeFile(hook, [
    "const fsp = require('node:fs/promises'); const { writeFileSync } = require('node:fs'); const { resolve } = require('node:path');",
    'const target = resolve(process.env.IMGBUILD_TEST_INTERRUPT_AFTER); const rename = fsp.rename;',
    'fsp.rename = async (from, to) => {',
    '  await rename(from, to);',
    "  if (resolve(String(to)) === target) { writeFileSync(`${target}.renamed`, ''); process.emit('SIGINT', 'SIGINT'); }",
    '};',
    // ES modules importing node:fs/promises see the patched function too.
    "require('node:module').syncBuiltinESMExports();",
  ].join('\n'));
  return hook;
}

for (const format of ['oci', 'oci-archive', 'docker-archive'] as const) {
  test(`SIGINT just after ${format} is renamed into place: the output stands, the build ends as a success (exit 0, the digest on stdout)`, async () => {
    const out = join(work, `committed.${format}`);
    const cache = await tempDir('imgbuild-sigint-cache-');
    const env = withoutCiEnv({ ...process.env, IMGBUILD_CACHE_DIR: cache, IMGBUILD_TEST_INTERRUPT_AFTER: out });
    const r = await runCommand(process.execPath, ['--require', await interruptAfterRename(), cliPath, 'build', join(repoRoot, 'examples/hello'), '-f', format, '-o', out], { env });
    await stat(`${out}.renamed`); // the interrupt came, after the rename
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`^note: interrupted after ${out} was written in full: it is complete, and kept$`, 'm'));
    assert.match(r.stderr, new RegExp(`^wrote ${format} ${out} `, 'm'));
    assert.doesNotMatch(r.stderr, /nothing was written/);
    // Complete and valid: the image an uninterrupted build writes and prints.
    const again = join(work, `uninterrupted.${format}`);
    const reference = await runCli(['build', join(repoRoot, 'examples/hello'), '-f', format, '-o', again], { env });
    assert.equal(reference.code, 0, reference.stderr);
    assert.equal(r.stdout.toString(), reference.stdout.toString());
    const diff = await runCli(['diff', out, again], { env });
    assert.equal(diff.code, 0, diff.stdout.toString() + diff.stderr);
  });
}

test('SIGINT just after -o is renamed into place, before the push: exit 130 saying the output is complete and the push was stopped', async () => {
  const out = join(work, 'committed-push.oci');
  const cache = await tempDir('imgbuild-sigint-cache-');
  const env = withoutCiEnv({ ...process.env, IMGBUILD_CACHE_DIR: cache, IMGBUILD_TEST_INTERRUPT_AFTER: out });
  // Nothing listens on 127.0.0.1:9: with -o the registry is reached only once the output is written.
  const r = await runCommand(process.execPath, ['--require', await interruptAfterRename(), cliPath, 'build', join(repoRoot, 'examples/hello'), '-o', out, '--push', '127.0.0.1:9/sigint/app:1', '--json'], { env });
  await stat(`${out}.renamed`);
  assert.equal(r.code, 130, r.stderr);
  const message = `interrupted: the push to 127.0.0.1:9/sigint/app:1 was stopped; ${out} was written and is complete`;
  const hint = `push it when you are ready: imgbuild push ${out} 127.0.0.1:9/sigint/app:1`;
  assert.deepEqual(JSON.parse(r.stdout.toString()).error, { code: 'interrupted', message, hint });
  assert.ok(r.stderr.endsWith(`${message}\nhint: ${hint}\n`), r.stderr);
  assert.doesNotMatch(r.stderr, /nothing was written|waiting: /);
  assert.equal((await runCli(['inspect', out], { env })).code, 0);
});

test('a spec stuck in an endless loop ends on SIGTERM (no handler holds the signal while a spec loads)', async () => {
  const file = join(work, 'busy.ts');
  const marker = join(work, 'spinning');
  await writeFile(file, `import { writeFileSync } from 'node:fs';\nexport default () => { writeFileSync(${JSON.stringify(marker)}, ''); for (;;) {} };\n`);
  const child = spawn(process.execPath, [cliPath, 'build', file, '-o', join(work, 'busy.oci')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<NodeJS.Signals | null>((resolve) => child.once('close', (_c, s) => resolve(s)));
  while (!(await stat(marker).then(() => true, () => false))) {
    if (child.exitCode !== null) throw new Error(`ended before spinning: ${stderr}`);
    await sleep(10);
  }
  child.kill('SIGTERM');
  assert.equal(await closed, 'SIGTERM', stderr);
});
