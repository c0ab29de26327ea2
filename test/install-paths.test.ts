// Where the builder finds its thread scripts at run time (builder/install-paths.ts): a thread's
// bundle (scripts/bundle-cli.mjs) when the build made one, else tsc's file of the same code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { builderFile, SCAN_HELPER_BUNDLE, threadScript, WORKER_BUNDLE } from '../builder/install-paths.js';

test('a thread whose bundle the build made runs from it (npm run build makes the worker\'s and the scan helper\'s)', () => {
  assert.ok(existsSync(builderFile(WORKER_BUNDLE)), 'npm run build bundles the worker');
  assert.equal(threadScript(WORKER_BUNDLE, 'workers/worker.js').href, builderFile('imgbuild-worker.js').href);
  assert.equal(threadScript(SCAN_HELPER_BUNDLE, 'store/split-scan-thread.js').href, builderFile('imgbuild-scan-helper.js').href);
});

test('a thread without a bundle (a build without esbuild) runs from tsc\'s file', () => {
  assert.equal(threadScript('imgbuild-no-such-bundle.js', 'workers/worker.js').href, builderFile('workers/worker.js').href);
  assert.ok(existsSync(builderFile('workers/worker.js')));
});
