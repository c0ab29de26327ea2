/**
 * Worker thread entry (started by split-scan.ts): the helper of a big store path's scan. It is
 * given the path's nodes once the scanning thread has listed them, takes chunks of them as that
 * thread does (split-read.ts) until none is left, and ends. It imports only split-read.ts
 * and stat-list.ts: started in ~20 ms, not the build worker's ~100.
 */
import { parentPort } from 'node:worker_threads';
import { SplitReader, type SplitShare } from './split-read.js';

parentPort!.once('message', (share: SplitShare) => {
  new SplitReader(share, 1).work();
  parentPort!.close();
});
