/**
 * The longest delay Node's timers keep: 2^31 - 1 ms, about 24.8 days. A longer one is not kept:
 * Node warns (TimeoutOverflowWarning) and fires it after 1 ms, so that a timeout meant to be
 * practically endless (`--response-timeout 1000h`, a blob's budget at `--min-speed 1`) would end
 * the wait at once. Imports nothing: builder/ uses it too.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `ms` as a timer (setTimeout, a socket's timeout) may be given it: at most MAX_TIMER_MS. A wait
 * that long is, in practice, no limit. Every user-given or computed delay goes through this.
 */
export function timerDelay(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}
