/**
 * "Racy" stat values, as git calls them: a scan record is trusted next time by lstat values
 * alone (stat-list.ts, tree-fingerprint.ts), which holds only if any change to a file after its
 * scan moves them. A change moves the ctime, which the file system sets from its own clock at
 * every change of an inode (contents or metadata) and which no call can set back; but that clock
 * ticks coarsely (Linux's file times come from a clock updated once a jiffy, 1–10 ms; NTFS's
 * about every 15.6 ms; ext3, HFS+ and many network file systems keep whole seconds, FAT two). A
 * file rewritten in the very tick of its scan, with the same size and mode, keeps every value,
 * inode included: a record of its scan would be trusted with bytes it no longer has.
 *
 * So a scan's record is kept only when every ctime it vouches with is safely older than the
 * scan's start: before it by more than a tick. Else the record is not saved (nor, without it, a
 * closure record): the next build scans the path again, and by then its times are old. The
 * ctime, not the mtime: the mtime can be set to anything (`touch -d`, tar), and a file whose
 * mtime is in the future would never be recorded, while a change always moves the ctime.
 *
 * A ctime in whole seconds is taken as from a file system that keeps no finer (2 s: FAT's tick);
 * any other, from one with a fine clock (RACY_FINE_MS: several of the coarsest kernel ticks). A
 * ctime after the start (another machine's clock, a clock set back) is racy too. Not covered: a
 * network file system whose server's clock is behind this machine's by more than that.
 */

/** How much older than a scan's start a ctime with a fractional second must be to be trusted. */
export const RACY_FINE_MS = 50;

/** The same for a ctime in whole seconds (a file system with a one- or two-second tick). */
export const RACY_COARSE_MS = 2000;

/** Whether a ctime (ms since the epoch, as Stats.ctimeMs) is too recent, for a scan started at `startMs` (Date.now()), to vouch for it. */
export function racyCtime(ctimeMs: number, startMs: number): boolean {
  // NaN (no node seen) is not racy: `!(a <= b)` would say it is.
  return ctimeMs > startMs - (ctimeMs % 1000 === 0 ? RACY_COARSE_MS : RACY_FINE_MS);
}
