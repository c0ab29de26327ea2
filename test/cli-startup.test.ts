// What one CLI process loads and sends (issue 19, per-invocation cost): `--version` answered by
// the bin alone, Node's compile cache kept in the cache dir, and a no-op push's requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as nodeModule from 'node:module';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCli, runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { registryAccessLog, startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

let work: string;

before(async () => {
  work = await tempDir('imgbuild-startup-');
  // A module hook that appends every module URL the process resolves to $IMGBUILD_TEST_LOAD_LOG.
  await writeFile(join(work, 'hooks.mjs'), [
    "import { appendFileSync } from 'node:fs';",
    'let log;',
    'export function initialize(data) { log = data.log; }',
    'export async function resolve(specifier, context, next) {',
    '  const r = await next(specifier, context);',
    "  appendFileSync(log, r.url + '\\n');",
    '  return r;',
    '}',
  ].join('\n'));
  await writeFile(join(work, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url, { data: { log: process.env.IMGBUILD_TEST_LOAD_LOG } });\n");
});

/** Runs the CLI with the hook; returns its result and the files (not node: builtins) it loaded. */
async function loadedBy(args: string[], name: string) {
  const log = join(work, `${name}.log`);
  await writeFile(log, '');
  const env = { ...process.env, IMGBUILD_TEST_LOAD_LOG: log, IMGBUILD_CACHE_DIR: join(work, `${name}-cache`) };
  const r = await runCommand(process.execPath, ['--import', pathToFileURL(join(work, 'register.mjs')).href, cliPath, ...args], { env });
  const files = (await readFile(log, 'utf8')).split('\n').filter((u) => u.startsWith('file:'));
  return { r, files: [...new Set(files)] };
}

test('imgbuild --version prints the package version and loads no file but the bin (no CLI, commander or undici)', async () => {
  const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const { r, files } = await loadedBy([flag], `version${flag}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `${version}\n`);
    assert.deepEqual(files, [pathToFileURL(cliPath).href]);
  }
});

/** The Node built-ins a process has loaded by its exit (`process.moduleLoadList`), recorded by a --require'd script. */
async function builtinsLoadedBy(args: string[], name: string, env: NodeJS.ProcessEnv = process.env) {
  const out = join(work, `${name}.builtins`);
  const record = join(work, 'record-builtins.cjs');
  await writeFile(record, "process.on('exit', () => require('node:fs').writeFileSync(process.env.IMGBUILD_TEST_BUILTINS, process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)).join('\\n')));\n");
  const r = await runCommand(process.execPath, ['--require', record, ...args], { env: { ...env, IMGBUILD_TEST_BUILTINS: out } });
  return { r, builtins: new Set((await readFile(out, 'utf8')).split('\n')) };
}

test('imgbuild --version loads no Node built-in that `node -e 0` does not (no node:crypto, node:vm, node:v8, node:stream)', async () => {
  const bare = await builtinsLoadedBy(['-e', '0'], 'bare');
  const { r, builtins } = await builtinsLoadedBy([cliPath, '--version'], 'version-builtins');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual([...builtins].filter((m) => !bare.builtins.has(m)), []);
});

test('imgbuild --help loads the CLI beyond the bin (the hook of the test above sees what is loaded)', async () => {
  const { r, files } = await loadedBy(['--help'], 'help');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.toString(), /^Usage: imgbuild /);
  assert.ok(files.length > 1, `loaded: ${files.join(' ')}`);
  assert.ok(!files.some((f) => f.includes('/undici/')), 'help loads no HTTP client');
});

test('imgbuild push runs from its own bundle: no ES module is loaded but the bin (not cli.js, not the shared chunks)', async () => {
  // The bundle (imgbuild-cmd-push.cjs) is CommonJS run through vm.Script (code-cache.ts), which
  // this ES module hook does not see: what it must not see is anything else.
  const { r, files } = await loadedBy(['push', `oci:${join(work, 'no-such-layout')}`, '127.0.0.1:9/startup/none:1'], 'push');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no-such-layout/);
  assert.deepEqual(files, [pathToFileURL(cliPath).href]);
  assert.ok(existsSync(join(dirname(cliPath), 'imgbuild-cmd-push.cjs')));
});

test('a cold build scans on a worker, a big path with a helper thread, each thread run from its bundle (one file, not tsc\'s modules)', async (t) => {
  // One fewer worker than cores: a machine of one core scans on the main thread alone.
  if (availableParallelism() < 2) return t.skip('one core: no worker');
  const store = join(work, 'big-store');
  const name = `${'b'.repeat(32)}-many-files`;
  // Past SCAN_SPLIT_MIN_NODES (10,000): the scan is split with a helper thread.
  for (let d = 0; d < 11; d++) {
    mkdirSync(join(store, name, `d${d}`), { recursive: true });
    for (let f = 0; f < 1000; f++) writeFileSync(join(store, name, `d${d}`, `f${f}`), `${d}/${f}\n`);
  }
  const spec = join(work, 'big.json');
  await writeFile(spec, JSON.stringify({ name: 'startup/big', architecture: 'amd64', store: { dir: store }, contents: [`/nix/store/${name}`], compressor: 'none' }));
  const { r, files } = await loadedBy(['build', spec, '-o', join(work, 'big.oci')], 'big');
  assert.equal(r.code, 0, r.stderr);
  const builder = dirname(cliPath);
  for (const bundle of ['imgbuild-worker.js', 'imgbuild-scan-helper.js']) assert.ok(files.includes(pathToFileURL(join(builder, bundle)).href), `${bundle} not loaded: ${files.join(' ')}`);
  assert.deepEqual(files.filter((f) => f.includes('/builder/workers/') || f.includes('/builder/store/')), []);
});

test("the CLI keeps Node's compile cache in <cache dir>/compile where Node has one (≥ 22.1), and nothing where it has not", async () => {
  const cache = join(work, 'cc-cache');
  const home = join(work, 'cc-home');
  const env: NodeJS.ProcessEnv = { ...process.env, IMGBUILD_CACHE_DIR: cache, HOME: home, XDG_CACHE_HOME: '' };
  delete env.NODE_COMPILE_CACHE;
  delete env.NODE_DISABLE_COMPILE_CACHE;
  const r = await runCli(['--help'], { env });
  assert.equal(r.code, 0, r.stderr);
  if (typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === 'function') {
    const versions = await readdir(join(cache, 'compile'));
    assert.equal(versions.length, 1, versions.join(' '));
    assert.ok((await readdir(join(cache, 'compile', versions[0]!))).length > 0, 'compiled code was written');
  } else {
    assert.equal(existsSync(join(cache, 'compile')), false);
  }
  assert.equal(existsSync(home), false, 'nothing under HOME');

  const off = join(work, 'cc-off');
  const r2 = await runCli(['--help'], { env: { ...env, IMGBUILD_CACHE_DIR: off, NODE_DISABLE_COMPILE_CACHE: '1' } });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(existsSync(join(off, 'compile')), false, 'NODE_DISABLE_COMPILE_CACHE=1 turns it off');
});

test("push's own bundle prints push's help and usage errors as the whole CLI does (it defines push alone)", async () => {
  const whole = join(dirname(cliPath), 'cli.js');
  for (const args of [['push', '--help'], ['push', 'oci:x'], ['push', '--no-such-flag', 'a', 'b']]) {
    const bundled = await runCli(args);
    const unbundled = await runCommand(process.execPath, [whole, ...args]);
    assert.deepEqual({ code: bundled.code, stdout: bundled.stdout.toString(), stderr: bundled.stderr }, { code: unbundled.code, stdout: unbundled.stdout.toString(), stderr: unbundled.stderr }, args.join(' '));
  }
});

let registry: RunningRegistry | undefined;
const registryFixture = toolFixture(['docker-registry'], async () => {
  registry = await startRegistry();
});
after(async () => {
  await registry?.stop();
});

test('a no-op re-push sends the ping, one HEAD of the manifest by digest and the manifest PUT under its tag: no blob request', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'push-cache') };
  const layout = join(work, 'hello.oci');
  const built = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', layout], { env });
  assert.equal(built.code, 0, built.stderr);
  const digest = built.stdout.toString().trim();
  const host = registry!.host;
  const push = () => runCli(['push', `oci:${layout}`, `${host}/startup/hello:1`, '--insecure-registry', host], { env });
  const first = await push();
  assert.equal(first.code, 0, first.stderr);
  const before = registryAccessLog(registry!.log()).length;
  const again = await push();
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout.toString(), `${host}/startup/hello@${digest}\n`);
  assert.deepEqual(registryAccessLog(registry!.log()).slice(before).map((r) => `${r.method} ${r.path} ${r.status}`), [
    'GET /v2/ 200',
    `HEAD /v2/startup/hello/manifests/${digest} 200`,
    'PUT /v2/startup/hello/manifests/1 201',
  ]);
});

test('an uploading push of an OCI layout loads neither node:fs/promises nor node:v8 (it sets no V8 flag: only build does, startup.ts)', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'lean-push-cache') };
  const layout = join(work, 'lean.oci');
  const built = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', layout], { env });
  assert.equal(built.code, 0, built.stderr);
  const host = registry!.host;
  for (const run of ['first', 'with its code cache']) {
    const { r, builtins } = await builtinsLoadedBy([cliPath, 'push', `oci:${layout}`, `${host}/startup/lean-${run === 'first' ? 1 : 2}:1`, '--insecure-registry', host], `lean-push-${run === 'first' ? 1 : 2}`, env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /blobs: \d+ uploaded/, run);
    assert.deepEqual(['fs/promises', 'internal/fs/promises', 'v8'].filter((m) => builtins.has(m)), [], run);
  }
});

/** The V8 flags a CLI run sets at run time: a preloaded hook records each `v8.setFlagsFromString`. */
async function v8FlagsSetBy(args: string[], name: string, env: NodeJS.ProcessEnv) {
  const out = join(work, `${name}.flags`);
  const record = join(work, 'record-v8-flags.cjs');
  await writeFile(record, [
    "const v8 = require('node:v8'); const fs = require('node:fs'); const set = v8.setFlagsFromString;",
    'v8.setFlagsFromString = (flag) => { fs.appendFileSync(process.env.IMGBUILD_TEST_FLAGS, `${flag}\\n`); set(flag); };',
    // ES modules importing node:v8 see the patched function too.
    "require('node:module').syncBuiltinESMExports();",
  ].join('\n'));
  // Emptied here, not by the hook: the build's worker threads run the hook too.
  await writeFile(out, '');
  const r = await runCommand(process.execPath, ['--require', record, ...args], { env: { ...env, IMGBUILD_TEST_FLAGS: out } });
  return { r, flags: (await readFile(out, 'utf8')).split('\n').filter(Boolean) };
}

test('only build sets a V8 flag at run time: inspect and push set none, build its heap growth', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'flags-cache') };
  const layout = join(work, 'flags.oci');
  const build = await v8FlagsSetBy([cliPath, 'build', join(repoRoot, 'examples/hello'), '-o', layout], 'flags-build', env);
  assert.equal(build.r.code, 0, build.r.stderr);
  // Set by the bin and again by cli.ts's hook (which also serves cli.js run without the bin).
  assert.deepEqual([...new Set(build.flags)], ['--heap-growing-percent=50']);
  const inspect = await v8FlagsSetBy([cliPath, 'inspect', layout, '--json'], 'flags-inspect', env);
  assert.equal(inspect.r.code, 0, inspect.r.stderr);
  assert.deepEqual(inspect.flags, []);
  const host = registry!.host;
  const push = await v8FlagsSetBy([cliPath, 'push', `oci:${layout}`, `${host}/startup/flags:1`, '--insecure-registry', host], 'flags-push', env);
  assert.equal(push.r.code, 0, push.r.stderr);
  assert.deepEqual(push.flags, []);
});
