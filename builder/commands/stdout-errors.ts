import { fsProblemOfCode } from '../fs/errno.js';
import { EXIT } from './failure.js';

/**
 * What the CLI does when stdout cannot be written. Node reports a failed write to stdout as an
 * 'error' event, and with no listener that is an uncaught exception: `imgbuild --help | head -1`
 * printed a stack.
 *
 * - The reader went away (EPIPE: `| head -1`, `| true`): nothing more is printed and the process
 *   ends at once with 141, as a program killed by SIGPIPE does (Node ignores SIGPIPE), so that a
 *   pipeline under `set -o pipefail` sees what it sees for git or ls.
 * - Anything else (a full disk behind `> file` or `/dev/full`, EIO): said on stderr, exit 1.
 *
 * While `--stream` writes an archive to stdout, its own writer reports these (stream-output.ts:
 * "what stdout got is incomplete") and this stays quiet.
 */
export function watchStdoutErrors(stdout: NodeJS.WriteStream = process.stdout): void {
  stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (streaming > 0) return;
    if (err.code === 'EPIPE') process.exit(EXIT.stdoutClosed);
    // In the words of the file system errors' table (fs/errno.ts), as every output's errors are.
    const reason = fsProblemOfCode(err.code)?.what ?? err.message;
    try {
      process.stderr.write(`error[output]: cannot write to stdout: ${reason}\nhint: check where stdout goes (a redirect to a full disk?)\n`);
    } finally {
      process.exit(EXIT.error);
    }
  });
}

/**
 * stderr carries progress and messages, never the result: when it cannot be written (its reader
 * gone, `2>/dev/full`) they are dropped and the command carries on, its result and exit code
 * unchanged. Unheard, such an error was uncaught: the build stopped at its first progress line
 * with exit 1 (for diff and verify, "they differ").
 */
export function ignoreStderrErrors(stderr: NodeJS.WriteStream = process.stderr): void {
  stderr.on('error', () => {});
}

let streaming = 0;

/** Runs `write`, which streams to stdout and reports its own write errors. */
export async function whileStreamingToStdout<T>(write: () => Promise<T>): Promise<T> {
  streaming++;
  try {
    return await write();
  } finally {
    streaming--;
  }
}
