/**
 * Milliseconds on a clock that never goes back (any origin). Not `performance.now()`: the
 * `performance` global loads node:perf_hooks on first use, ~1.5 ms of CPU that a short command
 * (a no-op push) otherwise never pays.
 */
export function monotonicMs(): number {
  return process.uptime() * 1000;
}

/** How often progress reports (bytes written, paths scanned) go out at most: 10 a second. */
export const PROGRESS_INTERVAL_MS = 100;

export interface Throttled<T> {
  /** Report the newest value: passed on at once when the last was `intervalMs` ago or more, else held back. */
  (value: T): void;
  /** Pass on the value held back, if any: the final state is never dropped. */
  flush(): void;
}

/**
 * `fn` called at most once per `intervalMs` with the newest value (the first at once). No timer:
 * a value held back goes out with the next report after the interval, or on `flush()`, so a
 * producer calls `flush()` when it ends. Cheap enough to call per chunk of a layer (one clock read).
 */
export function throttle<T>(fn: (value: T) => void, intervalMs: number = PROGRESS_INTERVAL_MS, now: () => number = monotonicMs): Throttled<T> {
  let last = -Infinity;
  let held: { value: T } | undefined;
  const report = ((value: T) => {
    const t = now();
    if (t - last >= intervalMs) {
      last = t;
      held = undefined;
      fn(value);
    } else {
      held = { value };
    }
  }) as Throttled<T>;
  report.flush = () => {
    if (!held) return;
    const { value } = held;
    held = undefined;
    last = now();
    fn(value);
  };
  return report;
}
