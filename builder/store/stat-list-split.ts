import { Worker } from 'node:worker_threads';
import { builderFile } from '../install-paths.js';

/** What a stat thread is given: `paths` and `names` (each path's, `\n`-joined) as single strings, which cross threads as one copy each, not a clone of 50,000 objects. */
export interface StatShare {
  /** `<fsDir>/`. */
  prefix: string;
  /** Base names, joined by `\n`. */
  paths: string;
  /** Each path's entry names joined by `\n`, the paths' joined by `\0` (names are printable ASCII). */
  names: string;
  /** Nodes in all: each path's root and entries. */
  nodes: number;
}

/** Below this many nodes, starting a thread (~20 ms) costs more than the lstats it takes over. */
export const SPLIT_MIN_NODES = 20_000;

/** A stat thread at work: its values, and a way to stop it when they are no longer wanted. */
export interface StatThread {
  /** The values of the share (statListValues of each path, concatenated in order); false when an entry could not be lstat-ed; undefined when the thread failed (the caller does the share itself). */
  values: Promise<Float64Array | false | undefined>;
  stop(): void;
}

/** Starts a thread that lstats `share` (stat-list-thread.ts) while the caller does the other share. */
export function statShareInThread(share: StatShare): StatThread {
  let worker: Worker;
  const values = new Promise<Float64Array | false | undefined>((resolve) => {
    try {
      worker = new Worker(builderFile('store/stat-list-thread.js'), { workerData: share });
    } catch {
      return resolve(undefined);
    }
    worker.once('message', (m: { ok: boolean; values: Float64Array }) => resolve(m.ok ? m.values : false));
    worker.once('error', () => resolve(undefined));
    // After a message this changes nothing; without one (stopped, or died) the caller checks alone.
    worker.once('exit', () => resolve(undefined));
  });
  return { values, stop: () => void worker?.terminate() };
}
