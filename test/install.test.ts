// imgbuild as a new user installs it, from a fresh clone of the current work: the README's first
// command, `npm pack`, `npm i -g <tarball>`, `npm i -g --install-links git+file://<clone>`,
// `npx imgbuild@<version>` and a project's `npm i git+file://<clone>`. Each gives an `imgbuild`
// that builds a spec importing defineImage from 'imgbuild' (a copy of examples/hello) to the
// same digest as this checkout's CLI. npm talks to a registry on 127.0.0.1 serving the packages
// of package-lock.json from npm's cache (test/helpers/npm-registry.ts) and to nothing else.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { runCli, runCommand, tool } from './helpers/cli.js';
import { lockedPackagesMissingFromCache, startNpmRegistry, type NpmRegistry } from './helpers/npm-registry.js';
import { repoRoot } from './helpers/paths.js';
import { commitAll, copyWorkingTree } from './helpers/repo-copy.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture, unavailable } from './helpers/tools.js';

const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string; files: string[] };

let work: string;
/** A git repository holding the working tree (what `git clone` of this work would give). */
let source: string;
let registry: NpmRegistry | undefined;
/** The spec every install builds, and the digest this checkout's CLI gives it. */
let specDir: string;
let expectedDigest: string;

const fixture = toolFixture(['git'], async () => {
  work = await tempDir('imgbuild-install-');
  source = join(work, 'source');
  await copyWorkingTree(source);
  commitAll(source);
  specDir = join(work, 'spec');
  await cp(join(repoRoot, 'examples/hello'), specDir, { recursive: true, verbatimSymlinks: true });
  const r = await runCli(['build', specDir, '-o', join(work, 'expected.oci')]);
  assert.equal(r.code, 0, r.stderr);
  expectedDigest = await layoutDigest(join(work, 'expected.oci'));
});

after(async () => {
  await registry?.stop();
});

/** The digest an OCI layout's index.json points at (the image, or the index of a multi-platform one). */
async function layoutDigest(layout: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.equal(index.manifests.length, 1);
  return index.manifests[0]!.digest;
}

/** The fixture, and the npm registry on 127.0.0.1 (started with the packed tarball once there is one). */
async function ready(t: import('node:test').TestContext): Promise<boolean> {
  if (!(await fixture.need(t))) return false;
  const missing = await lockedPackagesMissingFromCache(join(repoRoot, 'package-lock.json'));
  if (missing.length > 0) return unavailable(t, `npm's cache lacks ${missing.join(', ')}: run npm ci first (npm test does)`);
  return true;
}

let tarball: string | undefined;
/** The clone the README's first command set up (npm ci and npm link done), when that test ran. */
let readmeClone: string | undefined;
/**
 * `npm pack` in a clone: npm runs prepare (scripts/prepare.mjs compiles dist/, installing the
 * devDependencies first in a clone without them), then packs `files`. In the README test's clone
 * when there is one (prepare then only recompiles), else in a fresh one.
 */
async function packed(): Promise<string> {
  if (tarball) return tarball;
  let clone = readmeClone;
  if (!clone) {
    clone = join(work, 'pack-clone');
    await tool('git', ['clone', '-q', source, clone]);
  }
  const out = join(work, 'packed');
  await mkdir(out);
  const reg = await npmRegistry();
  await npm(['pack', '--pack-destination', out], { cwd: clone, cache: join(work, 'npm-cache-pack'), reg });
  const files = await readdir(out);
  assert.deepEqual(files, [`${pkg.name}-${pkg.version}.tgz`]);
  tarball = join(out, files[0]!);
  return tarball;
}

/** The registry: the lock file's packages, and once packed, imgbuild itself (for npx imgbuild@<version>). */
async function npmRegistry(withTarball?: string): Promise<NpmRegistry> {
  if (registry && (!withTarball || registryHasTarball)) return registry;
  await registry?.stop();
  registry = await startNpmRegistry({ lockFile: join(repoRoot, 'package-lock.json'), tarballs: withTarball ? [withTarball] : [] });
  registryHasTarball = !!withTarball;
  return registry;
}
let registryHasTarball = false;

/** Run npm against the local registry with a cache of its own; fail with its output. */
async function npm(args: string[], opts: { cwd: string; cache: string; reg: NpmRegistry; env?: NodeJS.ProcessEnv }) {
  const env = await opts.reg.npmEnv({ ...process.env, ...opts.env }, opts.cache);
  const r = await runCommand('npm', args, { cwd: opts.cwd, env });
  assert.equal(r.code, 0, `npm ${args.join(' ')} failed:\n${r.stdout.toString()}\n${r.stderr}\nregistry requests:\n${opts.reg.requests().join('\n')}`);
  return r;
}

/** Build the spec with an installed `imgbuild` command; its digest must be this checkout's. */
async function buildWith(cmd: string[], name: string, env: NodeJS.ProcessEnv = process.env, cwd = work): Promise<void> {
  const home = join(work, `home-${name}`);
  await mkdir(home, { recursive: true });
  const out = join(work, `${name}.oci`);
  const r = await runCommand(cmd[0]!, [...cmd.slice(1), 'build', join(specDir, 'image.ts'), '-o', out], {
    cwd,
    env: { ...env, HOME: home, IMGBUILD_CACHE_DIR: join(home, 'imgbuild-cache') },
  });
  assert.equal(r.code, 0, `${cmd.join(' ')} build failed:\n${r.stderr}`);
  assert.match(r.stdout.toString(), new RegExp(`^${expectedDigest}$`, 'm'));
  assert.equal(await layoutDigest(out), expectedDigest);
}

const PATH = process.env.PATH!;

test("the README's first command works in a fresh clone, with `imgbuild` on PATH after it", async (t) => {
  if (!(await ready(t))) return;
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const block = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
  const first = block.split('\n').find((l) => l.trim() && !l.startsWith('#'))!;
  assert.match(first, /\bimgbuild build\b/);
  assert.doesNotMatch(first, /dist\/builder\/cli\.js/);
  const clone = join(work, 'readme-clone');
  await tool('git', ['clone', '-q', source, clone]);
  // `npm link` as root writes to npm's global prefix (/usr/local or /usr); here a temp prefix stands in for it.
  const prefix = join(work, 'readme-prefix');
  const home = join(work, 'home-readme');
  await mkdir(home, { recursive: true });
  const env = await (await npmRegistry()).npmEnv({ ...process.env, HOME: home, IMGBUILD_CACHE_DIR: join(home, 'imgbuild-cache'), PATH: `${prefix}/bin:${PATH}` }, join(work, 'npm-cache-readme'));
  const r = await runCommand('bash', ['-euo', 'pipefail', '-c', first], { cwd: clone, env: { ...env, npm_config_prefix: prefix } });
  assert.equal(r.code, 0, `${first}\n${r.stdout.toString()}\n${r.stderr}`);
  assert.match(r.stdout.toString(), /^sha256:[0-9a-f]{64}$/m);
  // The spec every other test builds is a copy of examples/hello.
  assert.equal(await layoutDigest(join(clone, 'hello.oci')), expectedDigest);
  // Without npm link: npx runs the checkout's own bin.
  const npx = await runCommand('npx', ['--no-install', 'imgbuild', '--version'], { cwd: clone, env: { ...env, npm_config_offline: 'true' } });
  assert.equal(npx.stdout.toString().trim(), pkg.version, npx.stderr);
  readmeClone = clone;
});

test('npm pack of a fresh clone compiles dist/ and ships the LICENSE, changelog, folder READMEs, docs, types, and source maps that carry their sources', async (t) => {
  if (!(await ready(t))) return;
  const entries = await tarEntries(await packed());
  const files = [...entries.keys()].map((f) => f.replace(/^package\//, '')).sort();
  for (const f of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'builder/layer/README.md', 'builder/spec/README.md', 'builder/store/README.md', 'layering/README.md', 'registry-client/README.md', 'docs/architecture.md', 'docs/library.md', 'docs/reproducibility.md']) {
    assert.ok(files.includes(f), `${f} is in the package`);
  }
  for (const entry of ['builder', 'layering', 'registry-client', 'oci']) {
    assert.ok(files.includes(`dist/${entry}/index.js`) && files.includes(`dist/${entry}/index.d.ts`), `dist/${entry}/index.{js,d.ts}`);
  }
  assert.ok(files.includes('dist/builder/cli.js'));
  // The bin is the bundled CLI (scripts/bundle-cli.mjs), with its per-command chunks.
  assert.ok(files.includes('dist/builder/imgbuild.js'));
  assert.ok(files.some((f) => /^dist\/builder\/imgbuild-[A-Z0-9]+\.js$/.test(f)), 'the bundle\'s chunks are packed');
  assert.match(entries.get('package/LICENSE')!.toString(), /^MIT License\n\nCopyright \(c\) \d{4} the imgbuild authors\n/);
  // Nothing of the tests, benchmarks, build state or TypeScript sources (their text is in the maps).
  assert.deepEqual(files.filter((f) => /^dist\/(test|bench)\/|tsbuildinfo|(?<!\.d)\.ts$/.test(f)), []);
  // Every source map carries the text of each source it names.
  const maps = files.filter((f) => f.endsWith('.map'));
  assert.ok(maps.length > 100);
  for (const m of maps) {
    const map = JSON.parse(entries.get(`package/${m}`)!.toString()) as { sources: string[]; sourcesContent?: (string | null)[] };
    assert.equal(map.sourcesContent?.length, map.sources.length, `${m} carries its sources`);
    assert.ok(map.sourcesContent!.every((s) => typeof s === 'string' && s.length > 0), m);
  }
  // Every entry point's types and code exist in the package.
  const manifest = JSON.parse(entries.get('package/package.json')!.toString()) as { exports: Record<string, string | { types: string; default: string }>; bin: Record<string, string>; scripts: Record<string, string> };
  for (const [sub, target] of Object.entries(manifest.exports)) {
    for (const f of typeof target === 'string' ? [target] : [target.types, target.default]) {
      // A subpath pattern (`./schemas/*`) names a folder the package ships.
      const shipped = f.endsWith('/*') ? files.some((p) => p.startsWith(f.replace(/^\.\//, '').slice(0, -1))) : files.includes(f.replace(/^\.\//, ''));
      assert.ok(shipped, `exports["${sub}"]: ${f}`);
    }
  }
  assert.ok(files.includes(manifest.bin.imgbuild!));
  assert.equal(manifest.scripts.prepare, 'node scripts/prepare.mjs');
});

test('npm i -g <packed tarball> into a fresh prefix gives an imgbuild that builds a spec importing defineImage', async (t) => {
  if (!(await ready(t))) return;
  const file = await packed();
  const prefix = join(work, 'prefix-tarball');
  await npm(['install', '-g', '--prefix', prefix, file], { cwd: work, cache: join(work, 'npm-cache-tarball'), reg: await npmRegistry() });
  await buildWith([join(prefix, 'bin/imgbuild')], 'tarball');
  const version = await runCommand(join(prefix, 'bin/imgbuild'), ['--version'], { env: { ...process.env } });
  assert.equal(version.stdout.toString().trim(), pkg.version);
});

test('npm i -g --install-links git+file://<clone> runs prepare without devDependencies installed and gives a working imgbuild', async (t) => {
  if (!(await ready(t))) return;
  const prefix = join(work, 'prefix-git');
  // Why --install-links: for any package with a prepare script, a plain `npm i -g <git url>`
  // leaves the global package as a symlink into npm's temporary clone, deleted when the install
  // ends (npm/cli#3692); with it, npm installs a copy. README and CHANGELOG say so.
  // And npm installs no devDependencies in that clone (npm/cli#8440): scripts/prepare.mjs installs them itself.
  await installGlobalFromGit(t, prefix, [], 'npm-cache-git');
  await buildWith([join(prefix, 'bin/imgbuild')], 'git');
});

/** `npm i -g --install-links <flags> --prefix <prefix> git+file://<clone>`. */
async function installGlobalFromGit(t: import('node:test').TestContext, prefix: string, flags: string[], cacheName: string): Promise<void> {
  const reg = await npmRegistry();
  const install = () => npm(['install', '-g', '--install-links', ...flags, '--prefix', prefix, `git+file://${source}`], { cwd: work, cache: join(work, cacheName), reg });
  // Under load, npm's own git-dependency preparation (its nested `npm install --force` in the
  // final directory) sometimes fails removing a folder it is still extracting (ENOTEMPTY, seen on
  // zod's files; not our prepare script's doing): that race, and only it, gets one more try.
  await install().catch(async (e: Error) => {
    if (!/ENOTEMPTY/.test(e.message)) throw e;
    t.diagnostic(`npm's ENOTEMPTY race in git dep preparation; installing again:\n${e.message.slice(0, 400)}`);
    await install();
  });
}

test('prepare, run by an npm given --allow-scripts in a clone without devDependencies, installs them and compiles', async (t) => {
  if (!(await ready(t))) return;
  // npm ≥ 11.19 suggests `npm i -g --allow-scripts=imgbuild` for a git install, and passes the flag
  // to the prepare it runs as npm_config_allow_scripts; prepare's own devDependency install is
  // project-scoped, where npm refuses that flag (EALLOWSCRIPTS), so prepare must leave it out.
  const clone = join(work, 'prepare-allow-clone');
  await tool('git', ['clone', '-q', source, clone]);
  const reg = await npmRegistry();
  const env = { ...(await reg.npmEnv({ ...process.env }, join(work, 'npm-cache-prepare-allow'))), npm_config_allow_scripts: 'imgbuild', npm_config_global: 'true' };
  const r = await runCommand(process.execPath, [join(clone, 'scripts/prepare.mjs')], { cwd: clone, env });
  assert.equal(r.code, 0, `prepare failed:\n${r.stderr}`);
  assert.match(r.stderr, /TypeScript is not installed here/);
  const version = await runCommand(process.execPath, [join(clone, 'dist/builder/imgbuild.cjs'), '--version'], { env: { ...process.env } });
  assert.equal(version.stdout.toString().trim(), pkg.version);
});

test('npx imgbuild@<version> runs the published package; in a project that installed it from git, npx imgbuild runs its bin', async (t) => {
  if (!(await ready(t))) return;
  const reg = await npmRegistry(await packed());
  const cache = join(work, 'npm-cache-npx');
  const env = await reg.npmEnv({ ...process.env }, cache);
  await buildWith(['npx', '--yes', `${pkg.name}@${pkg.version}`], 'npx', env);

  const project = join(work, 'project');
  await mkdir(project);
  await npm(['init', '-y'], { cwd: project, cache, reg });
  await npm(['install', `git+file://${source}`], { cwd: project, cache, reg });
  await buildWith(['npx', '--no-install', 'imgbuild'], 'project', { ...env, npm_config_offline: 'true' }, project);
  const library = await runCommand(process.execPath, ['--input-type=module', '-e', "import { defineImage } from 'imgbuild'; console.log(typeof defineImage)"], { cwd: project });
  assert.equal(library.stdout.toString(), 'function\n', library.stderr);
});

/** path → bytes of every file in a .tgz. */
async function tarEntries(file: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
      stream.on('end', () => {
        if (header.type === 'file') out.set(header.name, Buffer.concat(chunks));
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(gunzipSync(await readFile(file)));
  await done;
  return out;
}
