/** Print a `--json` document (documents.ts) on stdout: one JSON value, indented, one final newline. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
