import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpecError } from '../builder/errors.js';
import { loadSpec } from '../builder/spec/load.js';
import { SpecValidationError } from '../builder/spec/errors.js';
import type { ResolvedSpec } from '../builder/spec/types.js';
import { repoRoot } from './helpers/paths.js';

const fixtures = join(repoRoot, 'test/fixtures/spec');
const HELLO = '/nix/store/9x3l1dx4mmgkgyl5pxhq8j2dzbsbz2ns-hello-2.12.1';

/** What every fixture (image.json, image.yaml, ...) describes, apart from its name. */
function expectFixture(spec: ResolvedSpec, file: string, name: string) {
  assert.equal(spec.file, file);
  assert.equal(spec.name, name);
  assert.equal(spec.tag, '1.0');
  assert.deepEqual(spec.store, { kind: 'directory', dir: join(fixtures, 'store'), storeDir: '/nix/store', storeDirGiven: false, closureFile: undefined, verify: false });
  assert.deepEqual(spec.contents, [HELLO]);
  assert.deepEqual(spec.config.Cmd, ['/bin/hello']);
  assert.deepEqual(spec.config.ExposedPorts, { '8080/tcp': {} });
  assert.deepEqual(spec.directories, [{ path: '/tmp', mode: 0o1777, uid: undefined, gid: undefined, field: 'directories[0]' }]);
  assert.deepEqual(spec.files, [{ path: '/etc/motd', content: { kind: 'text', text: 'hello\n' }, mode: 0o600, uid: undefined, gid: undefined, field: 'files[0]' }]);
}

for (const [ext, name] of [
  ['json', 'json-app'],
  ['yaml', 'yaml-app'],
  ['yml', 'yml-app'],
  ['js', 'js-app'],
  ['cjs', 'cjs-app'],
] as const) {
  test(`loads a .${ext} spec`, async () => {
    const file = join(fixtures, `image.${ext}`);
    expectFixture(await loadSpec(file, {}), file, name);
  });
}

test('loads a .mjs spec whose default export is a function of the load context', async () => {
  const file = join(fixtures, 'image.mjs');
  const spec = await loadSpec(file, {});
  expectFixture(spec, file, 'mjs-app');
  assert.deepEqual(spec.config.Labels, { spec: 'image.mjs' });
});

test('a relative spec path is resolved against the current directory', async () => {
  const spec = await loadSpec(join('test', 'fixtures', 'spec', 'image.json').replace(/^/, `${repoRoot}/`), {});
  assert.equal(spec.file, join(fixtures, 'image.json'));
});

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'imgbuild-spec-load-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("a .ts spec outside the repo imports defineImage and types from 'imgbuild'", async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'image.ts');
  await writeFile(
    file,
    [
      "import { defineImage, type ImageSpec } from 'imgbuild';",
      "const ports: number[] = [8080, 9090];",
      "const spec: ImageSpec = { name: 'ts-app', config: { ExposedPorts: ports.map((p): string => `${p}`) }, directories: [{ path: '/tmp', mode: 0o1777 }] };",
      'export default defineImage(spec);',
      '',
    ].join('\n'),
  );
  const spec = await loadSpec(file, {});
  assert.equal(spec.name, 'ts-app');
  assert.deepEqual(spec.config.ExposedPorts, { '8080/tcp': {}, '9090/tcp': {} });
  assert.equal(spec.directories[0]?.mode, 0o1777);
});

test('a .mts spec with an async factory reads the environment and imports a sibling module', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'shared.mts'), "import type { ImageSpec } from 'imgbuild';\nexport const base: Partial<ImageSpec> = { maxLayers: 7 };\n");
  const file = join(dir, 'image.mts');
  await writeFile(
    file,
    "import { defineImage } from 'imgbuild';\nimport { base } from './shared.mts';\nexport default defineImage(async ({ env }) => ({ ...base, name: 'mts-app', tag: env.APP_TAG }));\n",
  );
  const spec = await loadSpec(file, { env: { APP_TAG: 'from-env' } });
  assert.deepEqual([spec.name, spec.tag, spec.maxLayers], ['mts-app', 'from-env', 7]);
});

test('a changed .ts spec is read again (no module cache)', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'image.ts');
  await writeFile(file, "export default { name: 'first' };\n");
  assert.equal((await loadSpec(file, {})).name, 'first');
  await writeFile(file, "export default { name: 'second' };\n");
  assert.equal((await loadSpec(file, {})).name, 'second');
});

async function loadError(file: string, env: NodeJS.ProcessEnv = {}): Promise<SpecError> {
  try {
    await loadSpec(file, { env });
  } catch (e) {
    assert.ok(e instanceof SpecError, String(e));
    return e;
  }
  assert.fail(`${file} loaded without an error`);
}

test('a TypeScript syntax error names the file, line and column', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'broken.ts');
  await writeFile(file, "export default {\n  name: 'x',\n  tag: ,\n};\n");
  const e = await loadError(file);
  assert.match(e.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot load: .*${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:7`, 's'));
});

test('a module without a default export, or one that throws, is a SpecError', async (t) => {
  const dir = await tempDir(t);
  const named = join(dir, 'named.mjs');
  await writeFile(named, "export const spec = { name: 'x' };\n");
  const e1 = await loadError(named);
  assert.equal(e1.message, `${named}: has no default export`);
  assert.equal(e1.hint, 'end the spec with `export default defineImage({ ... })`');

  const throws = join(dir, 'throws.ts');
  await writeFile(throws, "throw new Error('no spec today');\n");
  assert.equal((await loadError(throws)).message, `${throws}: cannot load: no spec today`);

  const factory = join(dir, 'factory.ts');
  await writeFile(factory, "export default async () => { throw new Error('env missing'); };\n");
  assert.equal((await loadError(factory)).message, `${factory}: the exported function failed: env missing`);
});

test('a TS spec that evaluates to an invalid spec reports every problem', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'bad.ts');
  await writeFile(file, "export default { name: 'App', maxLayers: 0 };\n");
  const e = await loadError(file);
  assert.ok(e instanceof SpecValidationError);
  assert.deepEqual(
    e.issues.map((i) => `${i.field}: ${i.message}`),
    ['name: must be lowercase ("app")', "maxLayers: must be a whole number from 2 to 125, got 0 (containerd's overlay limit is 127 layers)"],
  );
});

test('JSON syntax errors give line and column', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'image.json');
  await writeFile(file, '{\n  "name": "a",,\n  "tag": "b"\n}\n');
  assert.equal((await loadError(file)).message, `${file}: invalid JSON at line 2, column 15: expected a property name in double quotes, found ","`);
  await writeFile(file, '{ "name": "a" ');
  assert.equal((await loadError(file)).message, `${file}: invalid JSON at line 1, column 15: unexpected end of the file`);
  await writeFile(file, '{ "name": "a" } x');
  assert.equal((await loadError(file)).message, `${file}: invalid JSON at line 1, column 17: unexpected "x" after the end of the JSON value`);
});

test('YAML syntax errors give line and column', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'image.yaml');
  await writeFile(file, 'name: a\nconfig:\n  Cmd: [x, y\ntag: b\n');
  assert.match((await loadError(file)).message, new RegExp(`^${file.replace(/[.]/g, '\\.')}: invalid YAML at line \\d+, column \\d+: .+`));
  await writeFile(file, 'name: a\nname: b\n');
  assert.equal((await loadError(file)).message, `${file}: invalid YAML at line 2, column 1: Map keys must be unique`);
});

test('validation problems in YAML and JSON carry the line of the field', async (t) => {
  const dir = await tempDir(t);
  const yaml = join(dir, 'image.yaml');
  await writeFile(yaml, 'name: app\nmaxLayers: 0\nconfig:\n  Env:\n    - A=1\n    - B\n  cmd: [x]\n');
  assert.equal(
    (await loadError(yaml)).message,
    [
      `${yaml}: 3 problems:`,
      "  maxLayers: must be a whole number from 2 to 125, got 0 (containerd's overlay limit is 127 layers) (line 2)",
      '  config.Env[1]: "B" is not of the form "KEY=value" (line 6)',
      '  config.cmd: unknown key; did you mean `Cmd`? (line 7)',
    ].join('\n'),
  );
  const json = join(dir, 'image.json');
  await writeFile(json, '{\n  "name": "app",\n  "files": [\n    { "path": "relative", "content": "" }\n  ]\n}\n');
  assert.equal((await loadError(json)).message, `${json}: files[0].path: "relative" is not an absolute path (it must start with "/") (line 4)`);
});

test('YAML and JSON read a numeric mode as octal digits, as chmod does', async (t) => {
  const dir = await tempDir(t);
  const yaml = join(dir, 'image.yaml');
  await writeFile(yaml, 'name: a\ndirectories:\n  - { path: /a, mode: 0755 }\n  - { path: /b, mode: 755 }\n  - { path: /c, mode: "0700" }\n  - { path: /d, mode: 0o1777 }\n');
  assert.deepEqual((await loadSpec(yaml, {})).directories.map((d) => d.mode), [0o755, 0o755, 0o700, 0o1777]);
  const json = join(dir, 'image.json');
  await writeFile(json, '{ "name": "a", "files": [{ "path": "/x", "content": "", "mode": 644 }] }');
  assert.equal((await loadSpec(json, {})).files[0]?.mode, 0o644);
  await writeFile(json, '{ "name": "a", "files": [{ "path": "/x", "content": "", "mode": 648 }] }');
  assert.equal((await loadError(json)).message, `${json}: files[0].mode: "648" is not an octal mode like "0644" or "1777" (line 1)`);
});

test('an empty YAML file, a missing file and an unknown extension', async (t) => {
  const dir = await tempDir(t);
  const empty = join(dir, 'empty.yaml');
  await writeFile(empty, '# nothing\n');
  assert.equal((await loadError(empty)).message, `${empty}: expected an object, got null`);
  const missing = join(dir, 'missing.json');
  assert.equal((await loadError(missing)).message, `${missing}: no such file`);
  const missingTs = join(dir, 'missing.ts');
  assert.equal((await loadError(missingTs)).message, `${missingTs}: no such file`);
  const toml = join(dir, 'image.toml');
  await writeFile(toml, 'name = "a"\n');
  const e = await loadError(toml);
  assert.equal(e.message, `${toml}: unknown spec file type ".toml"`);
  assert.equal(e.hint, 'use one of .ts, .mts, .cts, .js, .mjs, .cjs, .json, .yaml, .yml');
});

test('SOURCE_DATE_EPOCH from the environment given to loadSpec sets created and mtime', async () => {
  const spec = await loadSpec(join(fixtures, 'image.yaml'), { env: { SOURCE_DATE_EPOCH: '1234567890' } });
  assert.deepEqual([spec.created, spec.mtime], ['2009-02-13T23:31:30Z', 1234567890]);
  const plain = await loadSpec(join(fixtures, 'image.yaml'), {});
  assert.deepEqual([plain.created, plain.mtime], ['1970-01-01T00:00:01Z', 1]);
});

test('a problem of the whole spec gets no line: an invalid SOURCE_DATE_EPOCH with a YAML spec', async () => {
  const file = join(fixtures, 'image.yaml');
  assert.equal((await loadError(file, { SOURCE_DATE_EPOCH: 'soon' })).message, `${file}: SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01, got "soon"`);
});

test('the command line store override wins over the spec', async () => {
  const spec = await loadSpec(join(fixtures, 'image.json'), { overrides: { store: { dir: '/ci/store', storeDir: '/nix/store' } } });
  assert.deepEqual(spec.store, { kind: 'directory', dir: '/ci/store', storeDir: '/nix/store', storeDirGiven: true, closureFile: undefined, verify: false });
});
