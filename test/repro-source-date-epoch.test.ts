// SOURCE_DATE_EPOCH (reproducible-builds.org) sets the image's `created` and every file's mtime
// when the spec leaves them unset, end to end: through the CLI, into the config and each tar
// entry, and through `verify` and `diff`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { openImage } from '../builder/transports/open.js';
import { summariseLayer } from '../builder/repro/layer-summary.js';
import type { ImageDiff } from '../builder/repro/diff.js';

const fixture = join(repoRoot, 'test/fixtures/repro');
const work = await tempDir('imgbuild-repro-sde-');
const EPOCH = 1_700_000_000; // 2023-11-14T22:13:20Z

async function build(spec: string, sde: string | undefined): Promise<string> {
  const out = join(await mkdtemp(join(work, 'build-')), 'image.oci');
  // No IMGBUILD_CACHE_DIR: runCli gives each build a fresh cache.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.SOURCE_DATE_EPOCH;
  if (sde !== undefined) env.SOURCE_DATE_EPOCH = sde;
  const r = await runCli(['build', spec, '-o', out], { env });
  assert.equal(r.code, 0, r.stderr);
  return out;
}

/** `created` of the config and its history, and the set of mtimes over every entry of every layer. */
async function times(layout: string): Promise<{ created: (string | undefined)[]; mtimes: Set<number>; entries: number }> {
  const img = await openImage(layout);
  const mtimes = new Set<number>();
  let entries = 0;
  for (const l of img.layers) {
    const s = await summariseLayer(l.open(), l.digest);
    for (const e of s.entries) mtimes.add(e.mtime);
    entries += s.entries.length;
  }
  return { created: [img.config.created, ...(img.config.history ?? []).map((h) => h.created)], mtimes, entries };
}

test('SOURCE_DATE_EPOCH sets created and every mtime when the spec sets neither', async () => {
  const t = await times(await build(join(repoRoot, 'examples/hello'), String(EPOCH)));
  assert.ok(t.entries > 10);
  assert.deepEqual(new Set(t.created), new Set(['2023-11-14T22:13:20Z']));
  assert.deepEqual(t.mtimes, new Set([EPOCH]));
});

test('without SOURCE_DATE_EPOCH the defaults hold: 1970-01-01T00:00:01Z everywhere', async () => {
  const t = await times(await build(join(repoRoot, 'examples/hello'), undefined));
  assert.deepEqual(new Set(t.created), new Set(['1970-01-01T00:00:01Z']));
  assert.deepEqual(t.mtimes, new Set([1]));
});

test("a spec's own created and mtime win over SOURCE_DATE_EPOCH", async () => {
  const dir = await mkdtemp(join(work, 'spec-'));
  const spec = JSON.parse(await readFile(join(fixture, 'base/image.json'), 'utf8')) as Record<string, unknown>;
  Object.assign(spec, { store: { dir: join(fixture, 'store') }, created: '2020-02-02T02:02:02Z', mtime: '2021-01-01T00:00:00Z' });
  await writeFile(join(dir, 'image.json'), JSON.stringify(spec));
  const t = await times(await build(join(dir, 'image.json'), String(EPOCH)));
  assert.deepEqual(new Set(t.created), new Set(['2020-02-02T02:02:02Z']));
  assert.deepEqual(t.mtimes, new Set([Date.UTC(2021, 0, 1) / 1000]));
});

test('verify under SOURCE_DATE_EPOCH passes (both builds see it), and diff names created and every mtime between two epochs', async () => {
  const env = { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) };
  const v = await runCli(['verify', join(fixture, 'base')], { env });
  assert.equal(v.code, 0, v.stdout.toString() + v.stderr);

  const a = await build(join(fixture, 'base'), String(EPOCH));
  const b = await build(join(fixture, 'base'), String(EPOCH + 60));
  const r = await runCli(['diff', a, b, '--json']);
  assert.equal(r.code, 1, r.stderr);
  const diff = JSON.parse(r.stdout.toString()) as ImageDiff;
  const created = diff.config.filter((c) => c.path === 'created' || /^history\[\d+\]\.created$/.test(c.path));
  assert.deepEqual(created.map((c) => [c.a, c.b]), created.map(() => ['2023-11-14T22:13:20Z', '2023-11-14T22:14:20Z']));
  assert.equal(created.length, diff.config.length);
  assert.deepEqual(diff.layers.map((l) => l.change), ['content', 'content']);
  for (const l of diff.layers) {
    if (l.change !== 'content') continue;
    const changed = l.files.filter((f) => f.change === 'changed');
    assert.equal(changed.length, l.files.length);
    assert.deepEqual(l.fieldCounts, { mtime: l.entries.b });
    assert.equal(l.files.length, l.entries.b);
    for (const f of changed) if (f.change === 'changed') assert.deepEqual(f.fields, [{ path: 'mtime', a: EPOCH, b: EPOCH + 60 }]);
  }
});
