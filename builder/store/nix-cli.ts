import { execFile } from 'node:child_process';
import { StoreError } from '../errors.js';

export interface NixRunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
}

/** A failed Nix command: its exit status and stderr, kept for the caller to decide on fallbacks. */
export class NixCommandError extends StoreError {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly notFound: boolean,
  ) {
    const tail = stderr.trim().split('\n').slice(-6).join('\n');
    super(
      notFound ? `${command.split(' ')[0]} is not installed or not on PATH` : `${command} failed${tail ? `:\n${tail}` : ''}`,
      [],
      notFound ? 'install Nix, or use a closure file or a store directory instead' : undefined,
    );
  }
}

const NIX_FEATURES = ['--extra-experimental-features', 'nix-command flakes'];

/** Runs a Nix command; resolves with stdout. Output can be large (a closure's JSON), hence the big buffer. */
export function runNix(cmd: string, args: string[], opts: NixRunOptions = {}): Promise<string> {
  const fullArgs = cmd === 'nix' ? [...NIX_FEATURES, ...args] : args;
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      fullArgs,
      { env: opts.env, cwd: opts.cwd, maxBuffer: 1 << 30, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const notFound = (err as NodeJS.ErrnoException).code === 'ENOENT';
          reject(new NixCommandError(`${cmd} ${args.join(' ')}`, stderr, notFound));
        } else resolve(stdout);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}
