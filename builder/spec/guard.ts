import { Worker } from 'node:worker_threads';
import { timerDelay } from '../../registry-client/timer.js';
import { SpecError } from '../errors.js';
import { thrownText } from './errors.js';

/** How long a TS/JS spec may take to load by default: generous for a spec that runs a command, short of a CI job's patience. */
export const DEFAULT_SPEC_TIMEOUT_MS = 60_000;

/** `process.exit` called by a spec while it loads (thrown into the spec to stop it, and the load fails with it). */
class SpecExit extends SpecError {
  constructor(file: string, code: unknown) {
    super(file, undefined, `called process.exit(${code === undefined ? '' : String(code)}) while it was loaded: a spec returns its image, it does not end the process`, 'throw an Error to refuse to build (its message is shown), or return the spec');
  }
}

/** A limit as a person reads it: `2 s`, or `200 ms` under a second. */
const span = (ms: number) => (ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`);

/**
 * A spec that did not finish loading in time: it may still hold timers, sockets or children that
 * keep the process alive, so the CLI exits once it has said so (cli.ts) instead of waiting on them.
 */
export class SpecTimeoutError extends SpecError {
  readonly stillRunning = true;
}

const timeoutHint = (ms: number) => `a spec must finish loading within ${span(ms)}; if it really needs longer, set IMGBUILD_SPEC_TIMEOUT=<seconds>`;

/**
 * Run a spec's evaluation (`run`) in this process, guarded, because a spec is code:
 * - a promise that nothing will ever settle (the event loop empties while waiting: Node would
 *   exit with code 13 and no word) fails at once, naming the spec;
 * - with `timeoutMs` (the CLI's; a library caller's own choice), a spec still waiting after it
 *   (on a socket, a child process) fails;
 * - `process.exit()` called by the spec fails the load instead of ending the process (exit 0,
 *   having built nothing);
 * - whatever the spec throws from a timer or callback, and a promise it rejects with nothing to
 *   handle it, fails the load naming the spec (not an internal error, not a crash mid-build);
 * - with `timeoutMs`, a spec that never yields (an endless loop: no timer of this thread can
 *   fire) is ended by a watchdog thread after it, which prints the error and stops the process with SIGTERM
 *   (`spec` code, exit by signal; nothing was written). No signal handler is installed while a
 *   spec loads, so a SIGTERM or SIGINT from outside ends such a spec too.
 */
export async function guardedEvaluation<T>(file: string, timeoutMs: number | undefined, run: () => Promise<T>): Promise<T> {
  let fail!: (err: unknown) => void;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const onBeforeExit = () => fail(new SpecError(file, undefined, 'never finished loading: it waits on a promise that nothing will settle', 'check that every promise the spec awaits is resolved (a missing resolve() call, an event that never comes)'));
  const onUncaught = (err: unknown) => {
    // Our own process.exit stand-in, thrown from a spec's timer or callback: the load failed with it already.
    if (err instanceof SpecExit) return;
    fail(err instanceof SpecError ? err : new SpecError(file, undefined, `threw while it was loaded (in a timer or callback): ${thrownText(err)}`));
  };
  // A promise the spec rejected with nothing to catch it: Node would end the process for it once
  // the build had started, long after the spec was loaded.
  const onRejection = (reason: unknown) => {
    fail(reason instanceof SpecError ? reason : new SpecError(file, undefined, `a promise it made was rejected and nothing handled the rejection: ${thrownText(reason)}`));
  };
  const realExit = process.exit;
  process.exit = ((code?: unknown) => {
    const err = new SpecExit(file, code);
    fail(err);
    throw err;
  }) as typeof process.exit;
  process.on('beforeExit', onBeforeExit);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => fail(new SpecTimeoutError(file, undefined, `did not finish loading within ${span(timeoutMs)}`, timeoutHint(timeoutMs))), timerDelay(timeoutMs));
  // The timer must not keep the process alive: a spec waiting on nothing is caught by beforeExit.
  timer?.unref();
  const watchdog = timeoutMs === undefined ? undefined : startWatchdog(file, timeoutMs);
  try {
    return await Promise.race([thenATurn(run()), failed]);
  } finally {
    watchdog?.stop();
    clearTimeout(timer);
    process.exit = realExit;
    process.off('beforeExit', onBeforeExit);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
    failed.catch(() => undefined);
  }
}

/**
 * `value`, once the event loop has turned once more after it: Node reports the promises left
 * rejected with no handler when the microtasks run out, so a rejection the spec left behind is
 * seen while the guard still listens.
 */
async function thenATurn<T>(value: Promise<T>): Promise<T> {
  const v = await value;
  await new Promise<void>((resolve) => setImmediate(resolve));
  return v;
}

/**
 * A thread that waits `timeoutMs` (plus a little, so the main thread's own timer answers first
 * when it can) for `stop()`; when the main thread has not stopped it by then, the main thread is
 * stuck in the spec (it cannot run a timer): the watchdog prints the error on stderr and sends
 * SIGTERM to the process. It imports nothing, so it costs a thread start and no module loading.
 */
function startWatchdog(file: string, timeoutMs: number): { stop(): void } {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const message = `error[spec]: ${file}: did not finish loading within ${span(timeoutMs)} (it never yields: an endless loop?)\nhint: ${timeoutHint(timeoutMs)}\n`;
  const code = `
    const { workerData } = require('node:worker_threads');
    const { flag, waitMs, message } = workerData;
    if (Atomics.wait(flag, 0, 0, waitMs) === 'timed-out') {
      require('node:fs').writeSync(2, message);
      process.kill(process.pid, 'SIGTERM');
    }`;
  const worker = new Worker(code, { eval: true, workerData: { flag, waitMs: timeoutMs + 2000, message }, stdout: false, stderr: false });
  worker.unref();
  worker.on('error', () => undefined);
  return {
    stop() {
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    },
  };
}
