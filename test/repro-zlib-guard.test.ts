// The deflate guard: a golden vector that pins the bytes of the layer writer's deflate, so a Node
// whose zlib encodes differently is refused instead of silently publishing other digests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { goldenDeflateInput } from '../builder/layer/golden-input.js';
import { blockDeflateSync, createPinnedDeflate } from '../builder/layer/gzip.js';
import {
  ALLOW_DRIFT_ENV,
  assertReferenceDeflate,
  checkDeflate,
  enforceDeflateCheck,
  PINNED_DEFLATE_OPTIONS,
  REFERENCE_DEFLATE_SHA256,
  ZlibDriftError,
} from '../builder/layer/zlib-guard.js';
import { needTool } from './helpers/tools.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('the golden input is 320 KiB and the same bytes on every call', () => {
  const a = goldenDeflateInput();
  assert.equal(a.length, 320 * 1024);
  assert.deepEqual(goldenDeflateInput(), a);
  // Neither trivially compressible nor incompressible: deflate has real work to do.
  const ratio = deflateRawSync(a, PINNED_DEFLATE_OPTIONS).length / a.length;
  assert.ok(ratio > 0.3 && ratio < 0.7, `ratio ${ratio}`);
});

test("this Node's zlib gives the reference bytes, so the guard lets builds through", () => {
  assert.deepEqual(checkDeflate(), { ok: true, expected: REFERENCE_DEFLATE_SHA256, actual: REFERENCE_DEFLATE_SHA256 });
  assert.doesNotThrow(() => assertReferenceDeflate());
  assert.doesNotThrow(() => assertReferenceDeflate());
});

test("the guard's settings are the layer writer's: its deflate stream, fed in odd chunks, gives the reference bytes", async () => {
  const input = goldenDeflateInput();
  const chunks: Buffer[] = [];
  for (let off = 0, n = 1; off < input.length; off += n, n = (n * 7 + 13) % 70_000) chunks.push(input.subarray(off, off + n));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    createPinnedDeflate(),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  assert.equal(sha256(Buffer.concat(out)), REFERENCE_DEFLATE_SHA256);
});

test('a deflate that encodes differently is refused with the Node and zlib versions named', () => {
  const level5 = (input: Buffer) => deflateRawSync(input, { ...PINNED_DEFLATE_OPTIONS, level: 5 });
  const check = checkDeflate(level5);
  assert.equal(check.ok, false);
  assert.equal(check.actual, sha256(blockDeflateSync(goldenDeflateInput(), level5)));
  assert.throws(
    () => enforceDeflateCheck(check, {}, () => assert.fail('no warning without the opt-in')),
    (err: unknown) => {
      assert.ok(err instanceof ZlibDriftError);
      assert.equal(err.code, 'zlib-drift');
      assert.match(err.message, new RegExp(`Node ${process.version.replace(/\./g, '\\.')}, zlib ${process.versions.zlib!.replace(/[.-]/g, '\\$&')}`));
      assert.match(err.message, /digests that other machines do not reproduce/);
      assert.match(err.hint ?? '', /IMGBUILD_ALLOW_ZLIB_DRIFT=1/);
      return true;
    },
  );
});

test('IMGBUILD_ALLOW_ZLIB_DRIFT=1 turns the refusal into a printed warning', () => {
  const check = checkDeflate((input) => deflateRawSync(input, { ...PINNED_DEFLATE_OPTIONS, level: 9 }));
  const warnings: string[] = [];
  enforceDeflateCheck(check, { [ALLOW_DRIFT_ENV]: '1' }, (m) => warnings.push(m));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^warning: this Node's zlib produces different deflate bytes .*building anyway because IMGBUILD_ALLOW_ZLIB_DRIFT=1$/);
  assert.throws(() => enforceDeflateCheck(check, { [ALLOW_DRIFT_ENV]: 'yes' }, () => {}), ZlibDriftError);
});

test('vanilla zlib (the system libz, via python3) in the same block scheme encodes the golden input differently: the vector tells them apart', (t) => {
  if (!needTool(t, 'python3')) return;
  // gzip.ts's block mode in Python: 256 KiB blocks, the previous 32 KiB as dictionary, sync flush, last one finished.
  const script = [
    'import sys, zlib',
    'd = sys.stdin.buffer.read(); B = 256 * 1024; full = len(d) // B; prev = None; out = []',
    'for i in range(full + 1):',
    '    block = d[i * B:(i + 1) * B] if i < full else d[full * B:]',
    "    kw = {'zdict': prev[-32768:]} if prev else {}",
    '    c = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, **kw)',
    '    out.append(c.compress(block) + (c.flush(zlib.Z_SYNC_FLUSH) if i < full else c.flush()))',
    '    prev = block',
    "sys.stdout.buffer.write(b''.join(out))",
  ].join('\n');
  const vanilla = execFileSync('python3', ['-c', script], { input: goldenDeflateInput(), maxBuffer: 8 << 20 });
  // Both are valid deflate streams of the same input: the difference is encoding choices only.
  assert.deepEqual(inflateRawSync(vanilla), goldenDeflateInput());
  assert.notEqual(sha256(vanilla), REFERENCE_DEFLATE_SHA256);
});

test('end to end: a build under a drifting zlib is refused and writes nothing; with the opt-in it warns and builds', async () => {
  const dir = await tempDir('imgbuild-repro-drift-');
  const preload = join(repoRoot, 'test/fixtures/repro/zlib-drift.cjs');
  const build = (out: string, extraEnv: NodeJS.ProcessEnv) =>
    runCommand(process.execPath, ['--require', preload, cliPath, 'build', join(repoRoot, 'test/fixtures/repro/base'), '-o', join(dir, out)], {
      env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache'), ...extraEnv },
    });
  const refused = await build('refused.oci', {});
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^error\[zlib-drift\]: this Node's zlib produces different deflate bytes from the reference \(Node v[\d.]+, zlib [^)]+\)/m);
  assert.match(refused.stderr, /^hint: .*IMGBUILD_ALLOW_ZLIB_DRIFT=1/m);
  assert.equal(existsSync(join(dir, 'refused.oci')), false);

  const allowed = await build('allowed.oci', { IMGBUILD_ALLOW_ZLIB_DRIFT: '1' });
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(allowed.stderr.match(/^warning: this Node's zlib produces different deflate bytes/gm)?.length, 1);
  assert.equal(existsSync(join(dir, 'allowed.oci', 'index.json')), true);
});

/** `imgbuild build` of the base fixture into `<dir>/<out>` with `<dir>/cache`, under the drifting zlib when `drift`. */
function buildBase(dir: string, out: string, drift: boolean, extraEnv: NodeJS.ProcessEnv = {}) {
  const preload = drift ? ['--require', join(repoRoot, 'test/fixtures/repro/zlib-drift.cjs')] : [];
  return runCommand(process.execPath, [...preload, cliPath, 'build', join(repoRoot, 'test/fixtures/repro/base'), '-o', join(dir, out)], {
    env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache'), ...extraEnv },
  });
}

/** The "built … · N reused, M written" summary of a build's stderr. */
function reuse(stderr: string): { reused: number; written: number } {
  const m = / (\d+) reused, (\d+) written/.exec(stderr);
  assert.ok(m, stderr);
  return { reused: Number(m[1]), written: Number(m[2]) };
}

test('a build that deflates nothing (every layer from the cache) needs no deflate check: a drifting zlib builds the reference bytes', async () => {
  const dir = await tempDir('imgbuild-repro-drift-cached-');
  const reference = await buildBase(dir, 'reference.oci', false);
  assert.equal(reference.code, 0, reference.stderr);
  const cached = await buildBase(dir, 'cached.oci', true);
  assert.equal(cached.code, 0, cached.stderr);
  assert.equal(reuse(cached.stderr).written, 0);
  assert.doesNotMatch(cached.stderr, /zlib/);
  assert.equal(cached.stdout.toString(), reference.stdout.toString());
});

test("layers a build allowed to drift writes are keyed apart: a reference build never takes them from the cache, nor a drifting build without the opt-in", async () => {
  const dir = await tempDir('imgbuild-repro-drift-keys-');
  const drifted = await buildBase(dir, 'drifted.oci', true, { [ALLOW_DRIFT_ENV]: '1' });
  assert.equal(drifted.code, 0, drifted.stderr);
  assert.equal(reuse(drifted.stderr).reused, 0);

  const refused = await buildBase(dir, 'refused.oci', true);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^error\[zlib-drift\]/m);
  assert.equal(existsSync(join(dir, 'refused.oci')), false);

  const reference = await buildBase(dir, 'reference.oci', false);
  assert.equal(reference.code, 0, reference.stderr);
  assert.equal(reuse(reference.stderr).reused, 0);
  const again = await buildBase(dir, 'drifted-again.oci', true, { [ALLOW_DRIFT_ENV]: '1' });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(reuse(again.stderr), { reused: reuse(drifted.stderr).written, written: 0 });
});
