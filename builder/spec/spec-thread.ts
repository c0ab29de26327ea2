// The thread a TS/JS spec is evaluated in (guard.ts starts one per load): the spec is code, and
// here it runs with its own `process.env` (the environment it was given, nothing else), its own
// `process.exit` and its own uncaught exceptions and rejections, none of them the host's. It posts
// one message (thread-protocol.ts), the spec's value as plain data or the SpecError its loading
// failed with, and ends; when the spec waits on a promise that nothing settles, the thread's event
// loop empties and it ends having posted nothing.
import { parentPort, workerData } from 'node:worker_threads';
import type { z } from 'zod';
import { SpecError } from '../errors.js';
import { thrownText } from './errors.js';
import { formatField, knownKeysAt } from './issues.js';
import { evaluateModule } from './module-spec.js';
import { NotData, plainValue } from './plain-value.js';
import { userCodeError } from './resolve.js';
import { ImageSpecSchema } from './schema.js';
import { specErrorData, type SpecThreadInput, type SpecThreadMessage } from './thread-protocol.js';

const { file, env } = workerData as SpecThreadInput;
const port = parentPort!;
const end: (code?: number) => never = process.exit.bind(process);
let posted = false;

/** Post the outcome (the first only) and end the thread: the spec's timers and sockets end with it. */
function finish(message: SpecThreadMessage): never {
  if (!posted) {
    posted = true;
    try {
      port.postMessage(message);
    } catch (e) {
      port.postMessage({ kind: 'error', error: specErrorData(new SpecError(file, undefined, `its value cannot be handed over from the spec's thread: ${thrownText(e)}`, DATA_HINT)) } satisfies SpecThreadMessage);
    }
  }
  end(0);
}

const fail = (e: SpecError): never => finish({ kind: 'error', error: specErrorData(e) });

/** `process.exit` called by the spec while it loads: the load fails (the thread, not the process, ends). */
process.exit = ((code?: unknown) =>
  fail(new SpecError(file, undefined, `called process.exit(${code === undefined ? '' : String(code)}) while it was loaded: a spec returns its image, it does not end the process`, 'throw an Error to refuse to build (its message is shown), or return the spec'))) as typeof process.exit;
process.on('uncaughtException', (err) => {
  fail(err instanceof SpecError ? err : new SpecError(file, undefined, `threw while it was loaded (in a timer or callback): ${thrownText(err)}`));
});
// A promise the spec rejected with nothing to catch it.
process.on('unhandledRejection', (reason) => {
  fail(reason instanceof SpecError ? reason : new SpecError(file, undefined, `a promise it made was rejected and nothing handled the rejection: ${thrownText(reason)}`));
});

const DATA_HINT = "a spec's value is data (strings, numbers, booleans, arrays, objects, Dates): compute values before they are exported";
const keysAt = (path: readonly PropertyKey[]) => knownKeysAt(ImageSpecSchema as unknown as z.ZodType, path);

try {
  const value = await evaluateModule(file, env);
  // Once more around the event loop: Node reports the promises left rejected with no handler when
  // the microtasks run out, so a rejection the spec left behind fails the load.
  await new Promise<void>((resolve) => setImmediate(resolve));
  let plain: unknown;
  try {
    plain = plainValue(value, keysAt);
  } catch (e) {
    if (e instanceof NotData) {
      const field = formatField(e.path);
      throw new SpecError(file, field, `${field ? 'is' : 'the exported value is'} ${e.what}, which a spec cannot hand over from its thread`, DATA_HINT);
    }
    // A getter or Proxy trap of the spec threw: the same error validation gives for it.
    throw userCodeError(value, file, e) ?? e;
  }
  finish({ kind: 'value', value: plain });
} catch (e) {
  if (e instanceof SpecError) fail(e);
  // Not the spec's: imgbuild's own failure, an internal error where the spec was loaded.
  finish({ kind: 'internal', message: thrownText(e), stack: e instanceof Error ? e.stack : undefined });
}
