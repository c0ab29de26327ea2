import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RACY_FINE_MS } from '../../builder/store/racy.js';

/**
 * Waits until the files written before it are safely older than a scan started after it
 * (builder/store/racy.ts): a scan of files changed within a clock tick of it leaves no record,
 * so a test that wants the next build answered by records waits this long after writing.
 */
export function pastRacyWindow(): Promise<void> {
  return sleep(RACY_FINE_MS + 15);
}

/**
 * Rewrites `file` with `content` and puts its atime and mtime back: an edit only the ctime (or
 * the bytes) can tell, what a check of sizes and mtimes alone would miss.
 */
export function writeKeepingTimes(file: string, content: string): void {
  const { atime, mtime } = statSync(file);
  writeFileSync(file, content);
  utimesSync(file, atime, mtime);
}

/** A change made to a store path's files in place; `p` gives the path of an entry below it. */
export type InPlaceChange = [what: string, change: (p: (rel: string) => string) => void];

/**
 * Each change a copied store could undergo, made to a path holding `share/deep/nested/conf`,
 * `share/deep/other` and the symlink `share/link` (the scan-record and closure-record tests'
 * app): what a stat-based check of a store path must notice. `elsewhere` is another store path
 * the changed symlink points into.
 */
export function inPlaceChanges(elsewhere: string): InPlaceChange[] {
  return [
    [
      'a file deep inside edited in place (same size, mtime put back)',
      (p) => writeKeepingTimes(p('share/deep/nested/conf'), 'PLAIN TEXT OF SOME LENGTH'),
    ],
    ['an executable bit', (p) => chmodSync(p('share/deep/other'), 0o755)],
    ['a symlink replaced by one pointing elsewhere', (p) => execFileSync('ln', ['-sfn', `${elsewhere}/share/doc`, p('share/link')])],
    ['a new empty directory deep inside', (p) => mkdirSync(p('share/deep/nested/new'))],
    ['a file renamed', (p) => renameSync(p('share/deep/other'), p('share/deep/other2'))],
    ['a file removed', (p) => rmSync(p('share/deep/other'))],
    [
      'a directory replaced by a symlink to a copy of it',
      (p) => {
        execFileSync('cp', ['-a', p('share/deep'), p('share/deep-copy')]);
        rmSync(p('share/deep'), { recursive: true });
        symlinkSync('deep-copy', p('share/deep'));
      },
    ],
  ];
}
