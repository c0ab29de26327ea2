import { createProgress, progressMode, type Progress } from '../progress.js';

/**
 * The CLI's progress display on stderr: bars on a terminal, plain lines when stderr is not one
 * or `CI` is set; no colour under `NO_COLOR` (the environment is read here, not in the library).
 */
export function cliProgress(): Progress {
  const stream = process.stderr;
  return createProgress({ stream, ...progressMode(stream.isTTY, process.env) });
}
