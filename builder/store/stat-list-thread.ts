/**
 * Worker thread entry (started by stat-list-split.ts): the stat-list values of a share of a
 * closure record's paths, so that a warm build's lstats (150,000 at 50,000 tiny paths, most of
 * its time) run on two cores. It imports only stat-list.ts: started in ~20 ms, not the build
 * worker's ~100.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PER_NODE, statListValues } from './stat-list.js';
import type { StatShare } from './stat-list-split.js';

const share = workerData as StatShare;
const paths = share.paths === '' ? [] : share.paths.split('\n');
const names = share.names.split('\0');
const values = new Float64Array(PER_NODE * share.nodes);
let at = 0;
let ok = paths.length === names.length;
for (let i = 0; ok && i < paths.length; i++) {
  const list = names[i] === '' ? [] : names[i]!.split('\n');
  try {
    ok = statListValues(`${share.prefix}${paths[i]!}`, list, values, at);
  } catch {
    ok = false; // unreadable now: the scan says why
  }
  at += PER_NODE * (list.length + 1);
}
ok &&= at === values.length;
parentPort!.postMessage({ ok, values }, ok ? [values.buffer] : []);
