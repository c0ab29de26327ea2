import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { needTool } from './helpers/tools.js';
import { makeTestNix, makeWritable, shDrv } from './helpers/nix.js';

test('a Nix store copied to a plain directory gives Nix\'s closure: same paths, references and NAR sizes', async (t) => {
  if (!needTool(t, 'nix-store', 'nix-build')) return;
  const nix = makeTestNix();
  t.after(() => nix.cleanup());
  const data = nix.add('data', { 'share/readme': 'text\n', 'bin/tool': { content: '#!/bin/sh\n', executable: true }, lnk: { symlink: 'share/readme' } });
  const out = nix.build(
    `let
      data = builtins.storePath ${JSON.stringify(data)};
      lib = ${shDrv('lib', 'mkdir -p $out/lib; echo ${data}/share/readme > $out/lib/conf; echo plain > $out/lib/plain')};
      app = ${shDrv('app', 'mkdir -p $out/bin; printf "#!/bin/sh\\nexec ${lib}/lib/conf $out\\n" > $out/bin/app; chmod +x $out/bin/app; ln -s ${lib}/lib $out/libdir')};
    in { inherit app; }`,
    'app',
  );
  const copy = mkdtempSync(join(tmpdir(), 'imgbuild-copy-'));
  t.after(() => {
    makeWritable(copy);
    rmSync(copy, { recursive: true, force: true });
  });
  const nixInfo = JSON.parse(nix.run('nix', ['path-info', '--json', '--recursive', out])) as Array<{
    path: string;
    narSize: number;
    references: string[];
  }>;
  for (const p of nixInfo) cpSync(p.path, join(copy, basename(p.path)), { recursive: true, verbatimSymlinks: true });

  const src = new DirectoryStoreSource(copy, nix.storeDir, { cacheDir: false });
  const g = await src.closure([out]);
  const requisites = nix.run('nix-store', ['--query', '--requisites', out]).trim().split('\n').sort();
  assert.deepEqual(g.paths.map((p) => p.path), requisites);
  assert.equal(g.paths.length, 3);
  // The derivation's outputs do reference each other (so the comparison below is not vacuous).
  const lib = g.paths.find((p) => p.path.endsWith('-lib'))!.path;
  assert.deepEqual(g.paths.find((p) => p.path === out)?.references, [out, lib].sort());
  assert.deepEqual(g.paths.find((p) => p.path === lib)?.references, [data]);
  const expected = nixInfo
    .map((p) => ({ path: p.path, narSize: p.narSize, references: [...p.references].sort() }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  assert.deepEqual(g.paths, expected);
  for (const p of g.paths) {
    assert.deepEqual(p.references, nix.run('nix-store', ['--query', '--references', p.path]).trim().split('\n').filter(Boolean).sort());
  }
});
