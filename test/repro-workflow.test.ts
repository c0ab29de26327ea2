// The GitHub Actions example is a workflow GitHub can run, and every imgbuild command line in it
// is one our CLI accepts (the step that verifies against the pushed digest in particular).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';

interface Step {
  name?: string;
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

const file = join(repoRoot, 'examples/github-actions/build-and-verify.yml');
const workflow = parse(await readFile(file, 'utf8')) as Workflow;

/** `node dist/builder/cli.js <command> ...` lines of a step's script, as argument lists. */
function imgbuildCommands(step: Step): string[][] {
  return (step.run ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('node dist/builder/cli.js '))
    .map((l) => l.replace(/\s*>.*$/, '').split(/\s+/).slice(2));
}

test('the workflow builds and pushes with GITHUB_TOKEN and packages: write, and hands the digest to the verify job', () => {
  assert.equal(workflow.permissions.packages, 'write');
  const build = workflow.jobs.build!;
  const push = build.steps.find((s) => s.run?.includes('--push'))!;
  assert.equal(push.env?.GITHUB_TOKEN, '${{ secrets.GITHUB_TOKEN }}');
  assert.match(push.run!, /node dist\/builder\/cli\.js build "\$SPEC" --push "\$image:\$\{GITHUB_SHA\}" --json/);
  assert.equal(workflow.env.IMAGE, 'ghcr.io/${{ github.repository }}');
  assert.deepEqual(build.outputs, { image: '${{ steps.push.outputs.image }}', digest: '${{ steps.push.outputs.digest }}' });
  const verify = workflow.jobs.verify!;
  assert.equal(verify.needs, 'build');
  assert.deepEqual(verify.strategy?.matrix.node, [20, 22, 24]);
});

test('the build job restores the layer records, not the blobs, before it pushes', () => {
  const steps = workflow.jobs.build!.steps;
  const cache = steps.findIndex((s) => s.uses === 'actions/cache@v4');
  const push = steps.findIndex((s) => s.run?.includes('--push'));
  assert.ok(cache >= 0 && cache < push, 'a cache step before the push');
  assert.deepEqual(steps[cache]!.with, {
    path: '~/.cache/imgbuild/layers',
    key: 'imgbuild-layers-${{ runner.os }}-${{ github.sha }}',
    'restore-keys': 'imgbuild-layers-${{ runner.os }}-',
  });
});

test('every build step sets SOURCE_DATE_EPOCH to the commit time', () => {
  const steps = Object.values(workflow.jobs).flatMap((j) => j.steps).filter((s) => imgbuildCommands(s).length > 0);
  assert.ok(steps.length >= 3);
  for (const s of steps) assert.match(s.run!, /export SOURCE_DATE_EPOCH="\$\(git log -1 --format=%ct\)"/, s.name);
});

test('every imgbuild command line in it uses options the CLI accepts', async () => {
  const commands = Object.values(workflow.jobs).flatMap((j) => j.steps.flatMap(imgbuildCommands));
  assert.deepEqual(commands.map((c) => c[0]), ['verify', 'build', 'verify']);
  assert.ok(commands[2]!.includes('--against'));
  for (const c of commands) {
    const help = await runCli([c[0]!, '--help']);
    assert.equal(help.code, 0, help.stderr);
    for (const opt of c.filter((a) => a.startsWith('--'))) assert.match(help.stdout.toString(), new RegExp(`^\\s+(-\\w, )?${opt}\\b`, 'm'), `${opt} in: imgbuild ${c[0]} --help`);
  }
});
