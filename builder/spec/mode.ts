/**
 * A file mode as a spec writes it: an octal string (`"0644"`, `"1777"`, `"0o755"`) or a number
 * (`0o644` in TS/JS). JSON has no octal numbers, so JSON specs use strings; YAML's `0644` is read
 * as octal by the loader (see parse-file.ts), as a person means it.
 */
export function parseMode(value: string | number): { mode: number } | { problem: string } {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > 0o7777) {
      return { problem: `must be a mode from 0 to 0o7777 (4095), got ${value}; write it as an octal string like "0644"` };
    }
    return { mode: value };
  }
  const m = /^(?:0o)?([0-7]{1,5})$/.exec(value);
  const mode = m ? parseInt(m[1]!, 8) : NaN;
  if (!m || mode > 0o7777) return { problem: `"${value}" is not an octal mode like "0644" or "1777"` };
  return { mode };
}
