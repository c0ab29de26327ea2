import { ImgbuildError } from '../errors.js';
import { fsProblemOfCode } from '../fs/errno.js';
import { RegistryError, RegistryNetworkError } from '../../registry-client/errors.js';
import { isLoopbackRegistry } from '../../registry-client/loopback.js';
import { LayeringError } from '../../layering/errors.js';
import type { ErrorDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';

/**
 * The exit codes of every command (README, "Exit codes"): nothing else is ever returned.
 *  0   success; for diff and verify, "the same"
 *  1   an error; for diff and verify, "they differ"
 *  2   a usage error (an unknown option, a bad argument, options that cannot go together);
 *      for diff and verify, any error ("could not check")
 *  130 interrupted (Ctrl-C, SIGTERM)
 *  141 stdout closed by its reader (`| head -1`): as a program killed by SIGPIPE (stdout-errors.ts)
 */
export const EXIT = { ok: 0, error: 1, usage: 2, interrupted: 130, stdoutClosed: 141 } as const;

/** A failure as the CLI reports it: `error[<code>]: <message>`, `hint: <hint>`, and the exit code. */
export interface Failure {
  code: string;
  message: string;
  hint?: string;
  exitCode: number;
  /** For a bug in imgbuild: the stack, printed on stderr. */
  stack?: string;
}

/**
 * How to report `err`. `answering`: the command answers a question (diff, verify), so any error
 * exits 2 ("could not check"), keeping 1 for "they differ".
 */
export function describeFailure(err: unknown, answering = false): Failure {
  const errorExit = answering ? EXIT.usage : EXIT.error;
  // Three error classes of one shape: layering/ and registry-client/ stand alone, so theirs are their own.
  if (err instanceof ImgbuildError || err instanceof RegistryError || err instanceof LayeringError) {
    const hint = err.hint ?? causeHint(err) ?? (err.code === 'network' ? networkHint(err) : undefined);
    // `interrupted`: an interrupt that has more to say than "nothing was written" (build.ts: the output was, the push was stopped).
    return { code: err.code, message: err.message, ...(hint ? { hint } : {}), exitCode: err.code === 'usage' ? EXIT.usage : err.code === 'interrupted' ? EXIT.interrupted : errorExit };
  }
  if (isCommanderError(err)) {
    // Commander's `(Did you mean --push?)` on a line of its own goes into the hint.
    const [, message, near] = /^(?:error: )?(.*?)(?:\n\(Did you mean (.*)\?\))?$/s.exec(err.message)!;
    const help = `see ${err.commandPath ?? 'imgbuild'} --help`;
    return { code: 'usage', message: message!, hint: near ? `did you mean ${near}? ${help}` : help, exitCode: err.exitCode === 0 ? EXIT.ok : EXIT.usage };
  }
  if (err instanceof Error && err.name === 'AbortError') {
    return { code: 'interrupted', message: 'interrupted: nothing was written', exitCode: EXIT.interrupted };
  }
  // A file, a permission or a network failure a user can cause and fix: said as such, not as a crash.
  const sys = systemError(err);
  if (sys) return { ...sys, exitCode: errorExit };
  return {
    code: 'internal',
    message: `internal error: ${err instanceof Error ? err.message : String(err)}`,
    hint: 'this is a bug in imgbuild: please report it with the command line and this output',
    exitCode: errorExit,
    stack: err instanceof Error ? err.stack : undefined,
  };
}

/** Write a failure: the error lines on stderr, and with --json the error document on stdout. */
export function reportFailure(f: Failure, options: { json: boolean; alreadyPrinted?: boolean }): void {
  if (!options.alreadyPrinted) {
    if (f.code === 'internal') process.stderr.write(`${f.stack ? `internal error: ${f.stack}` : f.message}\n`);
    else if (f.code === 'interrupted') process.stderr.write(`${f.message}\n`);
    else process.stderr.write(`error[${f.code}]: ${f.message}\n`);
    if (f.hint) process.stderr.write(`hint: ${f.hint}\n`);
  }
  if (options.json) {
    const doc: ErrorDocument = { schemaVersion: SCHEMA_VERSION, error: { code: f.code, message: f.message, hint: f.hint ?? null } };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  }
}

/** A commander error; `commandPath` (`imgbuild build`) is the command it came from, as cli.ts marks it. */
function isCommanderError(err: unknown): err is Error & { code: string; exitCode: number; commandPath?: string } {
  return err instanceof Error && err.name === 'CommanderError' && typeof (err as { exitCode?: unknown }).exitCode === 'number';
}

/** The errors `err` was caused by, itself first (a few levels: undici and our clients wrap). */
function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 6; e = (e as { cause?: unknown }).cause, depth++) chain.push(e);
  return chain;
}

/** The hint of an imgbuild error that caused `err` (a registry upload failing on its source, say). */
function causeHint(err: Error): string | undefined {
  for (const e of causes(err).slice(1)) {
    if (e instanceof ImgbuildError && e.hint) return e.hint;
  }
  return undefined;
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_NODATA', 'EAI_FAIL']);
const DNS_HINT = 'check the host name in the image reference, and that this machine can resolve it (DNS, /etc/hosts, proxy settings)';
const CONNECT_HINT = 'check that the registry is up and reachable from here; a registry serving plain HTTP needs --insecure-registry <host[:port]>';
/** A registry on this machine is tried over plain HTTP and HTTPS without a flag: only whether it listens is left. */
const LOOPBACK_CONNECT_HINT = 'check that the registry is running and listening on that port (a registry on this machine needs no --insecure-registry)';

/**
 * A network error's hint, from what it was caused by: a name that does not resolve, or a
 * connection that failed (to a registry on this machine: no --insecure-registry asked for). The
 * registry's error may come wrapped (transports/registry.ts rethrows it as an ImgbuildError).
 */
function networkHint(err: unknown): string {
  const chain = causes(err);
  if (chain.some((e) => DNS_CODES.has(String((e as { code?: unknown }).code)))) return DNS_HINT;
  const registry = chain.find((e): e is RegistryNetworkError => e instanceof RegistryNetworkError);
  return registry && isLoopbackRegistry(registry.host) ? LOOPBACK_CONNECT_HINT : CONNECT_HINT;
}

/**
 * Node's errors for what a user's system or input causes: a missing file, no permission, a
 * read-only or failing disk, a name too long, no network (looked for down the cause chain).
 */
function systemError(err: unknown): { code: string; message: string; hint?: string } | undefined {
  for (const c of causes(err)) {
    const e = c as NodeJS.ErrnoException & { hostname?: string };
    if (!(c instanceof Error) || typeof e.code !== 'string') continue;
    const where = e.path ? ` ${e.path}` : e.hostname ? ` ${e.hostname}` : '';
    switch (e.code) {
      case 'ENOENT':
        return { code: 'file', message: `no such file or directory:${where || ` ${e.message}`}` };
      case 'EACCES':
      case 'EPERM':
        return { code: 'file', message: `permission denied:${where || ` ${e.message}`}` };
      case 'ENOSPC':
        return { code: 'file', message: `no space left on the device${where ? ` writing${where}` : ''}`, hint: 'free space, or prune the cache: imgbuild cache prune --max-size 5G' };
      case 'ENOTDIR':
      case 'EISDIR':
      case 'EEXIST':
        return { code: 'file', message: e.message };
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
      case 'EAI_NONAME':
      case 'EAI_NODATA':
      case 'EAI_FAIL':
        return { code: 'network', message: `cannot resolve the host${where || ` (${e.message})`}${e.code === 'EAI_AGAIN' ? ' (a temporary DNS failure)' : ''}`, hint: DNS_HINT };
      case 'ECONNREFUSED':
      case 'ECONNRESET':
      case 'ETIMEDOUT':
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return { code: 'network', message: e.message, hint: CONNECT_HINT };
      default: {
        // The rest of the file system's errors (fs/errno.ts's table: a read-only disk, a name too
        // long…), not imgbuild's: said with the path, as the others above.
        const problem = fsProblemOfCode(e.code);
        if (!problem) continue;
        const paths = [e.path, (e as { dest?: string }).dest].filter((p): p is string => typeof p === 'string');
        return { code: 'file', message: `${problem.what}${paths.length ? `: ${paths.join(' -> ')}` : ` (${e.syscall ?? e.message})`}`, hint: problem.hint() };
      }
    }
  }
  return undefined;
}
