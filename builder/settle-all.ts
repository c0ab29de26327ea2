/**
 * The values of `promises`, in order, once every one has settled; if any rejected, the first
 * rejection in that order is thrown, but only after the others are done. A caller that cleans up
 * after a failure (removes a temp directory, reports one error) then never races work still in
 * flight, and the error does not depend on which failure happened first in time.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * `work`, or the signal's reason as soon as `signal` aborts (as the registry client and
 * `signal.throwIfAborted()` reject): the library's reads take a signal this way, so an abort is
 * prompt even where a step below cannot be interrupted; what they opened is closed through the
 * signal they pass on. A signal that has already aborted rejects before `work` starts.
 */
export async function abortable<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
  if (!signal) return work();
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const running = work();
  // Whichever loses is still settled (no unhandled rejection).
  running.catch(() => undefined);
  aborted.catch(() => undefined);
  try {
    return await Promise.race([running, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
