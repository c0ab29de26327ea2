import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, basename } from 'node:path';
import { NixStoreSource, type NixQueryMethod } from '../builder/store/nix-source.js';
import { ClosureFileStoreSource } from '../builder/store/closure-file-source.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { parseClosureFile } from '../builder/store/closure-file.js';
import { openStoreSource } from '../builder/store/open.js';
import { nixDbRegistration } from '../builder/store/registration.js';
import { nixDbEntries, writeNixDb } from '../builder/customisation/nix-db.js';
import { StoreError } from '../builder/errors.js';
import type { ClosureGraph } from '../layering/types.js';
import { toolFixture, toolPath } from './helpers/tools.js';
import { makeTestNix, makeWritable, shDrv, type TestNix } from './helpers/nix.js';

// One isolated Nix store for the whole file: a data path added with nix-store --add, and
// derivations built by /bin/sh whose outputs reference each other and themselves.
let nix: TestNix;
let data: string;
let app: string;
let lib: string;
let appDrv: string;
/** A plain copy of the store (what another CI step would get). */
let copy: string;


const EXPR = (dataPath: string): string => `let
  data = builtins.storePath ${JSON.stringify(dataPath)};
  lib = ${shDrv('lib', 'mkdir -p $out/lib; echo ${data}/share/readme > $out/lib/conf; echo $out > $out/lib/self')};
  app = ${shDrv('app', 'mkdir -p $out/bin; printf "#!/bin/sh\\nexec ${lib}/lib/conf\\n" > $out/bin/app; chmod +x $out/bin/app; ln -s ${lib}/lib $out/libdir')};
  lonely = ${shDrv('lonely', 'echo alone > $out')};
  graph = derivation {
    name = "graph"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
    exportReferencesGraph = [ "closure" app ];
    args = [ "-c" "cp closure $out; true" ]; # see shDrv: the shell, not cp, must exit last
  };
  attrs = derivation {
    name = "attrs"; system = builtins.currentSystem; builder = "/bin/bash";
    __structuredAttrs = true;
    exportReferencesGraph.closure = [ app ];
    args = [ "-c" ". .attrs.sh; /bin/cp .attrs.json \\\${outputs[out]}; true" ];
  };
in { inherit app lib lonely graph attrs; }`;

/** The file's Nix store, made by the first test that needs it. */
const nixStore = toolFixture(['nix', 'nix-store', 'nix-build', 'nix-instantiate'], () => {
  nix = makeTestNix();
  data = nix.add('data', { 'share/readme': 'text\n', 'bin/tool': { content: '#!/bin/sh\n', executable: true } });
  const file = join(nix.root, 'graph.nix');
  writeFileSync(file, EXPR(data));
  app = nix.run('nix-build', ['--no-out-link', file, '-A', 'app']).trim();
  lib = nix.run('nix-build', ['--no-out-link', file, '-A', 'lib']).trim();
  appDrv = nix.run('nix-instantiate', [file, '-A', 'app']).trim();
  copy = join(nix.root, 'ci-store');
  mkdirSync(copy);
  for (const p of nix.run('nix-store', ['--query', '--requisites', app]).trim().split('\n')) {
    cpSync(p, join(copy, basename(p)), { recursive: true, verbatimSymlinks: true });
  }
});

after(() => nix?.cleanup());

const requisites = (roots: string[]): string[] =>
  nix.run('nix-store', ['--query', '--requisites', ...roots]).trim().split('\n').sort();

/** Asserts `g` is exactly what nix-store --query says: same paths, same reference edges, same sizes. */
function assertMatchesNix(g: ClosureGraph, roots: string[]): void {
  assert.deepEqual(g.paths.map((p) => p.path), requisites(roots));
  for (const p of g.paths) {
    const refs = nix.run('nix-store', ['--query', '--references', p.path]).trim().split('\n').filter(Boolean).sort();
    assert.deepEqual(p.references, refs, `references of ${p.path}`);
    assert.equal(p.narSize, Number(nix.run('nix-store', ['--query', '--size', p.path]).trim()), `narSize of ${p.path}`);
  }
}

const open = (method: NixQueryMethod = 'auto', verify = false): Promise<NixStoreSource> =>
  NixStoreSource.open({ env: nix.env, cwd: nix.root, method, verify });

for (const method of ['path-info', 'dump-db', 'query'] as const) {
  test(`the Nix source (${method}) gives nix-store's closure: same paths, references and NAR sizes`, async (t) => {
    if (!(await nixStore.need(t))) return;
    const src = await open(method);
    const g = await src.closure([app]);
    assert.deepEqual(g.roots, [app]);
    assert.equal(g.paths.length, 3);
    // Edges exist (so comparing them is not vacuous): app -> lib, lib -> data and lib -> itself.
    assert.deepEqual(g.paths.find((p) => p.path === app)?.references, [lib]);
    assert.deepEqual(g.paths.find((p) => p.path === lib)?.references, [data, lib].sort());
    assertMatchesNix(g, [app]);
  });
}

test('without the nix command, the Nix source falls back to nix-store and gives the same closure', async (t) => {
  if (!(await nixStore.need(t))) return;
  // A PATH holding only nix-store and nix-instantiate (multi-call links to the nix binary).
  const bin = join(nix.root, 'old-bin');
  mkdirSync(bin, { recursive: true });
  const nixBin = toolPath('nix');
  for (const name of ['nix-store', 'nix-instantiate']) if (!existsSync(join(bin, name))) symlinkSync(nixBin, join(bin, name));
  const src = await NixStoreSource.open({ env: { ...nix.env, PATH: bin } });
  const g = await src.closure([app]);
  assert.deepEqual(g, await (await open('path-info')).closure([app]));
  assertMatchesNix(g, [app]);
  // And the explicit path-info method does not fall back: it says what is missing.
  const strict = await NixStoreSource.open({ env: { ...nix.env, PATH: bin }, method: 'path-info' });
  await assert.rejects(strict.closure([app]), { name: 'StoreError', message: 'nix is not installed or not on PATH' });
});

test('the Nix source uses the store dir Nix reports (NIX_STORE_DIR), not /nix/store', async (t) => {
  if (!(await nixStore.need(t))) return;
  const src = await open();
  assert.equal(src.storeDir, nix.storeDir);
  assert.equal(src.fsPath(app), app);
});

test('openStoreSource opens each kind on the same store, and they agree', async (t) => {
  if (!(await nixStore.need(t))) return;
  const saved = { ...process.env };
  t.after(() => {
    for (const k of ['NIX_STORE_DIR', 'NIX_STATE_DIR', 'NIX_CONF_DIR', 'NIX_LOG_DIR', 'NIX_REMOTE', 'HOME']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  // The factory reads the environment, as the CLI would.
  Object.assign(process.env, nix.env);
  const fromNix = await openStoreSource({ kind: 'nix', storeDir: nix.storeDir, verify: true });
  assert.equal(fromNix.description, `Nix store ${nix.storeDir}`);
  const fromFile = await openStoreSource({ kind: 'closure-file', closureFile: exportClosure('registration'), dir: copy, verify: true });
  assert.equal(fromFile.description, `closure file ${join(nix.root, 'closure-registration')} (registration) with files in ${copy} (as ${nix.storeDir})`);
  const fromDir = await openStoreSource({ kind: 'directory', dir: copy, storeDir: nix.storeDir, cacheDir: false });
  assert.equal(fromDir.description, `directory ${copy} (as ${nix.storeDir})`);
  const [a, b, c] = [await fromNix.closure([app]), await fromFile.closure([app]), await fromDir.closure([app])];
  assert.deepEqual(b, a);
  assert.deepEqual(c, { ...a, paths: a.paths.map(({ narHash: _h, ...rest }) => rest) });
});

test('a spec expecting another store dir than Nix uses is refused', async (t) => {
  if (!(await nixStore.need(t))) return;
  await assert.rejects(NixStoreSource.open({ env: nix.env, storeDir: '/nix/store' }), {
    name: 'StoreError',
    message: `the spec expects the store dir /nix/store, but Nix uses ${nix.storeDir}`,
  });
});

test('installables are realised: a .drv (every output) and a flake output', async (t) => {
  if (!(await nixStore.need(t))) return;
  const system = JSON.parse(nix.run('nix-instantiate', ['--eval', '--expr', 'builtins.currentSystem'])) as string;
  const flakeDir = join(nix.root, 'flake');
  mkdirSync(flakeDir);
  writeFileSync(
    join(flakeDir, 'flake.nix'),
    `{ outputs = { self }: { packages.${system}.hi = derivation { name = "hi"; system = "${system}"; builder = "/bin/sh"; args = [ "-c" "echo hi > $out" ]; }; }; }\n`, // echo is a builtin: no race (see shDrv)
  );
  const src = await NixStoreSource.open({ env: nix.env, cwd: flakeDir });
  const [fromDrv, fromFlake] = [await src.realise([appDrv]), await src.realise(['.#hi'])];
  assert.deepEqual(fromDrv, [app]);
  assert.equal(fromFlake.length, 1);
  assert.match(fromFlake[0]!, new RegExp(`^${nix.storeDir}/[0-9a-z]{32}-hi$`));
  const g = await src.closure(['.#hi', appDrv]);
  assert.deepEqual(g.roots, [fromFlake[0], app]);
  assertMatchesNix(g, [fromFlake[0]!, app]);
});

test('a store path Nix does not have is refused, naming it', async (t) => {
  if (!(await nixStore.need(t))) return;
  const missing = `${nix.storeDir}/${'0'.repeat(31)}a-missing`;
  const src = await open();
  await assert.rejects(src.closure([missing]), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.equal(e.message, `${missing} is not a valid path in the Nix store (not built, or garbage-collected)`);
    assert.deepEqual(e.paths, [missing]);
    return true;
  });
});

test('the same store copied to a plain directory gives the same closure through the scanning source', async (t) => {
  if (!(await nixStore.need(t))) return;
  const fromNix = await (await open()).closure([app]);
  const scanned = await new DirectoryStoreSource(copy, nix.storeDir, { cacheDir: false }).closure([app]);
  assert.deepEqual(
    scanned.paths,
    fromNix.paths.map(({ narHash: _h, ...rest }) => rest),
  );
});

/** Step 1 of a CI flow: a closure file written by Nix, in one of the formats. */
function exportClosure(format: string): string {
  const file = join(nix.root, `closure-${format}`);
  const graphNix = join(nix.root, 'graph.nix');
  switch (format) {
    case 'path-info-array':
      writeFileSync(file, nix.run('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', '--recursive', app]));
      break;
    case 'path-info-object': {
      // Nix ≥ 2.19 prints an object keyed by path (without "path" in each value); Nix 2.8 cannot, so reshape its output.
      const arr = JSON.parse(nix.run('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', '--recursive', app])) as Array<
        Record<string, unknown>
      >;
      writeFileSync(file, JSON.stringify(Object.fromEntries(arr.map(({ path, ...rest }) => [path as string, rest]))));
      break;
    }
    case 'registration':
      writeFileSync(file, nix.run('nix-store', ['--dump-db', ...requisites([app])]));
      break;
    case 'references-graph':
      writeFileSync(file, readFileSync(nix.run('nix-build', ['--no-out-link', graphNix, '-A', 'graph']).trim()));
      break;
    case 'structured-attrs':
      writeFileSync(file, readFileSync(nix.run('nix-build', ['--no-out-link', graphNix, '-A', 'attrs']).trim()));
      break;
  }
  return file;
}

for (const format of ['path-info-array', 'path-info-object', 'registration', 'references-graph', 'structured-attrs'] as const) {
  test(`two-step CI flow (${format}): a closure file from Nix plus a copied store dir gives the Nix source's graph`, async (t) => {
    if (!(await nixStore.need(t))) return;
    const file = exportClosure(format);
    const fromFile = await ClosureFileStoreSource.open({ closureFile: file, dir: copy });
    assert.equal(fromFile.format, format);
    assert.equal(fromFile.storeDir, nix.storeDir);
    const g = await fromFile.closure([app]);
    const fromNix = await (await open()).closure([app]);
    // Every format but plain exportReferencesGraph carries NAR hashes, and they must match Nix's too.
    const strip = (x: ClosureGraph): unknown =>
      format === 'references-graph' ? { ...x, paths: x.paths.map(({ narHash: _h, ...rest }) => rest) } : x;
    assert.deepEqual(strip(g), strip(fromNix));
    assert.equal(g.paths.every((p) => p.narHash !== undefined), format !== 'references-graph');
    assertMatchesNix(g, [app]);
    assert.equal(fromFile.fsPath(app), join(copy, basename(app)));
  });
}

test('a closure file with no roots given closes over its top-level paths', async (t) => {
  if (!(await nixStore.need(t))) return;
  const src = await ClosureFileStoreSource.open({ closureFile: exportClosure('path-info-array'), dir: copy });
  const g = await src.closure([]);
  assert.deepEqual(g.roots, [app]);
  assert.equal(g.paths.length, 3);
});

test('--verify-store accepts an intact copy and names the path whose files changed', async (t) => {
  if (!(await nixStore.need(t))) return;
  const file = exportClosure('path-info-array');
  const good = await ClosureFileStoreSource.open({ closureFile: file, dir: copy, verify: true });
  assert.equal((await good.closure([app])).paths.length, 3);

  const tampered = join(nix.root, 'tampered-store');
  cpSync(copy, tampered, { recursive: true, verbatimSymlinks: true });
  makeWritable(tampered);
  const conf = join(tampered, basename(lib), 'lib', 'conf');
  chmodSync(conf, 0o644);
  writeFileSync(conf, 'changed\n');
  const expected = (JSON.parse(readFileSync(file, 'utf8')) as Array<{ path: string; narHash: string }>).find((p) => p.path === lib)!.narHash;
  const src = await ClosureFileStoreSource.open({ closureFile: file, dir: tampered, verify: true });
  await assert.rejects(src.closure([app]), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.match(
      e.message,
      new RegExp(`^NAR hash mismatch for ${lib}: the source says ${expected.replace(/[+/]/g, '\\$&')}, the files at ${join(tampered, basename(lib))} hash to sha256-[A-Za-z0-9+/]{43}=$`),
    );
    assert.deepEqual(e.paths, [lib]);
    return true;
  });
  // Without --verify-store the same copy is accepted (verification is opt-in).
  const unverified = await ClosureFileStoreSource.open({ closureFile: file, dir: tampered });
  assert.equal((await unverified.closure([app])).paths.length, 3);
});

test('--verify-store on the Nix source checks the real store', async (t) => {
  if (!(await nixStore.need(t))) return;
  const g = await (await open('auto', true)).closure([app]);
  assert.equal(g.paths.length, 3);
});

test('--verify-store on the Nix source names a store path whose files no longer match Nix\'s database', async (t) => {
  if (!(await nixStore.need(t))) return;
  const victim = nix.add('victim', { 'file.txt': 'original\n' });
  const f = join(victim, 'file.txt');
  chmodSync(victim, 0o755);
  chmodSync(f, 0o644);
  writeFileSync(f, 'tampered\n');
  await assert.rejects((await open('auto', true)).closure([victim]), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.match(e.message, new RegExp(`^NAR hash mismatch for ${victim}: the source says sha256-\\S+, the files at ${victim} hash to sha256-\\S+$`));
    assert.deepEqual(e.paths, [victim]);
    return true;
  });
});

test('a content path outside Nix\'s store dir is refused before Nix is asked', async (t) => {
  if (!(await nixStore.need(t))) return;
  await assert.rejects((await open()).closure(['/opt/app']), {
    name: 'StoreError',
    message: `content path "/opt/app" is not under the store dir ${nix.storeDir}`,
  });
});

test('a path in the closure file but missing from the store dir is refused, naming it and its referrer', async (t) => {
  if (!(await nixStore.need(t))) return;
  const partial = join(nix.root, 'partial-store');
  mkdirSync(partial);
  for (const p of [app, lib]) cpSync(p, join(partial, basename(p)), { recursive: true, verbatimSymlinks: true });
  const src = await ClosureFileStoreSource.open({ closureFile: exportClosure('path-info-array'), dir: partial });
  await assert.rejects(src.closure([app]), (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.equal(
      e.message,
      `${data} (referenced by ${lib}) is in closure file ${join(nix.root, 'closure-path-info-array')} but missing from the store dir ${partial}: no ${join(partial, basename(data))}`,
    );
    assert.deepEqual(e.paths, [data, lib]);
    return true;
  });
});

test('a dangling reference in a closure file is refused, naming both paths', async (t) => {
  if (!(await nixStore.need(t))) return;
  const file = exportClosure('path-info-array');
  const arr = (JSON.parse(readFileSync(file, 'utf8')) as Array<{ path: string }>).filter((p) => p.path !== data);
  const cut = join(nix.root, 'closure-cut.json');
  writeFileSync(cut, JSON.stringify(arr));
  const src = await ClosureFileStoreSource.open({ closureFile: cut, dir: copy });
  await assert.rejects(src.closure([app]), {
    name: 'StoreError',
    message: `${lib} references ${data}, which is not in closure file ${cut} (dangling reference)`,
  });
});

test('the Nix DB registration equals nix-store --dump-db of the closure (derivers aside)', async (t) => {
  if (!(await nixStore.need(t))) return;
  const g = await (await open()).closure([app]);
  const ours = parseClosureFile(await nixDbRegistration(g, (p) => p), 'ours').entries;
  const theirs = parseClosureFile(nix.run('nix-store', ['--dump-db', ...requisites([app])]), 'dump-db')
    .entries.map(({ deriver: _d, ...e }) => ({ ...e, references: [...e.references].sort() }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  assert.deepEqual(ours, theirs);
  // A scanned directory has no hashes: they are computed from the files, with the same result.
  const scanned = await new DirectoryStoreSource(copy, nix.storeDir, { cacheDir: false }).closure([app]);
  assert.equal(await nixDbRegistration(scanned, (p) => join(copy, basename(p))), await nixDbRegistration(g, (p) => p));
});

test('includeNixDB writes a Nix database that Nix reads back, byte-identical across runs', async (t) => {
  if (!(await nixStore.need(t, 'sqlite3'))) return;
  const g = await (await open()).closure([app]);
  const reg = await nixDbRegistration(g, (p) => p);
  const outs = [join(nix.root, 'db1'), join(nix.root, 'db2')];
  for (const out of outs) {
    const created = await writeNixDb(reg, out, { storeDir: nix.storeDir, registrationTime: 1, roots: [app], env: nix.env });
    assert.deepEqual(created, ['nix/var/nix/db/db.sqlite', 'nix/var/nix/db/schema', `nix/var/nix/gcroots/docker/${basename(app)}`]);
  }
  assert.ok(readFileSync(join(outs[0]!, 'nix/var/nix/db/db.sqlite')).equals(readFileSync(join(outs[1]!, 'nix/var/nix/db/db.sqlite'))));
  // Nix itself reads the database: same closure, and every registrationTime is the fixed one.
  const env = { ...nix.env };
  delete env.NIX_STORE_DIR;
  delete env.NIX_STATE_DIR;
  const store = `local?root=${outs[0]}&store=${nix.storeDir}`;
  const info = JSON.parse(
    (await import('node:child_process')).execFileSync(
      'nix',
      ['--extra-experimental-features', 'nix-command', 'path-info', '--store', store, '--json', '--recursive', app],
      { env, encoding: 'utf8' },
    ),
  ) as Array<{ path: string; references: string[]; narSize: number; registrationTime: number }>;
  assert.deepEqual(
    info.map((i) => i.path).sort(),
    g.paths.map((p) => p.path),
  );
  assert.deepEqual(new Set(info.map((i) => i.registrationTime)), new Set([1]));
  for (const i of info) assert.deepEqual([...i.references].sort(), g.paths.find((p) => p.path === i.path)?.references);
});

test('includeNixDB layer entries are the same bytes whichever source the closure came from', async (t) => {
  if (!(await nixStore.need(t, 'sqlite3'))) return;
  const fromNix = await (await open()).closure([app]);
  const fromFile = await (await ClosureFileStoreSource.open({ closureFile: exportClosure('references-graph'), dir: copy })).closure([app]);
  const scanned = await new DirectoryStoreSource(copy, nix.storeDir, { cacheDir: false }).closure([app]);
  const opts = { registrationTime: 1, env: nix.env };
  const a = await nixDbEntries(fromNix, (p) => p, opts);
  const b = await nixDbEntries(fromFile, (p) => join(copy, basename(p)), opts);
  const c = await nixDbEntries(scanned, (p) => join(copy, basename(p)), opts);
  assert.deepEqual(
    a.map((e) => `${e.kind} ${e.path}`),
    [
      'directory nix',
      'directory nix/var',
      'directory nix/var/nix',
      'directory nix/var/nix/db',
      'file nix/var/nix/db/db.sqlite',
      'file nix/var/nix/db/schema',
      'directory nix/var/nix/gcroots',
      'directory nix/var/nix/gcroots/docker',
      `symlink nix/var/nix/gcroots/docker/${basename(app)}`,
    ],
  );
  assert.deepEqual(b, a);
  assert.deepEqual(c, a);
});
