/**
 * The interrupt of a command that talks to a registry: the first SIGINT (Ctrl-C) or SIGTERM
 * aborts `signal`, which the command gives its registry client (lazyClient): a connection being
 * made, an answer being waited for and a backoff between attempts end at once, and the command
 * exits 130 saying "interrupted". A second signal exits 130 at once (as build and push do).
 * `stop()` removes the handlers (in the command's `finally`).
 */
export function watchInterrupts(): { signal: AbortSignal; stop: () => void } {
  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
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
