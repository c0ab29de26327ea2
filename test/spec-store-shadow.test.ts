// The customisation layer (the top layer) cannot shadow the store: no file or symlink at the
// store dir or a directory above it, nothing inside the store dir, nothing over the Nix
// database includeNixDB writes. Refused with the spec's other problems, or (what copyToRoot
// links, a Nix store's own store dir) before any layer is written; never a silently broken image.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { customisationEntries } from '../builder/customisation/entries.js';
import { SpecValidationError } from '../builder/spec/errors.js';
import { resolveSpec, type SpecOverrides } from '../builder/spec/resolve.js';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { specProblems } from './helpers/spec-problems.js';

const file = '/specs/image.json';
const HELLO = '/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1';
const STAYS = 'the store dir and the directories above it must stay directories';
const INSIDE = "holds the closure's store paths and nothing else: store paths are immutable (add store paths with `contents`; set the owner or mode of their files with `perms`)";

/** The problems of a spec, as `field: message` lines. */
function problems(input: Record<string, unknown>, overrides: SpecOverrides = {}): string[] {
  return specProblems({ name: 'app', ...input }, { file, env: {}, overrides });
}

test('a file at the store dir is refused, naming the field', () => {
  assert.deepEqual(problems({ files: [{ path: '/nix/store', content: 'x' }] }), [
    `files[0].path: /nix/store is the store dir: a file there would replace the directory holding the image's store paths; ${STAYS}`,
  ]);
});

test('a symlink at a directory above the store dir is refused', () => {
  assert.deepEqual(problems({ symlinks: [{ path: '/nix', target: '/tmp' }] }), [
    `symlinks[0].path: /nix holds the store dir /nix/store: a symlink there would replace the store; ${STAYS}`,
  ]);
});

test('a file at /nix and a symlink at /nix/store: both reported at once', () => {
  assert.deepEqual(problems({ files: [{ path: '/nix', content: 'x' }], symlinks: [{ path: '/nix/store', target: '/tmp' }] }), [
    `files[0].path: /nix holds the store dir /nix/store: a file there would replace the store; ${STAYS}`,
    `symlinks[0].path: /nix/store is the store dir: a symlink there would replace the directory holding the image's store paths; ${STAYS}`,
  ]);
});

test('a file inside a store path of the closure is refused: store paths are immutable', () => {
  assert.deepEqual(problems({ copyToRoot: [HELLO], files: [{ path: `${HELLO}/bin/hello`, content: 'x' }] }), [
    `files[0].path: ${HELLO}/bin/hello is inside the store dir /nix/store, which ${INSIDE}`,
  ]);
});

test('a directory inside the store dir is refused too', () => {
  assert.deepEqual(problems({ directories: [{ path: '/nix/store/extra' }] }), [`directories[0].path: /nix/store/extra is inside the store dir /nix/store, which ${INSIDE}`]);
});

test('directories at the store dir and above it are accepted (they set its mode and owner)', () => {
  assert.deepEqual(problems({ directories: [{ path: '/nix', uid: 1000 }, { path: '/nix/store', mode: '1775' }], files: [{ path: '/nix/var/marker', content: '' }] }), []);
});

test("the spec's storeDir is the one protected: /opt for /opt/store, and /nix is then free", () => {
  assert.deepEqual(problems({ store: { storeDir: '/opt/store' }, files: [{ path: '/opt', content: 'x' }, { path: '/nix', content: 'x' }] }), [
    `files[0].path: /opt holds the store dir /opt/store: a file there would replace the store; ${STAYS}`,
  ]);
});

test('--store-dir (an override) is the one protected', () => {
  assert.deepEqual(problems({ symlinks: [{ path: '/srv/store', target: '/tmp' }] }, { store: { storeDir: '/srv/store' } }), [
    `symlinks[0].path: /srv/store is the store dir: a symlink there would replace the directory holding the image's store paths; ${STAYS}`,
  ]);
});

test('the files users/groups generate are checked too, against a store dir under /etc', () => {
  assert.deepEqual(problems({ store: { storeDir: '/etc/passwd/store' }, users: [{ name: 'app', uid: 1000 }] }), [
    `users: /etc/passwd holds the store dir /etc/passwd/store: a file there would replace the store; ${STAYS}`,
  ]);
});

test('a Nix store names its own store dir: with store.kind nix and no storeDir, nothing is refused with the spec', () => {
  assert.deepEqual(problems({ store: { kind: 'nix' }, files: [{ path: '/nix', content: 'x' }] }), []);
});

test('includeNixDB: the database files, GC roots and the directories holding them are refused', () => {
  assert.deepEqual(
    problems({
      includeNixDB: true,
      contents: [HELLO],
      files: [{ path: '/nix/var/nix/db/db.sqlite', content: 'x' }, { path: `/nix/var/nix/gcroots/docker/${basename(HELLO)}`, content: 'x' }],
      symlinks: [{ path: '/nix/var', target: '/tmp' }],
    }),
    [
      'files[0].path: /nix/var/nix/db/db.sqlite is written by includeNixDB (the Nix database and its GC roots)',
      `files[1].path: /nix/var/nix/gcroots/docker/${basename(HELLO)} is written by includeNixDB (the Nix database and its GC roots)`,
      'symlinks[0].path: /nix/var must stay a directory: includeNixDB writes the Nix database under it',
    ],
  );
});

test('includeNixDB: a directory at the database directory and a file beside the database are accepted', () => {
  assert.deepEqual(problems({ includeNixDB: true, directories: [{ path: '/nix/var/nix/db', mode: '0700' }], files: [{ path: '/nix/var/nix/db/big-lock', content: '' }] }), []);
});

let work: string;
before(async () => {
  work = await tempDir('imgbuild-store-shadow-');
});

/** A store dir on disk holding one package `<hash>-<name>` made by `make`, and its store path. */
async function storeWith(name: string, make: (pkgDir: string) => Promise<void>): Promise<{ dir: string; path: string }> {
  const dir = join(work, `store-${name}`);
  const path = `/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc25-${name}`;
  const pkg = join(dir, basename(path));
  await mkdir(pkg, { recursive: true });
  await make(pkg);
  return { dir, path };
}

async function entriesError(input: Record<string, unknown>, storeDirOnDisk: string, storeDir?: string): Promise<string[]> {
  const spec = resolveSpec({ name: 'app', ...input }, { file, env: {} });
  try {
    await customisationEntries(spec, (p) => join(storeDirOnDisk, basename(p)), undefined, storeDir);
  } catch (e) {
    assert.ok(e instanceof SpecValidationError, String(e));
    return e.issues.map((i) => `${i.field}: ${i.message}`);
  }
  assert.fail('no error');
}

test('copyToRoot of a package with a `nix` symlink at its root: refused before any layer, naming copyToRoot[i] and the package', async () => {
  const { dir, path } = await storeWith('profile', async (pkg) => {
    await mkdir(join(pkg, 'bin'));
    await writeFile(join(pkg, 'bin/tool'), '');
    await symlink('/tmp', join(pkg, 'nix'));
  });
  assert.deepEqual(await entriesError({ copyToRoot: [path] }, dir), [
    `copyToRoot[0]: ${path} links /nix (a symlink): /nix holds the store dir /nix/store: a symlink there would replace the store; ${STAYS}`,
  ]);
});

test('copyToRoot of a package holding a nix/store/ tree: one problem for the tree, not one per file', async () => {
  const { dir, path } = await storeWith('nested', async (pkg) => {
    await mkdir(join(pkg, 'nix/store/x/y'), { recursive: true });
    await writeFile(join(pkg, 'nix/store/x/y/f'), '');
  });
  assert.deepEqual(await entriesError({ copyToRoot: [path] }, dir), [`copyToRoot[0]: ${path} links /nix/store/x (a directory): /nix/store/x is inside the store dir /nix/store, which ${INSIDE}`]);
});

test("the spec's entries are checked against the store dir the store reports (a Nix store's own)", async () => {
  const { dir } = await storeWith('unused', async () => {});
  assert.deepEqual(await entriesError({ store: { kind: 'nix' }, files: [{ path: '/opt/store', content: 'x' }] }, dir, '/opt/store'), [
    `files[0].path: /opt/store is the store dir: a file there would replace the directory holding the image's store paths; ${STAYS}`,
  ]);
});

/** Build a JSON spec over the hello example's store with the CLI. */
async function build(extra: Record<string, unknown>) {
  const dir = join(work, `case-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir);
  const specFile = join(dir, 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'shadow/case', architecture: 'amd64', store: { dir: join(repoRoot, 'examples/hello/store') }, contents: [HELLO], copyToRoot: [HELLO], ...extra }));
  const out = join(dir, 'out.oci');
  const cache = await tempDir('imgbuild-store-shadow-cache-');
  const r = await runCli(['build', specFile, '-o', out], { env: { ...process.env, IMGBUILD_CACHE_DIR: cache } });
  return { ...r, specFile, out, cache };
}

for (const [what, extra, field, message] of [
  ['files: [{path: "/nix/store"}]', { files: [{ path: '/nix/store', content: 'x' }] }, 'files[0].path', `/nix/store is the store dir: a file there would replace the directory holding the image's store paths; ${STAYS}`],
  ['symlinks: [{path: "/nix"}]', { symlinks: [{ path: '/nix', target: '/tmp' }] }, 'symlinks[0].path', `/nix holds the store dir /nix/store: a symlink there would replace the store; ${STAYS}`],
  ['files: [{path: "/nix"}]', { files: [{ path: '/nix', content: 'x' }] }, 'files[0].path', `/nix holds the store dir /nix/store: a file there would replace the store; ${STAYS}`],
  ['symlinks: [{path: "/nix/store"}]', { symlinks: [{ path: '/nix/store', target: '/tmp' }] }, 'symlinks[0].path', `/nix/store is the store dir: a symlink there would replace the directory holding the image's store paths; ${STAYS}`],
  ['a file inside the closure\'s hello', { files: [{ path: `${HELLO}/bin/hello`, content: 'x' }] }, 'files[0].path', `${HELLO}/bin/hello is inside the store dir /nix/store, which ${INSIDE}`],
] as const) {
  test(`the CLI: ${what} is error[spec] with the field, exit 1, and nothing is built`, async () => {
    const r = await build(extra);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `error[spec]: ${r.specFile}: ${field}: ${message} (line 1)\n`);
    await assert.rejects(stat(r.out), { code: 'ENOENT' });
    // (compile/ is Node's compile cache of imgbuild's own code, on Node 22.1 and later.)
    assert.deepEqual((await readdir(r.cache).catch(() => [])).filter((n) => n !== 'compile'), [], 'no layer, record or scan was written to the cache');
  });
}

test('the CLI: a directory entry for /nix/store (a mode for the store dir) builds', async () => {
  const r = await build({ directories: [{ path: '/nix/store', mode: '1775' }] });
  assert.equal(r.code, 0, r.stderr);
});
