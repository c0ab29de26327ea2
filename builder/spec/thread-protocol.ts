import { SpecError } from '../errors.js';
import { SpecValidationError, type SpecIssue } from './errors.js';

/** What the spec's thread (spec-thread.ts) is given. */
export interface SpecThreadInput {
  /** The spec file, absolute. */
  file: string;
  /** The environment, as the thread's `process.env` also holds it (the function form's `ctx.env`). */
  env: Record<string, string>;
}

/** A SpecError as data, to cross between threads by structured clone. */
export interface SpecErrorData {
  file: string;
  field: string | undefined;
  /** The whole message (`<file>: <field>: <problem>`). */
  message: string;
  hint: string | undefined;
  /** A SpecValidationError's issues. */
  issues?: SpecIssue[];
}

/**
 * What the spec's thread posts, once, before it ends: the spec's value (plain data), or the
 * SpecError its loading failed with. A thread that ends having posted nothing waited on a
 * promise that nothing settles (its event loop emptied).
 */
export type SpecThreadMessage =
  | { kind: 'value'; value: unknown }
  | { kind: 'error'; error: SpecErrorData }
  /** imgbuild's own failure in the thread (a bug), not the spec's. */
  | { kind: 'internal'; message: string; stack: string | undefined };

export function specErrorData(e: SpecError): SpecErrorData {
  const issues = e instanceof SpecValidationError ? e.issues.map((i) => ({ ...i, path: i.path.map((k) => (typeof k === 'symbol' ? k.toString() : k)) })) : undefined;
  return { file: e.file, field: e.field, message: e.message, hint: e.hint, ...(issues ? { issues } : {}) };
}

/** The SpecError `data` describes, as an instance of this thread's classes. */
export function specErrorFrom(data: SpecErrorData): SpecError {
  if (data.issues) return new SpecValidationError(data.file, data.issues);
  const e = new SpecError(data.file, data.field, '', data.hint);
  e.message = data.message;
  return e;
}
