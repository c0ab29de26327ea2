import { inspect } from 'node:util';
import { SpecError } from '../errors.js';

/** One problem found in a spec. */
export interface SpecIssue {
  /** Where, as a readable path: `config.Env[2]`, `files[0].mode`; undefined for the whole spec. */
  field: string | undefined;
  /** The same place as keys and indexes: `['config', 'Env', 2]`. */
  path: readonly PropertyKey[];
  message: string;
  /** Line in a JSON/YAML spec, when known. */
  line?: number;
  /** What to do, when the problem is the only one (a spec's many problems get no hint). */
  hint?: string;
}

function issueText(issue: SpecIssue): string {
  return `${issue.message}${issue.line !== undefined ? ` (line ${issue.line})` : ''}`;
}

/**
 * Every problem of a spec at once, so a user fixes them in one round. With one issue the message
 * is `<file>: <field>: <problem>`; with several, `<file>: N problems:` and one indented line each.
 */
export class SpecValidationError extends SpecError {
  override name = 'SpecValidationError';
  constructor(
    file: string,
    readonly issues: SpecIssue[],
  ) {
    const only = issues.length === 1 ? issues[0] : undefined;
    super(
      file,
      only?.field,
      only
        ? issueText(only)
        : `${issues.length} problems:\n${issues.map((i) => `  ${i.field ? `${i.field}: ` : ''}${issueText(i)}`).join('\n')}`,
      only?.hint,
    );
  }
}

/** A spec file that cannot be read. */
export function fileError(file: string, e: unknown): SpecError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new SpecError(file, undefined, 'no such file');
  if (code === 'EISDIR') return new SpecError(file, undefined, 'is a directory, not a spec file');
  return new SpecError(file, undefined, `cannot read: ${(e as Error).message}`);
}

/**
 * What a spec threw, as text for a message, whatever it threw: an Error (or anything with a
 * string `message`) gives its message; a string itself; `null`, `undefined`, a number, a symbol
 * or another object says what it was (`null`, `an object: { code: 1 }`). Never throws: a value
 * whose getters, `toString` or Proxy traps throw is described without them.
 */
export function thrownText(value: unknown): string {
  try {
    if (typeof value === 'string') return value === '' ? 'an empty string' : value;
    if (value === null || value === undefined) return `${String(value)} (not an Error)`;
    if (typeof value === 'symbol') return `${value.toString()} (not an Error)`;
    if (typeof value !== 'object' && typeof value !== 'function') return `${String(value)} (a ${typeof value}, not an Error)`;
    const message = (value as { message?: unknown }).message;
    if (typeof message === 'string' && message !== '') return message;
    if (value instanceof Error) return value.name || 'an Error without a message';
    return `an object (not an Error): ${inspectShort(value)}`;
  } catch {
    return 'a value that cannot be shown (reading it threw)';
  }
}

function inspectShort(value: object): string {
  try {
    const text = inspect(value, { depth: 2, breakLength: Infinity, maxArrayLength: 10, maxStringLength: 200, customInspect: false, getters: false });
    return text.length > 300 ? `${text.slice(0, 297)}...` : text;
  } catch {
    return 'one that cannot be shown';
  }
}
