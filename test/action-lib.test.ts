// scripts/action/lib.sh, the shell functions the action's steps share, and the simulated
// runner's reading of file commands and expressions (test/helpers/github-action.ts): bash only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from './helpers/cli.js';
import { evaluate, interpolate, parseFileCommand } from './helpers/github-action.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

/** Run `script` in bash after sourcing lib.sh, with a GITHUB_OUTPUT file; stdout, status and the outputs written. */
async function lib(script: string) {
  const dir = await tempDir('imgbuild-action-lib-');
  const output = join(dir, 'output');
  const r = await runCommand('bash', ['-euo', 'pipefail', '-c', `. "${join(repoRoot, 'scripts/action/lib.sh')}"\n${script}`], { env: { PATH: process.env.PATH!, GITHUB_OUTPUT: output } });
  let written = '';
  try {
    written = await readFile(output, 'utf8');
  } catch {
    // nothing written
  }
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr, outputs: parseFileCommand(written) };
}

test('split_list: items separated by newlines or commas, trimmed, empty ones dropped', async () => {
  const r = await lib(`split_list $' a, b\\n\\n  c ,,\\nlinux/arm64/v8 '`);
  assert.equal(r.stdout, 'a\nb\nc\nlinux/arm64/v8\n');
  assert.equal((await lib('split_list ""')).stdout, '');
});

test('repo_of and tag_of: a port is not a tag', async () => {
  const r = await lib('for ref in ghcr.io/acme/app:1.0 localhost:5000/app localhost:5000/app:dev app:1 ghcr.io/acme/app; do echo "$(repo_of "$ref")|$(tag_of "$ref")"; done');
  assert.equal(r.stdout, 'ghcr.io/acme/app|1.0\nlocalhost:5000/app|\nlocalhost:5000/app|dev\napp|1\nghcr.io/acme/app|\n');
});

test('parse_tags: the first full reference is the target, the rest become tags of its repository', async () => {
  const r = await lib(`parse_tags $'127.0.0.1:5000/ci/app:1\\nlatest, 127.0.0.1:5000/ci/app:2'; echo "$PUSH_REF"; printf '%s\\n' "\${PUSH_TAGS[@]}"`);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, '127.0.0.1:5000/ci/app:1\nlatest\n2\n');
  const bad = await lib(`parse_tags 'ghcr.io/acme/app:1, ghcr.io/acme/app:not/a/tag'`);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /^::error title=imgbuild action::tags: 'ghcr.io\/acme\/app:not\/a\/tag' is not in the repository/);
  const digest = await lib(`parse_tags 'ghcr.io/acme/app@sha256:${'0'.repeat(64)}'`);
  assert.match(digest.stdout, /names a digest/);
});

test('set_output: one line as name=value, several lines in a delimited block GitHub reads back', async () => {
  const json = '{\n  "digest": "sha256:abc"\n}';
  const r = await lib(`set_output digest sha256:abc; set_output json '${json}'`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.outputs, { digest: 'sha256:abc', json });
});

test('fail: an error annotation, with newlines and % escaped as GitHub wants', async () => {
  const r = await lib(`fail $'50% done\\nthen stopped'`);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '::error title=imgbuild action::50%25 done%0Athen stopped\n');
});

test('the simulated runner evaluates expressions as GitHub does', () => {
  const ctx = { inputs: { cache: 'true', empty: '' }, steps: { setup: { outputs: { 'cache-dir': '/c' } } }, env: {}, github: { token: 't' } };
  assert.equal(evaluate("inputs.cache == 'TRUE'", ctx), true);
  assert.equal(evaluate("steps.setup.outputs.cache-dir", ctx), '/c');
  assert.equal(evaluate('env.GITHUB_TOKEN || github.token', ctx), 't');
  assert.equal(evaluate("!(inputs.empty) && inputs.cache != 'false'", ctx), true);
  assert.equal(evaluate('steps.missing.outputs.x', ctx), null);
  assert.equal(interpolate('${{ steps.setup.outputs.cache-dir }}/layers', ctx), '/c/layers');
  assert.throws(() => evaluate('unknown.x', ctx), /unknown context unknown/);
});
