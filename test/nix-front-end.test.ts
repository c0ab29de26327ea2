// The Nix front end (nix/default.nix, issue 18) with Nix 2.8 and no nixpkgs: `buildImage` gives a
// spec and the closure's references graph, `copyToOci` the image `imgbuild build --nix` makes of
// the same spec, and `copyToRegistry` pushes it to Debian's docker-registry. The payload is
// Debian's static busybox, put in the test store.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand, runCli, tool } from './helpers/cli.js';
import { makeTestNix, type TestNix } from './helpers/nix.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture, toolPath } from './helpers/tools.js';

let nix: TestNix;
let busybox: string;
let specPath: string;
let graphPath: string;
let registry: RunningRegistry | undefined;

const EXPR = (extra: string) => `
  let
    # Every derivation is built by busybox's shell from the store (its applets need no PATH): no
    # host tool and no nixpkgs.
    ib = import ${join(repoRoot, 'nix')} { imgbuild = ${JSON.stringify(`${process.execPath} ${cliPath}`)}; shell = "\${busybox}/bin/sh"; path = ""; };
    busybox = builtins.storePath ${JSON.stringify(busybox)};
  in {
    image = ib.buildImage {
      name = "nix-front-end/busybox";
      tag = "v1";
      contents = [ busybox ];
      config = { Cmd = [ "/bin/sh" "-c" "echo hello" ]; Env = [ "PATH=/bin" ]; };
      ${extra}
    };
  }`;

/** Builds `attr` of the test expression; returns every output path nix-build prints. */
function nixBuild(attr: string, extra = ''): string[] {
  const file = join(nix.root, `front-end-${attr.replace(/\W/g, '-')}.nix`);
  writeFileSync(file, EXPR(extra));
  return nix.run('nix-build', ['--no-out-link', file, '-A', attr]).trim().split('\n');
}

const front = toolFixture(['nix-store', 'nix-build', 'busybox'], () => {
  nix = makeTestNix();
  busybox = nix.add('busybox', { 'bin/busybox': { content: readFileSync(toolPath('busybox')), executable: true }, 'bin/sh': { symlink: 'busybox' } });
  [specPath] = nixBuild('image') as [string];
  [graphPath] = nixBuild('image.graph') as [string];
});

after(async () => {
  await registry?.stop();
  nix?.cleanup();
});

test('nix-build of buildImage gives the spec (JSON) and the references graph of the closure', async (t) => {
  if (!(await front.need(t))) return;
  assert.match(specPath, /-imgbuild-busybox\.json$/);
  assert.match(graphPath, /-imgbuild-busybox\.json-graph$/);
  const spec = JSON.parse(readFileSync(specPath, 'utf8'));
  assert.deepEqual(spec, {
    name: 'nix-front-end/busybox',
    tag: 'v1',
    config: { Cmd: ['/bin/sh', '-c', 'echo hello'], Env: ['PATH=/bin'] },
    copyToRoot: [busybox],
    store: { kind: 'closure-file', closureFile: graphPath, storeDir: nix.storeDir },
  });
  // exportReferencesGraph's format: path, deriver, reference count, references.
  assert.equal(readFileSync(graphPath, 'utf8'), `${busybox}\n\n0\n`);
  // The spec keeps the closure alive: Nix registered it as a reference of the output.
  assert.deepEqual(nix.run('nix-store', ['--query', '--references', specPath]).trim().split('\n').sort(), [busybox, graphPath].sort());
  // Built by busybox's shell from the store, nothing else.
  const drv = JSON.parse(nix.run('nix', ['show-derivation', specPath])) as Record<string, { builder: string; inputDrvs: object; inputSrcs: string[] }>;
  const [only] = Object.values(drv);
  assert.deepEqual([only!.builder, only!.inputDrvs, only!.inputSrcs], [`${busybox}/bin/sh`, {}, [busybox]]);
});

test('copyToOci writes the image `imgbuild build --nix` makes of the same spec', async (t) => {
  if (!(await front.need(t))) return;
  const [program] = nixBuild('image.copyToOci');
  const out = join(await tempDir('imgbuild-front-end-'), 'image.oci');
  const cache = await tempDir('imgbuild-front-end-cache-');
  const r = await runCommand(join(program!, 'bin/copy-to-oci'), [out], { env: { ...nix.env, IMGBUILD_CACHE_DIR: cache } });
  assert.equal(r.code, 0, r.stderr.toString());
  const digest = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')).manifests[0].digest as string;

  const equivalent = join(nix.root, 'equivalent.json');
  writeFileSync(equivalent, JSON.stringify({ name: 'nix-front-end/busybox', tag: 'v1', config: { Cmd: ['/bin/sh', '-c', 'echo hello'], Env: ['PATH=/bin'] }, copyToRoot: [busybox], store: { storeDir: nix.storeDir } }));
  const direct = await runCli(['build', equivalent, '--nix', '-o', join(nix.root, 'direct.oci'), '--json'], { env: nix.env });
  assert.equal(direct.code, 0, direct.stderr.toString());
  assert.equal(digest, JSON.parse(direct.stdout.toString()).digest);
  // And imgbuild reads nix-build's output as it is, through a link without extension (`result`).
  symlinkSync(specPath, join(nix.root, 'result'));
  const again = await runCli(['build', join(nix.root, 'result'), '-o', join(nix.root, 'again.oci'), '--json'], { env: nix.env });
  assert.equal(JSON.parse(again.stdout.toString()).digest, digest);
});

test('copyToRegistry pushes the image to docker-registry', async (t) => {
  if (!(await front.need(t, 'docker-registry', 'skopeo'))) return;
  registry = await startRegistry();
  const [program] = nixBuild('image.copyToRegistry');
  const ref = `${registry.host}/nix-front-end/busybox:v1`;
  const cache = await tempDir('imgbuild-front-end-cache-');
  const r = await runCommand(join(program!, 'bin/copy-to-registry'), [ref], { env: { ...nix.env, IMGBUILD_CACHE_DIR: cache } });
  assert.equal(r.code, 0, r.stderr.toString());
  const pushed = r.stdout.toString().trim();
  const inspected = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])) as { Digest: string; Architecture: string };
  assert.ok(pushed.includes(inspected.Digest), `copy-to-registry printed ${pushed}; the registry has ${inspected.Digest}`);
  assert.equal(inspected.Architecture, 'amd64');
});

test("the flake's lib.forSystem gives the very derivation default.nix gives", async (t) => {
  if (!(await front.need(t, 'nix'))) return;
  const expr = `
    let
      busybox = builtins.storePath ${JSON.stringify(busybox)};
      ib = (builtins.getFlake "path:${join(repoRoot, 'nix')}").lib.forSystem builtins.currentSystem {
        imgbuild = ${JSON.stringify(`${process.execPath} ${cliPath}`)}; shell = "\${busybox}/bin/sh"; path = "";
      };
    in ib.buildImage {
      name = "nix-front-end/busybox";
      tag = "v1";
      contents = [ busybox ];
      config = { Cmd = [ "/bin/sh" "-c" "echo hello" ]; Env = [ "PATH=/bin" ]; };
    }`;
  const built = JSON.parse(nix.run('nix', ['build', '--impure', '--no-link', '--json', '--expr', expr])) as { outputs: { out: string } }[];
  assert.equal(built[0]!.outputs.out, specPath);
});
