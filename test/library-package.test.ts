// The library as a user gets it: a fresh TypeScript project installs the packed tarball and runs
// the examples of docs/library.md, as written there, against a registry on 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

let work: string;
let project: string;
let registry: RunningRegistry | undefined;

/** docker-registry, started by the first test that needs it. */
const registryFixture = toolFixture(['docker-registry'], async () => {
  registry = await startRegistry();
});

/** The ```ts blocks of docs/library.md, by the file name on their first line (`// copy.ts`). */
async function docExamples(): Promise<Map<string, string>> {
  const text = await readFile(join(repoRoot, 'docs/library.md'), 'utf8');
  const out = new Map<string, string>();
  for (const m of text.matchAll(/```ts\n\/\/ ([\w-]+\.ts)\n([\s\S]*?)```/g)) out.set(m[1]!, `// ${m[1]}\n${m[2]}`);
  return out;
}

/**
 * A project depending on the tarball, TypeScript and Node's types, with a lock file pinning the
 * versions the repository's own lock file resolved, so `npm ci --offline` installs them from
 * npm's cache (an offline install cannot resolve version ranges).
 */
async function writeProject(tarball: string): Promise<void> {
  type Lock = { packages: Record<string, { version?: string; resolved?: string; integrity?: string; dependencies?: Record<string, string>; dev?: boolean; [k: string]: unknown }> };
  const ours = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8')) as Lock;
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const dependencies = { imgbuild: `file:${tarball}`, typescript: pkg.devDependencies.typescript!, '@types/node': pkg.devDependencies['@types/node']! };
  const packages: Lock['packages'] = { '': { name: 'fresh', dependencies } };
  for (const [path, entry] of Object.entries(ours.packages)) {
    if (path === '') continue;
    const { dev: _, ...rest } = entry;
    packages[path] = rest;
  }
  const integrity = `sha512-${createHash('sha512').update(await readFile(tarball)).digest('base64')}`;
  packages['node_modules/imgbuild'] = { version: pkg.version, resolved: `file:${tarball}`, integrity, dependencies: pkg.dependencies, bin: { imgbuild: 'dist/builder/cli.js' } };
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'fresh', private: true, type: 'module', dependencies }));
  await writeFile(join(project, 'package-lock.json'), JSON.stringify({ name: 'fresh', lockfileVersion: 3, requires: true, packages }));
}

before(async () => {
  work = await tempDir('imgbuild-library-');
  project = join(work, 'project');
  await mkdir(project);
  // The tarball npm would publish (dist is compiled by the test command before the suite runs).
  await tool('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: repoRoot });
  const tarball = (await readdir(work)).find((f) => f.endsWith('.tgz'))!;
  await writeProject(join(work, tarball));
  await writeFile(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', skipLibCheck: false } }));
  // --offline: the packages come from npm's cache (filled by the suite's own `npm ci`); a test sends nothing past 127.0.0.1.
  await tool('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: project });
  for (const [name, code] of await docExamples()) await writeFile(join(project, name), code);
});

after(async () => {
  await registry?.stop();
});

test('docs/library.md has the three examples the tests run', async () => {
  assert.deepEqual([...(await docExamples()).keys()], ['build-and-push.ts', 'copy.ts', 'read-file.ts']);
});

test('the examples compile against the installed package with strict TypeScript', async () => {
  await tool(join(project, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: project });
  assert.deepEqual((await readdir(join(project, 'out'))).sort(), ['build-and-push.js', 'copy.js', 'read-file.js']);
});

test('the installed package declares @types/node, which its declarations use, as an optional peer dependency, and docs/library.md says to install it', async () => {
  const pkg = JSON.parse(await readFile(join(project, 'node_modules/imgbuild/package.json'), 'utf8')) as { peerDependencies?: Record<string, string>; peerDependenciesMeta?: Record<string, unknown> };
  assert.equal(pkg.peerDependencies?.['@types/node'], '>=20');
  assert.deepEqual(pkg.peerDependenciesMeta?.['@types/node'], { optional: true });
  assert.match(await readFile(join(project, 'node_modules/imgbuild/dist/builder/model/layer.d.ts'), 'utf8'), /from 'node:stream'/);
  assert.match(await readFile(join(repoRoot, 'docs/library.md'), 'utf8'), /npm install -D @types\/node/);
});

/** Run one compiled example with HOME and TMPDIR empty, so anything it writes outside its output shows. */
async function runExample(name: string, home: string) {
  const env = { PATH: process.env.PATH!, HOME: home, TMPDIR: join(home, 'tmp'), REGISTRY: registry!.host };
  await mkdir(env.TMPDIR, { recursive: true });
  const r = await runCommand(process.execPath, [join(project, 'out', name)], { cwd: project, env });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString();
}

test('build from a spec object and push; copy to a second repository; read one file of a layer from the registry', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const home = join(work, 'home');
  await mkdir(home);
  const before = (await readdir(project)).sort();

  const built = await runExample('build-and-push.js', home);
  assert.match(built, /^built sha256:[0-9a-f]{64}\npushed 127\.0\.0\.1:\d+\/demo\/hello@sha256:[0-9a-f]{64} 2 blobs uploaded\n$/);
  // No cache configured: nothing written in HOME (~/.cache), TMPDIR or the working directory.
  assert.deepEqual(await readdir(home), ['tmp']);
  assert.deepEqual(await readdir(join(home, 'tmp')), []);
  assert.deepEqual((await readdir(project)).sort(), before);

  const copied = await runExample('copy.js', home);
  assert.match(copied, /^copied 127\.0\.0\.1:\d+\/demo\/hello-copy@sha256:[0-9a-f]{64} 2 mounted, 0 uploaded\n$/);
  const digest = built.match(/built (sha256:[0-9a-f]{64})/)![1];
  assert.equal(copied.match(/@(sha256:[0-9a-f]{64})/)![1], digest);

  const read = await runExample('read-file.js', home);
  assert.equal(read, 'etc etc/motd\nbuilt by imgbuild\n');
});

test('the installed package ships the JSON Schemas of the --json documents as imgbuild/schemas/<name>.schema.json', async () => {
  const script = "const p = (await import('node:module')).createRequire(import.meta.url).resolve('imgbuild/schemas/build.schema.json'); process.stdout.write(JSON.parse((await import('node:fs')).readFileSync(p, 'utf8')).title)";
  const r = await runCommand(process.execPath, ['--input-type=module', '-e', script], { cwd: project });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), 'imgbuild build --json');
});
