import { spawn, type SpawnOptions } from 'node:child_process';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { z } from 'zod';
import { documentOf, documentSchemas, ErrorDocumentSchema } from '../../builder/commands/documents.js';
import { cliPath } from './paths.js';
import { tempDir } from './tmp.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Run the compiled CLI as a user would (a child process), collecting its output. Unless
 * `options.env` names an IMGBUILD_CACHE_DIR of the test's own (a test that looks into the cache,
 * or runs the CLI twice on one cache), the CLI gets a fresh empty cache dir, removed when it
 * exits: a test never reads or writes the user's cache (~/.cache/imgbuild, or an
 * IMGBUILD_CACHE_DIR set where the tests were started), nor another test's.
 */
export async function runCli(args: string[], options: SpawnOptions = {}): Promise<RunResult> {
  const env = withoutCiEnv(options.env ?? process.env);
  options = { ...options, env };
  if (env.IMGBUILD_CACHE_DIR && env.IMGBUILD_CACHE_DIR !== process.env.IMGBUILD_CACHE_DIR) {
    return runCommand(process.execPath, [cliPath, ...args], options);
  }
  const cache = await tempDir('imgbuild-cli-cache-');
  try {
    return await runCommand(process.execPath, [cliPath, ...args], { ...options, env: { ...env, IMGBUILD_CACHE_DIR: cache } });
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}

/**
 * The environment without the variables that turn on `--ci-metadata` (GITHUB_ACTIONS, GITLAB_CI):
 * the suite's images must have their digests when the suite itself runs in CI. A test that
 * simulates a CI sets IMGBUILD_TEST_KEEP_CI=1 in its env to keep them.
 */
export function withoutCiEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.IMGBUILD_TEST_KEEP_CI === '1') return env;
  const { GITHUB_ACTIONS: _g, GITLAB_CI: _l, ...rest } = env;
  return rest;
}

/**
 * Run a command. When it is the CLI (`cliPath` among the arguments) and its arguments include
 * `--json`, its stdout is checked against the document's schema (checkJsonOutput): every --json
 * output the suite produces is checked, wherever a test runs the CLI from.
 */
export async function runCommand(cmd: string, args: string[], options: SpawnOptions = {}): Promise<RunResult> {
  const r = await spawnCollect(cmd, args, options);
  const at = args.indexOf(cliPath);
  if (at >= 0) checkJsonOutput(args.slice(at + 1), r);
  return r;
}

/**
 * With `--json`, stdout must be exactly one JSON document that validates against its schema
 * (builder/commands/documents.ts, from which schemas/*.schema.json are generated): the command's
 * document when it succeeded (for diff and verify, exit 1 too: "they differ"), the error
 * document when it failed (for cache verify, exit 1 is its document: the damage it found). A process killed by a signal (no chance to answer) is not checked.
 */
export function checkJsonOutput(cliArgs: readonly string[], r: Pick<RunResult, 'code' | 'signal' | 'stdout' | 'stderr'>): void {
  const end = cliArgs.indexOf('--');
  const options = end < 0 ? cliArgs : cliArgs.slice(0, end);
  if (!options.includes('--json') || options.includes('--help') || options.includes('-h') || r.signal !== null) return;
  const name = documentOf(cliArgs);
  const what = `imgbuild ${cliArgs.join(' ')} (exit ${r.code})`;
  const text = r.stdout.toString();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`${what}: stdout is not one JSON document:\n${text.slice(0, 2000)}\nstderr:\n${r.stderr}`);
  }
  if (!text.endsWith('}\n')) throw new Error(`${what}: stdout does not end with the document and one newline`);
  const failed = r.code !== 0 && !((name === 'diff' || name === 'verify' || name === 'cache-verify') && r.code === 1);
  const schema = failed ? ErrorDocumentSchema : name ? documentSchemas[name] : undefined;
  if (!schema) throw new Error(`${what}: no document schema for this command (documentOf in builder/commands/documents.ts)`);
  const checked = schema.safeParse(doc);
  if (!checked.success) {
    throw new Error(`${what}: stdout does not match the ${failed ? 'error' : name} document's schema:\n${z.prettifyError(checked.error)}\n${text.slice(0, 2000)}\nstderr:\n${r.stderr}`);
  }
}

function spawnCollect(cmd: string, args: string[], options: SpawnOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: err }));
  });
}

const execFileP = promisify(execFile);

/** Run a system tool; reject with its stderr when it fails. */
export async function tool(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { ...options, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}
