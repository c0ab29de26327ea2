// A spec that fails to load is an error[spec] naming the file and saying what it threw or
// exported, whatever the value: never "internal error", never a crash of the CLI.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpecError } from '../builder/errors.js';
import { thrownText } from '../builder/spec/errors.js';
import { loadSpec } from '../builder/spec/load.js';
import { resolveSpec } from '../builder/spec/resolve.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';

let work: string;
let n = 0;

before(async () => {
  work = await tempDir('imgbuild-spec-load-failures-');
});

/** Write `body` as a spec file of extension `ext` (a fresh name each time) and return its path. */
async function specFile(body: string, ext = 'ts'): Promise<string> {
  const file = join(work, `spec-${++n}.${ext}`);
  await writeFile(file, body);
  return file;
}

/** The SpecError loading `file` gives (the test fails if it loads, or fails otherwise). */
async function loadError(file: string): Promise<SpecError> {
  try {
    await loadSpec(file, {});
  } catch (e) {
    assert.ok(e instanceof SpecError, `not a SpecError: ${String(e)}`);
    return e;
  }
  assert.fail(`${file} loaded`);
}

test('thrownText: every kind of thrown value as text', () => {
  assert.equal(thrownText(new Error('no spec today')), 'no spec today');
  assert.equal(thrownText(new TypeError('')), 'TypeError');
  assert.equal(thrownText('a string'), 'a string');
  assert.equal(thrownText(''), 'an empty string');
  assert.equal(thrownText(null), 'null (not an Error)');
  assert.equal(thrownText(undefined), 'undefined (not an Error)');
  assert.equal(thrownText(Symbol('s')), 'Symbol(s) (not an Error)');
  assert.equal(thrownText(42), '42 (a number, not an Error)');
  assert.equal(thrownText(10n), '10 (a bigint, not an Error)');
  assert.equal(thrownText({ code: 1 }), 'an object (not an Error): { code: 1 }');
  assert.equal(thrownText({ message: 'like an Error' }), 'like an Error');
  assert.equal(thrownText(Object.create(null)), 'an object (not an Error): [Object: null prototype] {}');
  assert.equal(thrownText(new Proxy({}, { get: () => { throw new Error('trap'); } })), 'a value that cannot be shown (reading it threw)');
});

test('a .ts spec doing `throw null`: cannot load, saying it threw null', async () => {
  const file = await specFile('throw null;\n');
  assert.equal((await loadError(file)).message, `${file}: cannot load: null (not an Error)`);
});

test('an exported function throwing undefined: the function failed, saying it threw undefined', async () => {
  const file = await specFile('export default () => { throw undefined; };\n');
  assert.equal((await loadError(file)).message, `${file}: the exported function failed: undefined (not an Error)`);
});

test('an async exported function rejecting with a symbol: the function failed, naming the symbol', async () => {
  const file = await specFile("export default async () => { throw Symbol('nope'); };\n");
  assert.equal((await loadError(file)).message, `${file}: the exported function failed: Symbol(nope) (not an Error)`);
});

test('a spec throwing an object that is not an Error: cannot load, showing the object', async () => {
  const file = await specFile('throw Object.assign(Object.create(null), { code: 7 });\n');
  assert.equal((await loadError(file)).message, `${file}: cannot load: an object (not an Error): [Object: null prototype] { code: 7 }`);
});

test('`export default null`: says the default export is null and what it must be', async () => {
  const file = await specFile('export default null;\n');
  const e = await loadError(file);
  assert.equal(e.message, `${file}: its default export is null; it must be the image spec object, or a function returning it`);
  assert.equal(e.hint, 'end the spec with `export default defineImage({ ... })`');
});

test('`export default undefined`: says the default export is undefined (not an unknown key "default")', async () => {
  const file = await specFile('export default undefined;\n');
  assert.equal((await loadError(file)).message, `${file}: its default export is undefined; it must be the image spec object, or a function returning it`);
});

test('a CommonJS spec with `module.exports = null`: says so', async () => {
  const file = await specFile('module.exports = null;\n', 'cjs');
  assert.equal((await loadError(file)).message, `${file}: module.exports is null; it must be the image spec object, or a function returning it`);
});

test("a spec's own `null.then` is reported as what it threw, not as a null default export", async () => {
  const file = await specFile("const x: any = null;\nx.then;\nexport default { name: 'a' };\n");
  assert.equal((await loadError(file)).message, `${file}: cannot load: Cannot read properties of null (reading 'then')`);
});

test('a getter of the exported object that throws during validation: error naming the field', async () => {
  const file = await specFile("export default { name: 'a', files: [{ path: '/x', get content(): string { throw new Error('no content'); } }] };\n");
  const e = await loadError(file);
  assert.equal(e.message, `${file}: files[0].content: reading it threw (a getter or Proxy trap of the spec): no content`);
  assert.equal(e.hint, "a spec's value should be plain data: compute it before it is exported, not in getters or Proxy traps");
});

test('a Proxy whose get trap throws a string for one key: error naming that key', async () => {
  const file = await specFile("export default new Proxy({ name: 'a' }, { get(t, k) { if (k === 'config') throw 'no config'; return Reflect.get(t, k); } });\n");
  assert.equal((await loadError(file)).message, `${file}: config: reading it threw (a getter or Proxy trap of the spec): no config`);
});

test('a Proxy whose ownKeys trap throws null: error about the exported value', async () => {
  const file = await specFile('export default new Proxy({}, { ownKeys() { throw null; } });\n');
  assert.equal((await loadError(file)).message, `${file}: reading the exported value threw (a getter or Proxy trap of the spec): null (not an Error)`);
});

test('a getter that throws only the first time: error saying validation ran the spec\'s code', async () => {
  const file = await specFile("let n = 0;\nexport default { get name() { if (n++ === 0) throw new Error('once'); return 'a'; } };\n");
  assert.equal((await loadError(file)).message, `${file}: validating it ran a getter or Proxy trap of the spec, which threw: once`);
});

test('resolveSpec (the library) also names the field a throwing getter is at', () => {
  const input = { name: 'a', config: { get Cmd(): string[] { throw new RangeError('no cmd'); } } };
  assert.throws(() => resolveSpec(input, { file: '/specs/image.ts', env: {} }), { name: 'SpecError', message: '/specs/image.ts: config.Cmd: reading it threw (a getter or Proxy trap of the spec): no cmd' });
});

test('a class instance whose name is a prototype getter still loads (validation reads it as before)', async () => {
  const file = await specFile("class Spec { get name() { return 'cls'; } }\nexport default new Spec();\n");
  assert.equal((await loadSpec(file, {})).name, 'cls');
});

// The next two run the CLI: the test runner itself listens for uncaught exceptions and rejections.
test('the CLI: a spec that throws null from a timer while it loads is error[spec], not an internal error', async () => {
  const file = await specFile('export default () => new Promise(() => { setTimeout(() => { throw null; }, 5); });\n');
  const r = await runCli(['build', file, '-o', join(work, 'timer.oci')]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error[spec]: ${file}: threw while it was loaded (in a timer or callback): null (not an Error)\n`);
});

test('the CLI: a promise the spec rejects and leaves unhandled fails the load, and nothing is built', async () => {
  const file = await specFile("Promise.reject(null);\nexport default { name: 'a', architecture: 'amd64' };\n");
  const out = join(work, 'rejected.oci');
  const r = await runCli(['build', file, '-o', out]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error[spec]: ${file}: a promise it made was rejected and nothing handled the rejection: null (not an Error)\n`);
  await assert.rejects(stat(out), { code: 'ENOENT' });
});

test('a YAML alias bomb (billion laughs) is error[spec] naming the file, not an internal error', async () => {
  const lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'];
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i);
    lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${prev}`).join(', ')}]`);
  }
  const file = await specFile(`name: bomb\nlabels:\n${lines.map((l) => `  ${l}`).join('\n')}\n`, 'yaml');
  const e = await loadError(file);
  assert.equal(e.message, `${file}: invalid YAML: its aliases expand too far (more than 100 copies of aliased nodes), as in an alias bomb ("billion laughs")`);
  assert.equal(e.hint, 'write the values out, or use fewer aliases of nodes that hold aliases');
});

test('YAML aliases used a few times still load', async () => {
  const file = await specFile('name: app\nconfig:\n  Cmd: &cmd [/bin/app, --serve]\n  Entrypoint: *cmd\n', 'yaml');
  assert.deepEqual((await loadSpec(file, {})).config.Entrypoint, ['/bin/app', '--serve']);
});

test('the CLI: a .ts spec doing `throw null` is error[spec], exit 1, no "internal error"', async () => {
  const file = await specFile('throw null;\n');
  const r = await runCli(['build', file, '-o', join(work, 'never.oci')]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error[spec]: ${file}: cannot load: null (not an Error)\n`);
});
