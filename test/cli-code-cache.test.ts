// The V8 code cache the bin keeps for push's own bundle (builder/code-cache.ts): made once, at the
// end of a successful run; then used; never used when damaged or made for other bytes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCli, runCommand } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

const codeCacheModule = pathToFileURL(join(repoRoot, 'dist', 'builder', 'code-cache.js')).href;

/** A script file, the cache dir, and a driver that runs the script through runWithCodeCache and prints how (cached, compiled). */
async function setUp(name: string, script: string) {
  const dir = await tempDir(`imgbuild-code-cache-${name}-`);
  const file = join(dir, 'script.cjs');
  await writeFile(file, script);
  const driver = join(dir, 'driver.mjs');
  await writeFile(driver, [
    `import { runWithCodeCache } from ${JSON.stringify(codeCacheModule)};`,
    'const how = runWithCodeCache(process.argv[2], { cacheDir: process.argv[3], name: "script" });',
    'process.stderr.write(`run: ${how}\\n`);',
  ].join('\n'));
  const cacheDir = join(dir, 'cache');
  const run = async (env: NodeJS.ProcessEnv = {}, at = cacheDir) => {
    const r = await runCommand(process.execPath, [driver, file, at], { env: { ...process.env, ...env } });
    return { code: r.code, stdout: r.stdout.toString(), how: /run: (\S+)/.exec(r.stderr)?.[1], stderr: r.stderr };
  };
  const cacheFiles = () => (existsSync(cacheDir) ? readdirSync(cacheDir).filter((f) => f.endsWith('.v8cache')).sort() : []);
  return { dir, file, cacheDir, run, cacheFiles };
}

// What the script prints depends on its own code only; it also exercises what a bundle relies
// on: require (of a built-in and of a file), module.exports, __filename, a lazily compiled function.
const SCRIPT = (word: string) => `#!/usr/bin/env node
const { basename, join } = require('node:path');
module.exports.word = ${JSON.stringify(word)};
process.stdout.write(\`\${module.exports.word} \${basename(__filename)} \${[3, 1, 2].sort().join('')}\\n\`);
setImmediate(() => process.stdout.write(\`required \${require(join(__dirname, 'other.cjs')).value}\\n\`));
if (process.env.SCRIPT_FAIL) process.exitCode = 3;
`;

async function withOther(dir: string): Promise<void> {
  await writeFile(join(dir, 'other.cjs'), 'exports.value = 42;\n');
}

test('a first run compiles and writes a code cache; the next run uses it and writes nothing', async () => {
  const s = await setUp('reuse', SCRIPT('alpha'));
  await withOther(s.dir);
  const first = await s.run();
  assert.deepEqual([first.code, first.how, first.stdout], [0, 'compiled', 'alpha script.cjs 123\nrequired 42\n'], first.stderr);
  const files = s.cacheFiles();
  assert.equal(files.length, 1);
  const made = statSync(join(s.cacheDir, files[0]!));
  const second = await s.run();
  assert.deepEqual([second.code, second.how, second.stdout], [0, 'cached', 'alpha script.cjs 123\nrequired 42\n'], second.stderr);
  const kept = statSync(join(s.cacheDir, files[0]!));
  assert.deepEqual([kept.ino, kept.mtimeMs], [made.ino, made.mtimeMs], 'the cache file is not written again');
  assert.deepEqual(s.cacheFiles(), files);
});

test('a damaged cache file (a flipped byte of V8 data, cut short, garbage, another key in its header) is not used, and is replaced', async () => {
  const s = await setUp('damaged', SCRIPT('beta'));
  await withOther(s.dir);
  assert.equal((await s.run()).how, 'compiled');
  const [name] = s.cacheFiles();
  const path = join(s.cacheDir, name!);
  const good = readFileSync(path);
  const damages: Record<string, Buffer> = {
    'a flipped byte': Buffer.from(good.map((b, i) => (i === good.length - 100 ? b ^ 0x40 : b))),
    'cut short': good.subarray(0, good.length - 1),
    'the header only': good.subarray(0, 200),
    garbage: Buffer.alloc(good.length, 0x61),
    'another key': Buffer.concat([good.subarray(0, 20), Buffer.from('0'.repeat(64)), good.subarray(84)]),
    empty: Buffer.alloc(0),
  };
  for (const [what, bytes] of Object.entries(damages)) {
    writeFileSync(path, bytes);
    const r = await s.run();
    assert.deepEqual([r.code, r.how, r.stdout], [0, 'compiled', 'beta script.cjs 123\nrequired 42\n'], `${what}: ${r.stderr}`);
    assert.ok(!readFileSync(path).equals(bytes), `${what}: the file is written again`);
    assert.equal((await s.run()).how, 'cached', `${what}: and the new one is used`);
  }
});

test('a cache made for other bytes is never used, even when they are as long (V8 itself compares lengths only)', async () => {
  const s = await setUp('other', SCRIPT('gamma'));
  await withOther(s.dir);
  assert.equal((await s.run()).how, 'compiled');
  const [gammaCache] = s.cacheFiles();
  // The same length, other code: a new key, so a new file; the old one is not read.
  await writeFile(s.file, SCRIPT('delta'));
  const other = await s.run();
  assert.deepEqual([other.code, other.how, other.stdout], [0, 'compiled', 'delta script.cjs 123\nrequired 42\n'], other.stderr);
  const files = s.cacheFiles();
  assert.equal(files.length, 2);
  // Even under the name of delta's cache, gamma's is refused (the key in its header).
  const deltaCache = files.find((f) => f !== gammaCache)!;
  writeFileSync(join(s.cacheDir, deltaCache), readFileSync(join(s.cacheDir, gammaCache!)));
  const again = await s.run();
  assert.deepEqual([again.code, again.how, again.stdout], [0, 'compiled', 'delta script.cjs 123\nrequired 42\n'], again.stderr);
  assert.equal((await s.run()).how, 'cached');
});

test('a run that ends with a non-zero exit code writes no cache; a cache dir that cannot be written only means none', async () => {
  const s = await setUp('nowrite', SCRIPT('eps'));
  await withOther(s.dir);
  const failed = await s.run({ SCRIPT_FAIL: '1' });
  assert.deepEqual([failed.code, failed.how, failed.stdout], [3, 'compiled', 'eps script.cjs 123\nrequired 42\n'], failed.stderr);
  assert.deepEqual(s.cacheFiles(), []);
  // A file where the cache dir would be.
  const blocked = join(s.dir, 'not-a-dir');
  await writeFile(blocked, 'x');
  const r = await s.run({}, join(blocked, 'cache'));
  assert.deepEqual([r.code, r.how, r.stdout, r.stderr], [0, 'compiled', 'eps script.cjs 123\nrequired 42\n', 'run: compiled\n']);
  assert.deepEqual(readdirSync(s.dir).sort(), ['driver.mjs', 'not-a-dir', 'other.cjs', 'script.cjs']);
});

let registry: RunningRegistry | undefined;
const registryFixture = toolFixture(['docker-registry'], async () => {
  registry = await startRegistry();
});
after(async () => {
  await registry?.stop();
});

test('imgbuild push keeps its code cache in <cache dir>/compile: made by the first push, used by the next, and a damaged one changes nothing pushed', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const work = await tempDir('imgbuild-code-cache-push-');
  const cache = join(work, 'cache');
  const env: NodeJS.ProcessEnv = { ...process.env, IMGBUILD_CACHE_DIR: cache };
  delete env.NODE_DISABLE_COMPILE_CACHE;
  const layout = join(work, 'hello.oci');
  const built = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', layout], { env });
  assert.equal(built.code, 0, built.stderr);
  const digest = built.stdout.toString().trim();
  const host = registry!.host;
  const push = (e: NodeJS.ProcessEnv = env) => runCli(['push', `oci:${layout}`, `${host}/code-cache/hello:1`, '--insecure-registry', host], { env: e });
  const pushed = `${host}/code-cache/hello@${digest}\n`;
  const compile = join(cache, 'compile');
  const caches = () => (existsSync(compile) ? readdirSync(compile).filter((f) => /^imgbuild-cmd-push-[0-9a-f]{32}\.v8cache$/.test(f)) : []);

  // --help and --version write none: they compile little of push.
  assert.equal((await runCli(['push', '--help'], { env })).code, 0);
  assert.equal((await runCli(['push', '--version'], { env })).code, 0);
  assert.deepEqual(caches(), []);
  const first = await push();
  assert.deepEqual([first.code, first.stdout.toString()], [0, pushed], first.stderr);
  assert.equal(caches().length, 1);
  const file = join(compile, caches()[0]!);
  const made = statSync(file);
  const second = await push();
  assert.deepEqual([second.code, second.stdout.toString()], [0, pushed], second.stderr);
  assert.deepEqual([statSync(file).ino, statSync(file).mtimeMs], [made.ino, made.mtimeMs], 'used, not written again');

  const good = readFileSync(file);
  const damaged = Buffer.from(good.map((b, i) => (i === good.length - 1000 ? b ^ 0xff : b)));
  writeFileSync(file, damaged);
  const third = await push();
  assert.deepEqual([third.code, third.stdout.toString()], [0, pushed], third.stderr);
  assert.ok(!readFileSync(file).equals(damaged), 'the damaged cache is replaced');
  const replaced = statSync(file);
  const fourth = await push();
  assert.deepEqual([fourth.code, fourth.stdout.toString()], [0, pushed], fourth.stderr);
  assert.deepEqual([statSync(file).ino, statSync(file).mtimeMs], [replaced.ino, replaced.mtimeMs], 'and the new one is used');

  // NODE_DISABLE_COMPILE_CACHE (Node's own switch) turns this cache off too.
  const off = join(work, 'off');
  await mkdir(off);
  const fifth = await push({ ...env, IMGBUILD_CACHE_DIR: off, NODE_DISABLE_COMPILE_CACHE: '1' });
  assert.deepEqual([fifth.code, fifth.stdout.toString()], [0, pushed], fifth.stderr);
  // No compiled code there (blob-locations/ is the push's record of where its blobs went).
  assert.deepEqual(readdirSync(off).filter((n) => n !== 'blob-locations'), []);
});

test('writing a cache removes the same name\'s caches not written for 30 days and dead writers\' temp files, nothing else', async () => {
  const s = await setUp('stale', SCRIPT('gamma'));
  await withOther(s.dir);
  await mkdir(s.cacheDir, { recursive: true });
  const day = 24 * 3600;
  const old = (f: string, days: number) => {
    writeFileSync(join(s.cacheDir, f), 'x');
    const t = Date.now() / 1000 - days * day;
    utimesSync(join(s.cacheDir, f), t, t);
  };
  const hex = (c: string) => c.repeat(32);
  old(`script-${hex('a')}.v8cache`, 31); // an older bundle's or Node's: goes
  old(`script-${hex('b')}.v8cache`, 29); // another Node's, in use this month: stays
  old(`script-${hex('c')}.v8cache.123-0badf00d.tmp`, 2); // a writer killed before its rename: goes
  old(`script-${hex('d')}.v8cache.124-0badf00d.tmp`, 0); // a writer perhaps still running: stays
  old(`other-${hex('e')}.v8cache`, 400); // another name's: stays
  old('notes.txt', 400);
  const first = await s.run();
  assert.equal(first.how, 'compiled', first.stderr);
  const made = s.cacheFiles().filter((f) => ![hex('b'), hex('e')].some((h) => f.includes(h)));
  assert.equal(made.length, 1);
  assert.deepEqual(readdirSync(s.cacheDir).sort(), [`other-${hex('e')}.v8cache`, made[0]!, `script-${hex('b')}.v8cache`, `script-${hex('d')}.v8cache.124-0badf00d.tmp`, 'notes.txt'].sort());
});

test("push's own bundle, read as a string for vm.Script, is ASCII only (V8 then holds it one byte a character), and its comments' non-ASCII is escaped", () => {
  const bundle = join(repoRoot, 'dist', 'builder', 'imgbuild-cmd-push.cjs');
  if (!existsSync(bundle)) return; // built without esbuild: no bundle
  const text = readFileSync(bundle, 'latin1');
  assert.equal(/[^\x00-\x7f]/.test(text), false);
  // registry-client/transport.ts's doc comment of send() has an em dash.
  assert.match(text, /`authOrigin` \(the registry's\) \\u2014 a blob redirect/);
});
