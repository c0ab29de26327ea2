/**
 * Worker thread entry (started by stat-list-split.ts): claims chunks of a closure record's paths
 * and puts their stat-list values in the shared array, beside the thread that started it. It
 * imports only stat-list.ts and stat-list-split.ts: started in a fraction of the build worker's time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { claimChunks, placesOf, type StatLists, type StatWork } from './stat-list-split.js';

function run(work: StatWork): void {
  const lists: StatLists = { prefix: work.prefix, chunk: work.chunk, paths: work.paths === '' ? [] : work.paths.split('\n'), names: work.names.split('\0') };
  let ok = lists.paths.length === lists.names.length;
  if (ok) {
    const { at, length } = placesOf(lists.names);
    const values = new Float64Array(work.values);
    ok = length === values.length && claimChunks(lists, at, values, new Int32Array(work.control), new Uint8Array(work.done));
  }
  parentPort!.postMessage({ ok });
}

// Given its work as it starts, or started early and given it by a message (startStatThread).
if (workerData) run(workerData as StatWork);
else parentPort!.once('message', run);
