// loadSpec is a library function: loading a TS/JS spec takes over nothing of the caller's process.
// The spec runs in a thread of its own (spec/guard.ts, spec/spec-thread.ts): the caller's
// process.exit, its uncaughtException/unhandledRejection/beforeExit listeners and its environment
// are never touched, and a spec's endless loop under a time limit is an error, not a SIGTERM.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpecError } from '../builder/errors.js';
import { SpecTimeoutError } from '../builder/spec/guard.js';
import { loadSpec } from '../builder/spec/load.js';
import { tempDir } from './helpers/tmp.js';

let work: string;
/** The package entry, as a library caller imports it. */
const indexJs = fileURLToPath(new URL('../builder/index.js', import.meta.url));

before(async () => {
  work = await tempDir('imgbuild-spec-isolation-');
  await writeFile(join(work, 'slow.ts'), "import { defineImage } from 'imgbuild';\nexport default async () => { await new Promise((r) => setTimeout(r, 300)); return defineImage({ name: 'slow', architecture: 'amd64' }); };\n");
  await writeFile(join(work, 'slower.ts'), "import { defineImage } from 'imgbuild';\nexport default async () => { await new Promise((r) => setTimeout(r, 1000)); return defineImage({ name: 'slower', architecture: 'amd64' }); };\n");
});

async function specFile(name: string, body: string): Promise<string> {
  const file = join(work, name);
  await writeFile(file, body);
  return file;
}

const EVENTS = ['uncaughtException', 'unhandledRejection', 'beforeExit', 'exit'] as const;
const processState = () => ({ exit: process.exit, listeners: EVENTS.map((e) => process.listenerCount(e)) });

/** Run `code` (an ES module importing the library as `lib`) in a child Node process. */
let scripts = 0;
async function runNode(code: string, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const script = join(work, `caller-${++scripts}.mjs`);
  await writeFile(script, `import * as lib from ${JSON.stringify(indexJs)};\n${code}`);
  const child = spawn(process.execPath, [script], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once('close', (c, s) => resolve({ code: c, signal: s, stdout, stderr })));
}

test('while a spec loads and after, process.exit and the process listeners are the caller\'s, unchanged', async () => {
  const before = processState();
  let during: ReturnType<typeof processState> | undefined;
  const sample = setTimeout(() => (during = processState()), 150);
  const spec = await loadSpec(join(work, 'slow.ts'), { timeoutMs: 30_000 });
  clearTimeout(sample);
  assert.equal(spec.name, 'slow');
  assert.ok(during, 'sampled while the spec loaded');
  assert.equal(during.exit, before.exit);
  assert.deepEqual(during.listeners, before.listeners);
  assert.deepEqual(processState(), before);
});

test('two overlapping loads (the first started ends first) leave process.exit as it was', async () => {
  const exit = process.exit;
  const first = loadSpec(join(work, 'slow.ts'));
  await new Promise((r) => setTimeout(r, 50));
  const second = loadSpec(join(work, 'slower.ts'));
  assert.equal((await first).name, 'slow');
  assert.equal(process.exit, exit);
  assert.equal((await second).name, 'slower');
  assert.equal(process.exit, exit);
});

test('a library caller: after overlapping loads its own process.exit(7) exits with 7', async () => {
  const r = await runNode(`
    const p1 = lib.loadSpec('slow.ts');
    await new Promise((r) => setTimeout(r, 50));
    const p2 = lib.loadSpec('slower.ts');
    await p1; await p2;
    process.exit(7);
  `);
  assert.equal(r.code, 7, r.stderr);
  assert.equal(r.stderr, '');
});

test("a caller's own unhandled rejection during a load is not the spec's: the spec loads, the caller's process fails as Node makes it", async () => {
  const r = await runNode(`
    const p = lib.loadSpec('slow.ts');
    setTimeout(() => { Promise.reject(new Error('host bug, unrelated to the spec')); }, 20);
    p.then((s) => console.log('loaded', s.name), (e) => console.log('load failed', e.message));
  `);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /host bug, unrelated to the spec/);
  assert.doesNotMatch(r.stdout, /load failed/);
});

test('a spec sees exactly the env it is given as its process.env (the caller\'s secrets stay out)', async () => {
  const file = await specFile('env.ts', [
    "import { defineImage } from 'imgbuild';",
    'export default (ctx: { env: Record<string, string | undefined> }) => defineImage({',
    "  name: 'envspec', architecture: 'amd64',",
    '  config: { Env: [`CTX_HOME=${ctx.env.HOME}`, `PROCESS_HOME=${process.env.HOME}`, `SECRET=${process.env.IMGBUILD_TEST_SECRET}`, `KEYS=${Object.keys(process.env).join(",")}`] },',
    '});',
    '',
  ].join('\n'));
  process.env.IMGBUILD_TEST_SECRET = 'hunter2';
  try {
    const given = await loadSpec(file, { env: { HOME: '/explicit' } });
    assert.deepEqual(given.config.Env, ['CTX_HOME=/explicit', 'PROCESS_HOME=/explicit', 'SECRET=undefined', 'KEYS=HOME']);
    const empty = await loadSpec(file);
    assert.deepEqual(empty.config.Env, ['CTX_HOME=undefined', 'PROCESS_HOME=undefined', 'SECRET=undefined', 'KEYS=']);
    const all = await loadSpec(file, { env: process.env });
    assert.ok(all.config.Env?.includes('SECRET=hunter2'));
  } finally {
    delete process.env.IMGBUILD_TEST_SECRET;
  }
});

test('timeoutMs on a spec in a synchronous endless loop: a SpecTimeoutError, and the caller lives on', async () => {
  const file = await specFile('loop.ts', 'export default () => { for (;;) {} };\n');
  const exit = process.exit;
  const started = Date.now();
  await assert.rejects(loadSpec(file, { timeoutMs: 500 }), (e: unknown) => {
    assert.ok(e instanceof SpecTimeoutError, String(e));
    assert.equal(e.message, `${file}: did not finish loading within 500 ms`);
    return true;
  });
  assert.ok(Date.now() - started < 10_000);
  assert.equal(process.exit, exit);
  // Still here, and still able to load a spec.
  assert.equal((await loadSpec(join(work, 'slow.ts'))).name, 'slow');
});

test("JITI_* in the caller's environment (or in the env given) changes nothing: no jiti debug output", async () => {
  const env = { ...process.env, JITI_DEBUG: '1', JITI_JSX: '1' };
  const r = await runNode(`
    const a = await lib.loadSpec('slow.ts', { env: {} });
    const b = await lib.loadSpec('slow.ts', { env: process.env });
    console.log(a.name, b.name);
  `, env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'slow slow\n');
  assert.equal(r.stderr, '');
});

test("a SpecError the spec throws arrives as a SpecError with its field and hint", async () => {
  const file = await specFile('own-error.ts', "import { SpecError } from 'imgbuild';\nthrow new SpecError('/elsewhere/image.ts', 'config.Cmd', 'not today', 'try tomorrow');\n");
  await assert.rejects(loadSpec(file), (e: unknown) => {
    assert.ok(e instanceof SpecError, String(e));
    assert.equal(e.message, '/elsewhere/image.ts: config.Cmd: not today');
    assert.equal(e.field, 'config.Cmd');
    assert.equal(e.hint, 'try tomorrow');
    assert.equal(e.file, '/elsewhere/image.ts');
    return true;
  });
});

test('a value that is not data (a function, a symbol, an unawaited promise) is a SpecError naming the field', async () => {
  const cases: [string, string, string][] = [
    ["export default { name: 'a', config: { Cmd: () => ['x'] } };\n", 'config.Cmd', 'is a function'],
    ["export default { name: 'a', config: { Labels: { x: Symbol('s') } } };\n", 'config.Labels.x', 'is a symbol (Symbol(s))'],
    ["export default { name: 'a', files: [{ path: '/x', content: Promise.resolve('x') }] };\n", 'files[0].content', 'is a promise (one the spec did not await)'],
  ];
  for (const [i, [body, field, what]] of cases.entries()) {
    const file = await specFile(`not-data-${i}.ts`, body);
    await assert.rejects(loadSpec(file), (e: unknown) => {
      assert.ok(e instanceof SpecError, String(e));
      assert.equal(e.field, field);
      assert.equal(e.message, `${file}: ${field}: ${what}, which a spec cannot hand over from its thread`);
      return true;
    });
  }
});

test("a spec's import.meta.url, __dirname-like paths and cwd are as before (its own file, the caller's cwd)", async () => {
  const file = await specFile('where.mts', [
    "import { fileURLToPath } from 'node:url';",
    "import { dirname } from 'node:path';",
    "export default { name: 'where', architecture: 'amd64', config: { Labels: { url: import.meta.url, dir: dirname(fileURLToPath(import.meta.url)), cwd: process.cwd() } } };",
    '',
  ].join('\n'));
  const spec = await loadSpec(file);
  assert.deepEqual(spec.config.Labels, { url: `file://${file}`, dir: work, cwd: process.cwd() });
});

test("a spec that prints (console.log, process.stdout.write) leaves the CLI's stdout the digest alone; what it printed is on stderr", async () => {
  const { cp } = await import('node:fs/promises');
  const dir = join(work, 'printing');
  await cp(fileURLToPath(new URL('../../examples/hello', import.meta.url)), dir, { recursive: true });
  const spec = join(dir, 'image.ts');
  const { readFile } = await import('node:fs/promises');
  await writeFile(spec, `console.log('from the spec');\nprocess.stdout.write('written by the spec\\n');\n${await readFile(spec, 'utf8')}`);
  const { runCli } = await import('./helpers/cli.js');
  const r = await runCli(['build', spec, '-o', join(work, 'printing.oci')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580\n');
  assert.match(r.stderr, /^from the spec\nwritten by the spec\n/m);
});
