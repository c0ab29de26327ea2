import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/**
 * A temp name beside `path`: `.<name>.<kind>-<pid>-<random>` (hidden, so no tool takes it for the
 * file; the pid lets a later run remove what a dead writer left, `isStaleTemp`). Its own module
 * so that a writer of small sync files (a push's blob records) need not load node:fs/promises.
 */
export function tempSibling(path: string, kind = 'tmp'): string {
  return join(dirname(path), `.${basename(path)}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}
