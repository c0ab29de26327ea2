/**
 * A value a job names that is the same for many jobs (a directory store's hash parts, N of them
 * for every one of its N paths): the worker pool (workers/pool.ts) sends it to each worker once,
 * and the job crosses with only its key. Sent with every job, it made a closure's scan O(N²).
 * A job's top-level fields may be SharedValues; a worker sees the value itself in their place.
 */
export class SharedValue<T> {
  constructor(
    /** Names the value among those sent to a worker: equal keys must mean equal values. */
    readonly key: string,
    readonly value: T,
  ) {}
}

/** A field that is either the value or a SharedValue of it (in process, the job holds the wrapper). */
export type Shareable<T> = T | SharedValue<T>;

export function sharedValueOf<T>(v: Shareable<T>): T {
  return v instanceof SharedValue ? v.value : v;
}

/** The field of a job's stand-in for a SharedValue the worker already holds. */
export const SHARED_KEY = '$imgbuildShared';
