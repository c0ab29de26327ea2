import { Worker } from 'node:worker_threads';
import { SPEC_THREAD_BUNDLE, threadScript } from '../install-paths.js';
import { timerDelay } from '../../registry-client/timer.js';
import { SpecError } from '../errors.js';
import { specErrorFrom, type SpecThreadInput, type SpecThreadMessage } from './thread-protocol.js';

/** How long a TS/JS spec may take to load by default: generous for a spec that runs a command, short of a CI job's patience. */
export const DEFAULT_SPEC_TIMEOUT_MS = 60_000;

/** A limit as a person reads it: `2 s`, or `200 ms` under a second. */
const span = (ms: number) => (ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`);

/** A spec that did not finish loading in time (its thread was ended: nothing of it runs on). */
export class SpecTimeoutError extends SpecError {}

const timeoutHint = (ms: number) => `a spec must finish loading within ${span(ms)}; if it really needs longer, set IMGBUILD_SPEC_TIMEOUT=<seconds>`;

/**
 * Evaluate a TS/JS spec in a worker thread of its own (spec-thread.ts), because a spec is code and
 * the process is not its own (a library's host, or the CLI). Nothing of the process is touched: not
 * `process.exit`, not its listeners, not `process.env`:
 * - the thread's `process.env` is `env` and nothing else;
 * - `process.exit()` called by the spec ends its thread and fails the load;
 * - whatever the spec throws from a timer or callback, and a promise it rejects with nothing to
 *   handle it, fails the load naming the spec;
 * - a promise that nothing will ever settle (the thread's event loop empties while waiting) fails
 *   the load at once, naming the spec;
 * - with `timeoutMs` (the CLI's; a library caller's own choice), a spec still loading after it,
 *   waiting (on a socket, a child process) or computing (an endless loop), has its thread
 *   terminated and the load fails with a {@link SpecTimeoutError}.
 * - what the spec prints, on stdout or stderr, goes to this process's stderr.
 * The spec's value comes back as plain data (structured clone); a SpecError the spec throws
 * comes back as a SpecError of this thread's class, with its message, field and hint.
 */
export function evaluateInThread(file: string, env: Readonly<Record<string, string | undefined>>, timeoutMs: number | undefined): Promise<unknown> {
  const own: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') own[k] = v;
  const input: SpecThreadInput = { file, env: own };
  return new Promise((resolve, reject) => {
    // The spec's console output (stdout too) goes to stderr: stdout carries a command's result
    // alone (`DIGEST=$(imgbuild build image.ts)`), and a spec that logs must not change it.
    const worker = new Worker(threadScript(SPEC_THREAD_BUNDLE, 'spec/spec-thread.js'), { workerData: input, env: { ...own }, stdout: true });
    worker.stdout.pipe(process.stderr, { end: false });
    let outcome: SpecThreadMessage | undefined;
    let failure: unknown;
    let timedOut: SpecTimeoutError | undefined;
    let timer: NodeJS.Timeout | undefined;
    worker.on('message', (m: SpecThreadMessage) => {
      if (!timedOut) outcome ??= m;
    });
    // The thread's script itself failed (not the spec: spec-thread.ts reports the spec's failures).
    worker.on('error', (e) => {
      failure ??= e;
    });
    worker.on('exit', () => {
      clearTimeout(timer);
      if (timedOut) return reject(timedOut);
      if (outcome?.kind === 'value') return resolve(outcome.value);
      if (outcome?.kind === 'error') return reject(specErrorFrom(outcome.error));
      if (outcome?.kind === 'internal') return reject(Object.assign(new Error(outcome.message), { stack: outcome.stack }));
      if (failure !== undefined) return reject(failure);
      reject(new SpecError(file, undefined, 'never finished loading: it waits on a promise that nothing will settle', 'check that every promise the spec awaits is resolved (a missing resolve() call, an event that never comes)'));
    });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        if (outcome !== undefined) return;
        timedOut = new SpecTimeoutError(file, undefined, `did not finish loading within ${span(timeoutMs)}`, timeoutHint(timeoutMs));
        // Ends the thread even in a synchronous loop; 'exit' then settles the load.
        void worker.terminate();
        // A limit past Node's timer maximum (~24.8 days) is no limit, not one that fires at once.
      }, timerDelay(timeoutMs));
      // The thread holds the process while the spec loads; the timer need not.
      timer.unref();
    }
  });
}
