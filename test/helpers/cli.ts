import { spawn, type SpawnOptions } from 'node:child_process';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
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
  const env = options.env ?? process.env;
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

export function runCommand(cmd: string, args: string[], options: SpawnOptions = {}): Promise<RunResult> {
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
