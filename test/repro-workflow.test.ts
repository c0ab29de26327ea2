// The CI examples: the GitHub Actions workflow is one GitHub can run, using the action at the
// root of this repository (action.yml) the way another repository would, and the GitLab CI file
// runs the same flow; every imgbuild command line in them and in the action's scripts is one our
// CLI accepts. (test/action.test.ts runs the action itself.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';

interface Step {
  name?: string;
  id?: string;
  run?: string;
  uses?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: unknown;
  permissions: Record<string, string>;
  env: Record<string, string>;
  jobs: Record<string, { 'runs-on': string; needs?: string; steps: Step[]; outputs?: Record<string, string>; strategy?: { matrix: Record<string, unknown[]> } }>;
}
interface Action {
  inputs: Record<string, { required?: boolean; default?: string; description: string }>;
  outputs: Record<string, { value: string }>;
  runs: { using: string; steps: (Step & { if?: string })[] };
}

const workflow = parse(await readFile(join(repoRoot, 'examples/github-actions/build-and-verify.yml'), 'utf8')) as Workflow;
const action = parse(await readFile(join(repoRoot, 'action.yml'), 'utf8')) as Action;
const ACTION = '<owner>/imgbuild@v0';

const actionSteps = (job: string) => workflow.jobs[job]!.steps.filter((s) => s.uses === ACTION);

test('the workflow builds, verifies and pushes with the action, GITHUB_TOKEN and packages: write, and hands the image to the verify job', () => {
  assert.equal(workflow.permissions.packages, 'write');
  assert.equal(workflow.env.IMAGE, 'ghcr.io/${{ github.repository }}');
  const build = workflow.jobs.build!;
  const [step, ...more] = actionSteps('build');
  assert.equal(more.length, 0);
  assert.equal(step!.id, 'imgbuild');
  assert.deepEqual(step!.with, {
    spec: '${{ env.SPEC }}',
    verify: true,
    push: true,
    tags: '${{ steps.env.outputs.image }}:${{ github.sha }}\nlatest\n',
  });
  // The lowercased name comes from an earlier step of the job.
  const env = build.steps.findIndex((s) => s.id === 'env');
  assert.ok(env >= 0 && env < build.steps.indexOf(step!));
  assert.match(build.steps[env]!.run!, /echo "image=\$\{IMAGE,,\}" >> "\$GITHUB_OUTPUT"/);
  assert.deepEqual(build.outputs, { image: '${{ steps.imgbuild.outputs.image }}', digest: '${{ steps.imgbuild.outputs.digest }}' });

  // The action hands the job's token to imgbuild (which reads GITHUB_TOKEN for ghcr.io) unless the step sets one.
  assert.equal(action.runs.steps.find((s) => s.id === 'build')!.env!.GITHUB_TOKEN, '${{ env.GITHUB_TOKEN || github.token }}');

  const verify = workflow.jobs.verify!;
  assert.equal(verify.needs, 'build');
  assert.deepEqual(verify.strategy?.matrix.node, [20, 22, 24]);
  assert.deepEqual(actionSteps('verify').map((s) => s.with), [{ spec: '${{ env.SPEC }}', cache: false, verify: 'docker://${{ needs.build.outputs.image }}' }]);
});

test("every use of the action gives its required inputs and only inputs action.yml declares; the outputs it reads exist", () => {
  const required = Object.entries(action.inputs).filter(([, i]) => i.required).map(([n]) => n);
  for (const job of Object.keys(workflow.jobs)) {
    for (const step of actionSteps(job)) {
      for (const name of Object.keys(step.with ?? {})) assert.ok(name in action.inputs, `${job}: input ${name} is in action.yml`);
      for (const name of required) assert.ok(name in (step.with ?? {}), `${job}: gives ${name}`);
    }
  }
  for (const value of Object.values(workflow.jobs.build!.outputs!)) {
    const output = /steps\.imgbuild\.outputs\.(\w+)/.exec(value)![1]!;
    assert.ok(output in action.outputs, output);
  }
  assert.deepEqual(Object.keys(action.inputs).sort(), ['annotations', 'args', 'cache', 'labels', 'platforms', 'push', 'sbom', 'spec', 'tags', 'verify']);
  assert.deepEqual(Object.keys(action.outputs).sort(), ['digest', 'image', 'json']);
  assert.match(action.runs.using, /^composite$/);
});

test('the action keeps the layer records, not the blobs: restored before the build, pruned and saved after it', () => {
  const steps = action.runs.steps;
  const restore = steps.findIndex((s) => s.uses === 'actions/cache/restore@v4');
  const build = steps.findIndex((s) => s.id === 'build');
  const prune = steps.findIndex((s) => /prune\.sh/.test(s.run ?? ''));
  const save = steps.findIndex((s) => s.uses === 'actions/cache/save@v4');
  assert.ok(restore >= 0 && restore < build && build < prune && prune < save, 'restore, build, prune, save');
  for (const i of [restore, save]) {
    assert.equal(steps[i]!.with!.path, '${{ steps.setup.outputs.records }}');
    assert.equal(steps[i]!.with!.key, '${{ steps.setup.outputs.cache-key }}');
    assert.equal(steps[i]!.if, "steps.setup.outputs.cache == 'true'");
  }
  assert.equal(action.inputs.cache!.default, 'true');
});

test('every job sets SOURCE_DATE_EPOCH to the commit time before the action runs', () => {
  for (const [name, job] of Object.entries(workflow.jobs)) {
    const set = job.steps.findIndex((s) => /echo "SOURCE_DATE_EPOCH=\$\(git log -1 --format=%ct\)" >> "\$GITHUB_ENV"/.test(s.run ?? ''));
    const uses = job.steps.findIndex((s) => s.uses === ACTION);
    assert.ok(set >= 0 && set < uses, name);
  }
});

test('the workflow works copied into another repository: no step builds imgbuild or runs it from this checkout', () => {
  for (const [name, job] of Object.entries(workflow.jobs)) {
    for (const step of job.steps) assert.doesNotMatch(step.run ?? '', /npm (ci|run|install)|dist\/|node /, `${name}: ${step.name ?? step.uses}`);
    assert.ok(job.steps.some((s) => s.uses === 'actions/setup-node@v4'), `${name}: a Node for the action`);
  }
  assert.doesNotMatch(JSON.stringify(workflow.env), /examples\//);
});

/** An imgbuild command in a shell line (`imgbuild ...`, `... | imgbuild ...`, `"$imgbuild" ...`): its command (one or two words) and its options. */
function commandLine(line: string): { command: string; options: string[] } | undefined {
  const m = /(?:^\s*|\|\s*)imgbuild\s+(.*)$|"\$(?:imgbuild|\{IMGBUILD:-imgbuild\})"\s+(.*)$/.exec(line);
  if (!m) return undefined;
  const c = /^((?:cache|index)\s+[a-z]+|[a-z]+)\b(.*)$/.exec((m[1] ?? m[2])!)!;
  return { command: c[1]!.replace(/\s+/, ' '), options: [...c[2]!.matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)].map((o) => o[1]!) };
}

async function checkOptions(where: string, lines: string[]): Promise<string[]> {
  const seen: string[] = [];
  for (const line of lines) {
    const c = commandLine(line);
    if (!c) continue;
    seen.push(c.command);
    const help = await runCli([...c.command.split(' '), '--help']);
    assert.equal(help.code, 0, `${where}: imgbuild ${c.command} --help: ${help.stderr}`);
    for (const opt of c.options) assert.match(help.stdout.toString(), new RegExp(`^\\s+(-\\w, )?${opt}\\b`, 'm'), `${where}: ${opt} in imgbuild ${c.command} --help`);
  }
  return seen;
}

test("every imgbuild command line in the action's scripts uses options the CLI accepts", async () => {
  const dir = join(repoRoot, 'scripts/action');
  const commands: string[] = [];
  for (const f of (await readdir(dir)).sort()) {
    const lines = (await readFile(join(dir, f), 'utf8')).split('\n').filter((l) => /"\$(imgbuild|\{IMGBUILD:-imgbuild\})" /.test(l));
    commands.push(...(await checkOptions(`scripts/action/${f}`, lines)));
  }
  assert.deepEqual(commands, ['verify', 'verify', 'build', 'build', 'cache prune']);
});

test('the GitLab CI example runs the same flow, with options the CLI accepts', async () => {
  const gitlab = parse(await readFile(join(repoRoot, 'examples/gitlab-ci/.gitlab-ci.yml'), 'utf8')) as {
    variables: Record<string, string>;
    default: { image: string; before_script: string[] };
    [job: string]: unknown;
  };
  const build = gitlab.build as { script: string[]; cache: { paths: string[] }; artifacts: { reports: { dotenv: string } } };
  const verify = gitlab.verify as { script: string[]; needs: string[]; parallel: { matrix: { NODE: string[] }[] } };
  const lines = [...gitlab.default.before_script, ...build.script, ...verify.script];
  assert.deepEqual(await checkOptions('examples/gitlab-ci/.gitlab-ci.yml', lines), ['login', 'verify', 'build', 'cache prune', 'verify']);
  assert.ok(gitlab.default.before_script.includes('export SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)"'));
  assert.match(gitlab.default.before_script[0]!, /^npm i -g --install-links "\$IMGBUILD_PACKAGE"$/);
  assert.equal(gitlab.variables.IMGBUILD_CACHE_DIR, '$CI_PROJECT_DIR/.imgbuild-cache');
  assert.deepEqual(build.cache.paths, ['.imgbuild-cache/layers/']);
  assert.ok(build.script.some((l) => l.includes('--push "$IMAGE:$CI_COMMIT_SHA" --tag latest --digest-file digest.txt')));
  assert.equal(build.artifacts.reports.dotenv, 'build.env');
  assert.deepEqual(verify.needs, ['build']);
  assert.deepEqual(verify.parallel.matrix[0]!.NODE, ['20', '22', '24']);
  assert.ok(verify.script.some((l) => l.includes('--against "docker://$IMAGE@$IMAGE_DIGEST"')));
});
