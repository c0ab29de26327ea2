// The SBOM of a real Nix closure (Nix 2.8, an isolated store): exactly nix-store -qR's paths,
// each with nix-store -q --hash's hash, and exactly nix-store -q --references' edges.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildImage } from '../builder/build/build-image.js';
import { resolveSpec } from '../builder/spec/resolve.js';
import { buildSboms } from '../builder/sbom/index.js';
import { parseNarHash } from '../builder/store/nar-hash.js';
import { makeTestNix, shDrv, type TestNix } from './helpers/nix.js';
import { toolFixture } from './helpers/tools.js';
import { cyclonedxProblems, spdxProblems } from './helpers/sbom.js';

let nix: TestNix;
let app: string;

const nixStore = toolFixture(['nix', 'nix-store', 'nix-build'], () => {
  nix = makeTestNix();
  const data = nix.add('greeting-1.0', { 'share/text': 'hello from nix\n' });
  app = nix.build(
    `let
      data = builtins.storePath ${JSON.stringify(data)};
      lib = ${shDrv('libgreet-2.3.1', 'mkdir -p $out/lib; echo ${data}/share/text > $out/lib/conf; echo $out > $out/lib/self')};
      app = ${shDrv('app-0.9', 'mkdir -p $out/bin; printf "#!/bin/sh\\ncat ${lib}/lib/conf\\n" > $out/bin/app; chmod +x $out/bin/app')};
    in { inherit app; }`,
    'app',
  );
});

after(() => nix?.cleanup());

test('the SBOM of a Nix closure lists exactly nix-store -qR, with nix-store -q --hash, and the --references edges', async (t) => {
  if (!(await nixStore.need(t))) return;
  const spec = resolveSpec(
    { name: 'sbom/nix-app', architecture: 'amd64', store: { kind: 'nix', storeDir: nix.storeDir }, contents: [app] },
    { file: join(nix.root, 'image.json') },
  );
  const build = await buildImage(spec, { env: nix.env, workers: false });
  const [spdx, cdx] = await buildSboms(build, ['spdx', 'cyclonedx']);
  assert.deepEqual(spdxProblems(spdx!.bytes), []);
  assert.equal(await cyclonedxProblems(cdx!.bytes), null);

  const requisites = nix.run('nix-store', ['-qR', app]).trim().split('\n').sort();
  const hashHex = (p: string) => parseNarHash(nix.run('nix-store', ['-q', '--hash', p]).trim())!.toString('hex');
  const edges = requisites.flatMap((p) => nix.run('nix-store', ['-q', '--references', p]).trim().split('\n').filter(Boolean).map((r) => `${p} -> ${r}`)).sort();
  assert.ok(edges.some((e) => /libgreet.* -> .*libgreet/.test(e)), 'the closure has a self-reference (lib names $out)');

  // SPDX: one package per path (packageFileName), its SHA256 the NAR hash, DEPENDS_ON the references.
  const doc = JSON.parse(spdx!.bytes.toString());
  const pkgs = doc.packages.filter((p: { packageFileName?: string }) => p.packageFileName);
  assert.deepEqual(pkgs.map((p: { packageFileName: string }) => p.packageFileName).sort(), requisites);
  for (const p of pkgs) assert.equal(p.checksums[0].checksumValue, hashHex(p.packageFileName), p.packageFileName);
  const pathOf = new Map<string, string>(pkgs.map((p: { SPDXID: string; packageFileName: string }) => [p.SPDXID, p.packageFileName]));
  const spdxEdges = doc.relationships
    .filter((r: { relationshipType: string }) => r.relationshipType === 'DEPENDS_ON')
    .map((r: { spdxElementId: string; relatedSpdxElement: string }) => `${pathOf.get(r.spdxElementId)} -> ${pathOf.get(r.relatedSpdxElement)}`)
    .sort();
  assert.deepEqual(spdxEdges, edges);
  const lib = pkgs.find((p: { packageFileName: string }) => p.packageFileName.endsWith('-libgreet-2.3.1'));
  assert.equal(lib.name, 'libgreet');
  assert.equal(lib.versionInfo, '2.3.1');

  // CycloneDX: the same paths, hashes and edges.
  const bom = JSON.parse(cdx!.bytes.toString());
  const libs = bom.components.filter((c: { type: string }) => c.type === 'library');
  assert.deepEqual(libs.map((c: { 'bom-ref': string }) => c['bom-ref']).sort(), requisites);
  for (const c of libs) assert.equal(c.hashes[0].content, hashHex(c['bom-ref']));
  const cdxEdges = bom.dependencies.slice(1).flatMap((d: { ref: string; dependsOn: string[] }) => d.dependsOn.map((r) => `${d.ref} -> ${r}`)).sort();
  assert.deepEqual(cdxEdges, edges);
});
