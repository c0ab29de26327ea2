import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { newBuildWorker, workersOff } from '../workers/options.js';

/**
 * The build's first worker, started by the executable (bin.ts) before the build command loads.
 * A worker takes ~0.15 s of one core to start (Node's own start-up in the thread, then its
 * bundle), and the pool used to start it only once the closure's first scan job was ready, after
 * the main thread had loaded the command (~0.15 s on the other core): on the 1 GB bench store
 * the worker scanned its first path ~0.35 s into the run, the main thread ~0.15 s. Started here
 * the two start-ups overlap; the build's pool takes it as its first worker (BuildContext
 * `startedWorker`), and one the build does not take (every layer cached, workers not wanted) is
 * terminated when the build ends.
 *
 * Kept on globalThis under a registered symbol: the executable and the build command are bundled
 * apart (scripts/bundle-cli.mjs), each with its own copy of this module.
 */
const SLOT = Symbol.for('imgbuild.earlyBuildWorker');

interface Slot {
  worker?: Worker;
}

function slot(): Slot {
  const g = globalThis as { [SLOT]?: Slot };
  return (g[SLOT] ??= {});
}

/**
 * Starts the build worker when `args` run a build that the pool would give one: more than one
 * core, workers not turned off (IMGBUILD_WORKERS), not `--help`. Returns the worker started
 * (or started already and not yet taken), undefined when none is.
 */
export function startEarlyBuildWorker(args: readonly string[], env: Readonly<Record<string, string | undefined>>, cores: number = availableParallelism()): Worker | undefined {
  if (args[0] !== 'build' || cores < 2 || workersOff(env) || args.some((a) => a === '--help' || a === '-h')) return undefined;
  const s = slot();
  if (s.worker) return s.worker;
  let worker: Worker;
  try {
    worker = newBuildWorker();
  } catch {
    return undefined; // the pool starts its own, and reports what fails then
  }
  // Never what keeps the process alive, and a failure to start is the pool's to report (it then
  // starts another): a dead worker leaves the slot.
  worker.unref();
  worker.on('error', () => undefined);
  worker.once('exit', () => {
    if (s.worker === worker) s.worker = undefined;
  });
  s.worker = worker;
  return worker;
}

/** The started worker, handed over once (BuildContext `startedWorker`); undefined when there is none. */
export function takeEarlyBuildWorker(): Worker | undefined {
  const s = slot();
  const worker = s.worker;
  s.worker = undefined;
  return worker;
}

/** Terminates the started worker if no build took it. */
export async function dropEarlyBuildWorker(): Promise<void> {
  await takeEarlyBuildWorker()?.terminate();
}
