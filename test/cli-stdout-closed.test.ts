// A script's reader may stop early (`| head -1`), and stdout or stderr may be a full disk: the CLI
// ends as a Unix tool does, never with an uncaught EPIPE and its stack (commands/stdout-errors.ts).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const hello = join(repoRoot, 'examples/hello');
let work: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  work = await tempDir('imgbuild-stdout-closed-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
});

/**
 * Runs `imgbuild <args>` with its stdout a pipe whose reader has already exited, so the first
 * write fails with EPIPE whatever the output's size; prints the CLI's exit code on stdout.
 */
function withClosedReader(args: string[]) {
  // The reader (`true`) is waited for before the CLI starts: `exec 3>` keeps the pipe's write end.
  const script = `mkfifo "$W/p"; (true < "$W/p") & exec 3> "$W/p"; wait; "$0" "$@" >&3 2>"$W/err"; echo $?`;
  return runCommand('bash', ['-c', script, process.execPath, cliPath, ...args], { env: { ...env, W: work } });
}

test('--help into a reader that has gone: exit 141 as for SIGPIPE, nothing on stderr', async () => {
  const r = await withClosedReader(['--help']);
  assert.equal(r.stdout.toString(), '141\n', r.stderr);
  assert.equal(readFileSync(join(work, 'err'), 'utf8'), '');
});

test('build into a reader that has gone: the output is written, then exit 141 without a stack', async () => {
  const out = join(work, 'closed.oci');
  const r = await withClosedReader(['build', hello, '-o', out]);
  assert.equal(r.stdout.toString(), '141\n');
  const stderr = readFileSync(join(work, 'err'), 'utf8');
  assert.doesNotMatch(stderr, /EPIPE|internal error|at /);
  assert.match(stderr, /^wrote oci /m);
  assert.ok(existsSync(join(out, 'index.json')));
});

test('--version into a reader that has gone: exit 141', async () => {
  const r = await withClosedReader(['--version']);
  assert.equal(r.stdout.toString(), '141\n');
});

test('stdout on a full disk: error[output] naming stdout, exit 1', async () => {
  const r = await runCommand('sh', ['-c', '"$0" "$1" --help > /dev/full', process.execPath, cliPath], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'error[output]: cannot write to stdout: no space left on the device\nhint: check where stdout goes (a redirect to a full disk?)\n');
});

test('--stream into a reader that has gone keeps its own message: the archive is incomplete', async () => {
  const r = await withClosedReader(['build', hello, '--stream']);
  assert.equal(r.stdout.toString(), '1\n');
  const stderr = readFileSync(join(work, 'err'), 'utf8');
  assert.match(stderr, /^error\[output\]: stdout was closed while the archive was streamed to it \(--stream\)/m);
});

test('stderr on a full disk: the build carries on, writes its output and prints its digest, exit 0', async () => {
  const out = join(work, 'stderr-full.oci');
  const r = await runCommand('sh', ['-c', '"$0" "$@" 2>/dev/full', process.execPath, cliPath, 'build', hello, '-o', out], { env });
  assert.equal(r.code, 0);
  assert.equal(r.stdout.toString(), 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580\n');
  assert.ok(existsSync(join(out, 'index.json')));
});

test('stderr on a full disk keeps the exit codes: a usage error is 2, a diff that could not check is 2', async () => {
  const usage = await runCommand('sh', ['-c', '"$0" "$@" 2>/dev/full', process.execPath, cliPath, 'build', hello, '--bogus'], { env });
  assert.equal(usage.code, 2);
  const diff = await runCommand('sh', ['-c', '"$0" "$@" 2>/dev/full', process.execPath, cliPath, 'diff', join(work, 'no-such.oci'), join(work, 'nor-this.oci')], { env });
  assert.equal(diff.code, 2);
});
