// The reusable action (action.yml and scripts/action/*.sh), run as GitHub's runner runs a
// composite action (test/helpers/github-action.ts) in a simulated job, against docker-registry
// behind a fault proxy that counts uploads. The action's checkout is a copy of the working tree
// without dist/ or node_modules, as `uses: <owner>/imgbuild@<ref>` gives it: the action installs
// imgbuild there itself (npm ci offline from npm's cache; nothing past 127.0.0.1).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startFaultProxy, uploadsByDigest, type FaultProxy } from './helpers/fault-proxy.js';
import { runAction, type ActionResult, type ActionRun } from './helpers/github-action.js';
import { npmCacheDir } from './helpers/npm-registry.js';
import { freePort, startRegistry, type RunningRegistry } from './helpers/registry.js';
import { repoRoot } from './helpers/paths.js';
import { copyWorkingTree } from './helpers/repo-copy.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

let registry: RunningRegistry | undefined;
let proxy: FaultProxy | undefined;
let work: string;
/** The action's checkout (github.action_path). */
let actionPath: string;
let cacheService: string;
/** npm settings of the simulated job: offline, from npm's cache, nothing past 127.0.0.1. */
let npmEnv: NodeJS.ProcessEnv;

const fixture = toolFixture(['docker-registry', 'git'], async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.port);
  work = await tempDir('imgbuild-action-');
  actionPath = join(work, '_actions/imgbuild');
  await copyWorkingTree(actionPath);
  cacheService = join(work, 'cache-service');
  const closed = `http://127.0.0.1:${await freePort()}`;
  npmEnv = {
    npm_config_cache: npmCacheDir(),
    npm_config_offline: 'true',
    npm_config_userconfig: join(work, 'no-npmrc'),
    npm_config_proxy: closed,
    npm_config_https_proxy: closed,
    npm_config_noproxy: '127.0.0.1',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
});

after(async () => {
  await proxy?.stop();
  await registry?.stop();
});

let runs = 0;
/**
 * One job on a fresh runner: its own HOME (so imgbuild's cache is the default
 * ~/.cache/imgbuild, empty), RUNNER_TEMP and run id, a workspace holding a copy of
 * examples/hello, and the action's checkout and cache service shared with the other runs.
 */
async function job(inputs: Record<string, string>): Promise<ActionResult & { home: string; run: ActionRun }> {
  const n = ++runs;
  const root = join(work, `run-${n}`);
  const home = join(root, 'home');
  const workspace = join(root, 'workspace');
  const runnerTemp = join(root, 'runner-temp');
  for (const d of [home, workspace, runnerTemp]) await mkdir(d, { recursive: true });
  await cp(join(repoRoot, 'examples/hello'), join(workspace, 'hello'), { recursive: true, verbatimSymlinks: true });
  // The job's environment: no IMGBUILD_CACHE_DIR or XDG_CACHE_HOME, as on a GitHub runner.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH!, HOME: home, LANG: 'C.UTF-8', ...npmEnv };
  const run: ActionRun = { actionPath, inputs, env, workspace, runnerTemp, cacheService, github: { run_id: String(1000 + n), job: 'build' } };
  const result = await runAction(run);
  return { ...result, home, run };
}

function explain(r: ActionResult): string {
  return r.steps.map((s) => `--- ${s.name}: ${s.conclusion}\n${s.log}`).join('\n');
}

async function registryGet(path: string, accept?: string): Promise<Response> {
  return fetch(`http://${proxy!.host}${path}`, accept ? { headers: { accept } } : {});
}

/** The digest the registry gives for a tag. */
async function tagDigest(repo: string, tag: string): Promise<string | null> {
  const r = await registryGet(`/v2/${repo}/manifests/${tag}`, 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json');
  return r.ok ? r.headers.get('docker-content-digest') : null;
}

let first: { digest: string; key: string; layers: string[] } | undefined;

test('first run: verify, build and push with two tags; outputs in GITHUB_OUTPUT; the layer records saved', async (t) => {
  if (!(await fixture.need(t))) return;
  proxy!.clearLog();
  const r = await job({
    spec: 'hello',
    push: 'true',
    tags: `${proxy!.host}/ci/hello:1\nlatest`,
    verify: 'true',
    args: `--insecure-registry ${proxy!.host}`,
  });
  assert.ok(r.ok, explain(r));
  assert.deepEqual(r.steps.map((s) => [s.name, s.conclusion]), [
    ['Check the inputs and install imgbuild', 'success'],
    ["Restore imgbuild's layer records", 'success'],
    ['Build (verify, push)', 'success'],
    ['Drop layer records no build used for 30 days', 'success'],
    ["Save imgbuild's layer records", 'success'],
  ]);
  const [setup, restore, build, , save] = r.steps;
  assert.match(setup!.log, /Install imgbuild from/, 'the action compiled imgbuild in its checkout');
  assert.match(restore!.log, /^Cache not found/);
  assert.match(build!.log, /::group::imgbuild verify hello \(two isolated builds must agree\)/);

  const { digest, image, json } = r.outputs;
  assert.match(digest!, /^sha256:[0-9a-f]{64}$/);
  assert.equal(image, `${proxy!.host}/ci/hello@${digest}`);
  assert.ok(JSON.stringify(JSON.parse(json!)).includes(digest!), 'the json output is the build --json document, with the digest');
  // Written by build.sh to the step's GITHUB_OUTPUT file (the json as a delimited block).
  assert.match(build!.githubOutput, new RegExp(`^digest=${digest}$`, 'm'));
  assert.match(build!.githubOutput, new RegExp(`^image=${image!.replace(/[.]/g, '\\.')}$`, 'm'));
  assert.match(build!.githubOutput, /^json<<(imgbuild_[0-9a-f]+)\n[\s\S]*\n\1$/m);
  assert.equal(build!.summary, `### imgbuild\n\nPushed \`${image}\` as \`${proxy!.host}/ci/hello:1\`, \`${proxy!.host}/ci/hello:latest\`.\n`);
  // The command is on the job's PATH for later steps.
  assert.deepEqual(r.path, [join(r.run.runnerTemp, 'imgbuild-action/bin')]);

  // Pushed under both tags.
  assert.equal(await tagDigest('ci/hello', '1'), digest);
  assert.equal(await tagDigest('ci/hello', 'latest'), digest);
  const manifest = (await (await registryGet(`/v2/ci/hello/manifests/${digest}`, 'application/vnd.oci.image.manifest.v1+json')).json()) as { layers: { digest: string }[] };
  const layers = manifest.layers.map((l) => l.digest);
  const uploaded = uploadsByDigest(proxy!.requests());
  for (const l of layers) assert.equal(uploaded[l], 1, `layer ${l} uploaded once`);

  // The layer records, saved under this run's key.
  const key = /Cache saved with key: (\S+)/.exec(save!.log)?.[1];
  assert.ok(key?.startsWith('imgbuild-layers-Linux-'), save!.log);
  const saved = await readdir(join(cacheService, encodeURIComponent(key!)));
  assert.equal(saved.length, layers.length, `one record per layer: ${saved.join(' ')}`);
  first = { digest: digest!, key: key!, layers };
});

test('second run on a fresh runner: the records are restored and the push uploads nothing and compresses nothing', async (t) => {
  if (!(await fixture.need(t))) return;
  assert.ok(first, 'needs the first run');
  proxy!.clearLog();
  const r = await job({ spec: 'hello', push: 'true', tags: `${proxy!.host}/ci/hello:2`, args: `--insecure-registry ${proxy!.host}` });
  assert.ok(r.ok, explain(r));
  const [setup, restore, build] = r.steps;
  assert.doesNotMatch(setup!.log, /Install imgbuild from/, 'compiled by the first run in the same checkout');
  assert.equal(restore!.outputs['cache-matched-key'], first.key);
  assert.doesNotMatch(build!.log, /::group::imgbuild verify/);
  assert.equal(r.outputs.digest, first.digest);
  assert.equal(await tagDigest('ci/hello', '2'), first.digest);

  // Nothing sent: no blob upload was even started.
  const requests = proxy!.requests();
  assert.deepEqual(uploadsByDigest(requests), {});
  assert.deepEqual(requests.filter((q) => q.path.includes('/blobs/uploads/')), []);
  // Every layer came from its restored record: none was made again (no layer blob in the cache).
  const cache = join(r.home, '.cache/imgbuild');
  assert.ok((await readdir(join(cache, 'layers'))).length >= first.layers.length);
  const blobs = await readdir(join(cache, 'blobs/sha256')).catch(() => [] as string[]);
  assert.deepEqual(blobs.filter((b) => first!.layers.includes(`sha256:${b}`)), []);
  // And this run's records are saved too, under a key of its own.
  assert.equal((await readdir(cacheService)).length, 2);
});

test('push: false with verify against the pushed image: the rebuild matches it, and the outputs name the OCI layout', async (t) => {
  if (!(await fixture.need(t))) return;
  assert.ok(first, 'needs the first run');
  const r = await job({ spec: 'hello', cache: 'false', verify: `docker://${proxy!.host}/ci/hello@${first.digest}`, args: `--insecure-registry ${proxy!.host}` });
  assert.ok(r.ok, explain(r));
  assert.deepEqual(r.steps.map((s) => s.conclusion), ['success', 'skipped', 'success', 'skipped', 'skipped']);
  assert.match(r.steps[2]!.log, /::group::imgbuild verify hello --against docker:\/\//);
  assert.equal(r.outputs.digest, first.digest);
  assert.match(r.outputs.image!, /^oci:.*\/image\.oci$/);
  const index = JSON.parse(await readFile(join(r.outputs.image!.slice(4), 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.equal(index.manifests[0]!.digest, first.digest);
});

test('labels, annotations and sbom: the layout holds them, with the CI metadata of the run', async (t) => {
  if (!(await fixture.need(t))) return;
  const r = await job({ spec: 'hello', cache: 'false', labels: 'com.example.team=infra\norg.opencontainers.image.title=hello, labelled', annotations: 'com.example.ticket=OPS-7', sbom: 'spdx' });
  assert.ok(r.ok, explain(r));
  const layout = r.outputs.image!.slice(4);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  assert.equal(index.manifests[0]!.digest, r.outputs.digest);
  assert.match(index.manifests[1]!.annotations['org.opencontainers.image.ref.name']!, /^sha256-[0-9a-f]{64}$/);
  const blob = (d: string) => readFile(join(layout, 'blobs/sha256', d.slice(7)), 'utf8').then((t) => JSON.parse(t));
  const manifest = await blob(r.outputs.digest!);
  assert.equal(manifest.annotations['com.example.ticket'], 'OPS-7');
  assert.equal(manifest.annotations['org.opencontainers.image.created'], '1970-01-01T00:00:01Z');
  assert.match(manifest.annotations['org.opencontainers.image.source'], /^https:\/\/github\.com\//);
  assert.match(manifest.annotations['org.opencontainers.image.revision'], /^[0-9a-f]{40}$/);
  const config = await blob(manifest.config.digest);
  assert.equal(config.config.Labels['com.example.team'], 'infra');
  assert.equal(config.config.Labels['org.opencontainers.image.title'], 'hello, labelled');
  const referrers = await blob(index.manifests[1]!.digest);
  assert.deepEqual(referrers.manifests.map((m: { artifactType: string }) => m.artifactType), ['application/spdx+json']);
  assert.deepEqual(JSON.parse(r.outputs.json!).sboms.map((s: { subject: string }) => s.subject), [r.outputs.digest]);
});

test('malformed inputs are refused with a message saying why, before anything is installed or built', async (t) => {
  if (!(await fixture.need(t))) return;
  const cases: [Record<string, string>, RegExp][] = [
    [{ annotations: 'org.opencontainers.image.source' }, /::error title=imgbuild action::annotations: 'org\.opencontainers\.image\.source' is not key=value/],
    [{ labels: 'a=b\n=c' }, /::error title=imgbuild action::labels: '=c' is not key=value/],
    [{ sbom: 'xml' }, /::error title=imgbuild action::sbom: 'xml' is not an SBOM format/],
    [{ push: 'true' }, /::error title=imgbuild action::tags: push: true needs at least one image reference/],
    [{ tags: 'latest' }, /::error title=imgbuild action::tags: given without push: true/],
    [{ push: 'true', tags: 'latest' }, /::error title=imgbuild action::tags: the first entry must be a full reference/],
    [{ push: 'true', tags: 'ghcr.io/acme/app:1, ghcr.io/acme/other:1' }, /::error title=imgbuild action::tags: 'ghcr.io\/acme\/other:1' is not in the repository of 'ghcr.io\/acme\/app:1'/],
    [{ push: 'yes' }, /::error title=imgbuild action::push: expected true or false, got 'yes'/],
    [{ spec: 'no-such-spec' }, /::error title=imgbuild action::spec: 'no-such-spec' does not exist/],
  ];
  for (const [inputs, message] of cases) {
    const r = await job({ spec: 'hello', ...inputs });
    assert.equal(r.ok, false, JSON.stringify(inputs));
    assert.equal(r.steps[0]!.conclusion, 'failure');
    assert.match(r.steps[0]!.log, message);
    assert.doesNotMatch(r.steps[0]!.log, /Install imgbuild|imgbuild \d/);
    assert.deepEqual(r.steps.slice(1).map((s) => s.conclusion), ['skipped', 'skipped', 'skipped', 'skipped'], JSON.stringify(inputs));
  }
  // sbom: false is the same as not set.
  const off = await job({ spec: 'hello', sbom: 'false', cache: 'false' });
  assert.ok(off.ok, explain(off));
});
