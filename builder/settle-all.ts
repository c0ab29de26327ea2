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
