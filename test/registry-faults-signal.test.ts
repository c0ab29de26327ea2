// Ctrl-C while `build --push` uploads: the first stops the push cleanly (uploads cancelled, no
// manifest put, no tag moved, no digest file, exit 130); a second exits at once.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryClient, RegistryHttpError } from '../registry-client/index.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { makeImage, makeLayer, noise, proxiedRegistryFixture } from './helpers/registry.js';
import { writeLayout } from './helpers/hostile-registry.js';
import type { FaultProxy, ProxiedRequest } from './helpers/fault-proxy.js';
import { tempDir } from './helpers/tmp.js';

const fixture = proxiedRegistryFixture();
let work: string;
before(async () => {
  work = await tempDir('imgbuild-faults-signal-');
});

/** `build examples/hello --push` (or other arguments), as a child we can signal; its stderr collected. */
async function startPush(ref: string, digestFile: string, args = ['build', join(repoRoot, 'examples/hello'), '--push', ref]): Promise<{ child: ChildProcess; stderr: () => string; exit: Promise<number | null> }> {
  const cache = await tempDir('imgbuild-faults-signal-cache-');
  const child = spawn(process.execPath, [cliPath, ...args, '--digest-file', digestFile], {
    env: { ...process.env, IMGBUILD_CACHE_DIR: cache, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.resume();
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stderr: () => err, exit };
}

/** Wait until the proxy has seen a request `pick` selects (the child still running). */
async function waitFor(proxy: FaultProxy, pick: (r: ProxiedRequest) => boolean, child: ChildProcess, stderr: () => string): Promise<void> {
  for (let i = 0; !proxy.requests().some(pick); i++) {
    if (child.exitCode !== null) throw new Error(`the build exited (${child.exitCode}) first:\n${stderr()}`);
    if (i > 6000) throw new Error(`nothing came within 60 s:\n${stderr()}`);
    await sleep(10);
  }
}

async function assertNothingMoved(proxy: FaultProxy, repository: string, digestFile: string): Promise<void> {
  assert.deepEqual(proxy.requests().filter((r) => r.method === 'PUT' && r.path.includes('/manifests/')), [], 'no manifest was put');
  await assert.rejects(stat(digestFile), { code: 'ENOENT' });
  const client = new RegistryClient({ credentials: async () => undefined });
  try {
    await assert.rejects(client.getManifest({ registry: proxy.host, repository }, '1'), (e: unknown) => e instanceof RegistryHttpError && e.status === 404);
  } finally {
    await client.close();
  }
}

test('the first Ctrl-C during the push phase of build --push stops it: exit 130, uploads cancelled, no tag moved, no digest file', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  proxy.clearLog();
  // Every blob upload hangs: the push is under way and would wait for the timeouts.
  proxy.inject({ match: (r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'), times: 1000, fault: { kind: 'hang' } });
  const digestFile = join(work, 'first.digest');
  const run = await startPush(`${proxy.host}/faults/sigint:1`, digestFile);
  try {
    await waitFor(proxy, (r) => r.status === 'hang', run.child, run.stderr);
    run.child.kill('SIGINT');
    assert.equal(await run.exit, 130, run.stderr());
  } finally {
    run.child.kill('SIGKILL');
    proxy.clearFaults();
  }
  assert.match(run.stderr(), /^interrupted/m);
  assert.ok(proxy.requests().filter((r) => r.status === 'hang').every((r) => r.clientClosed), 'every upload in flight was cancelled');
  await assertNothingMoved(proxy, 'faults/sigint', digestFile);
});

test('a second Ctrl-C while the first is still cancelling exits 130 at once', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  proxy.clearLog();
  // Uploads hang, and so does the cancelling of their sessions (DELETE): the first Ctrl-C waits.
  proxy.inject({ match: (r) => (r.method === 'PUT' && r.path.includes('/blobs/uploads/')) || r.method === 'DELETE', times: 1000, fault: { kind: 'hang' } });
  const digestFile = join(work, 'second.digest');
  const run = await startPush(`${proxy.host}/faults/sigint-twice:1`, digestFile);
  try {
    await waitFor(proxy, (r) => r.method === 'PUT' && r.status === 'hang', run.child, run.stderr);
    run.child.kill('SIGINT');
    await waitFor(proxy, (r) => r.method === 'DELETE', run.child, run.stderr);
    run.child.kill('SIGINT');
    assert.equal(await run.exit, 130, run.stderr());
  } finally {
    run.child.kill('SIGKILL');
    proxy.clearFaults();
  }
  // It did not wait for the cancelling to end (that prints "interrupted"): it left at once.
  assert.doesNotMatch(run.stderr(), /^interrupted/m);
  await assertNothingMoved(proxy, 'faults/sigint-twice', digestFile);
});

test('SIGTERM during imgbuild push stops it the same way: exit 130, no tag moved, no digest file', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const img = await makeImage([await makeLayer({ 'data/term': noise(64 * 1024, 'term') })]);
  const layout = await writeLayout(join(work, 'term.oci'), img);
  proxy.clearLog();
  proxy.inject({ match: (r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'), times: 1000, fault: { kind: 'hang' } });
  const digestFile = join(work, 'term.digest');
  const ref = `${proxy.host}/faults/sigterm:1`;
  const run = await startPush(ref, digestFile, ['push', `oci:${layout}`, ref]);
  try {
    await waitFor(proxy, (r) => r.status === 'hang', run.child, run.stderr);
    run.child.kill('SIGTERM');
    assert.equal(await run.exit, 130, run.stderr());
  } finally {
    run.child.kill('SIGKILL');
    proxy.clearFaults();
  }
  assert.match(run.stderr(), /^interrupted/m);
  await assertNothingMoved(proxy, 'faults/sigterm', digestFile);
});
