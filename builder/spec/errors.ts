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
