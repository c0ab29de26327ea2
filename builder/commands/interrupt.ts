/** How long the work the signal stops gets to end on its own (and say so) before the exit. */
const GRACE_MS = 1000;

/**
 * The interrupt of a command that talks to a registry: the first SIGINT (Ctrl-C) or SIGTERM
 * aborts `signal`, which the command gives its registry client (lazyClient): a connection being
 * made, an answer being waited for and a backoff between attempts end at once, and the command
 * exits 130 saying "interrupted". A second signal exits 130 at once (as build does).
 *
 * Work that does not look at the signal (a diff of two local images, say) is not waited for:
 * these commands write nothing that a kill could leave half done, so a command still running a
 * moment after the first signal exits 130 then, as it did before it had a signal to give. A
 * command whose every step honours the signal and must end its own way (push: no tag moved,
 * upload sessions cancelled) passes `waitForWork` and is waited for.
 * `stop()` removes the handlers (in the command's `finally`).
 */
export function watchInterrupts(options: { waitForWork?: boolean } = {}): { signal: AbortSignal; stop: () => void } {
  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
    if (options.waitForWork) return;
    setTimeout(() => {
      process.stderr.write('interrupted: nothing was written\n');
      process.exit(130);
    }, GRACE_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: abort.signal,
    stop: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
