import { SpecValidationError } from '../../builder/spec/errors.js';
import { resolveSpec, type ResolveOptions } from '../../builder/spec/resolve.js';

/** The problems resolveSpec finds in a spec value, as `field: message` lines (a problem of no field: its message); none: []. */
export function specProblems(input: unknown, options: ResolveOptions): string[] {
  try {
    resolveSpec(input, options);
  } catch (e) {
    if (e instanceof SpecValidationError) return e.issues.map((i) => (i.field ? `${i.field}: ${i.message}` : i.message));
    throw e;
  }
  return [];
}
