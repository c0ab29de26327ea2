import type { z } from 'zod';
import { closestKey } from './suggest.js';
import { MAX_OWNER_ID, UNSUPPORTED_DOCKERTOOLS_KEYS } from './schema.js';
import type { SpecIssue } from './errors.js';

type ZodIssue = z.core.$ZodIssue;
type Path = readonly PropertyKey[];

/** `['config', 'Env', 2]` → `config.Env[2]`; keys that are not identifiers are quoted: `Labels["a.b"]`. */
export function formatField(path: Path): string | undefined {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(String(part))) out += out === '' ? String(part) : `.${String(part)}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out === '' ? undefined : out;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  record: 'an object',
  null: 'null',
  date: 'a Date',
};

/** A short description of a value for messages: `a number (42)`, `a list`, `"text"`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : `a Date (${value.toISOString()})`;
  switch (typeof value) {
    case 'string': return `a string ("${value.length > 40 ? `${value.slice(0, 37)}...` : value}")`;
    case 'number': return `a number (${value})`;
    case 'boolean': return `${value}`;
    case 'object': return 'an object';
    default: return typeof value;
  }
}

/** Zod's issues as readable SpecIssues, one per problem, in the order zod found them. */
export function specIssues(issues: readonly ZodIssue[], schema: z.ZodType, base: Path = []): SpecIssue[] {
  return issues.flatMap((issue) => issueToSpecIssues(issue, schema, base));
}

function issueToSpecIssues(issue: ZodIssue, schema: z.ZodType, base: Path): SpecIssue[] {
  const path = [...base, ...issue.path];
  const at = (message: string, p: Path = path): SpecIssue => ({ field: formatField(p), path: p, message });
  switch (issue.code) {
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      if (issue.input === undefined) return [at(`is required (${expected})`)];
      // YAML reads `tag: 1.0` or `User: 1000` as a number: say how to keep the text.
      const quote = issue.expected === 'string' && (typeof issue.input === 'number' || typeof issue.input === 'boolean') ? '; write it in quotes' : '';
      return [at(`expected ${expected}, got ${describe(issue.input)}${quote}`)];
    }
    case 'too_small': {
      if (issue.origin === 'array') return [at(`must have at least ${issue.minimum} item${issue.minimum === 1 ? '' : 's'}`)];
      if (issue.origin === 'string') return [at(`must be at least ${issue.minimum} characters long`)];
      return [at(`must be at least ${issue.minimum}, got ${String(issue.input)}`)];
    }
    case 'too_big': {
      if (issue.origin === 'array') return [at(`must have at most ${issue.maximum} items`)];
      if (issue.origin === 'string') return [at(`must be at most ${issue.maximum} characters long`)];
      // The one number limit that is not the field's own rule: say where it comes from.
      const why = issue.maximum === MAX_OWNER_ID ? ' (the largest owner id a tar header holds)' : '';
      return [at(`must be at most ${issue.maximum}${why}, got ${String(issue.input)}`)];
    }
    case 'invalid_value':
      return [at(`must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(issue.input)}`)];
    case 'unrecognized_keys':
      return issue.keys.map((key) => at(unknownKeyMessage(key, path, schema), [...path, key]));
    case 'invalid_union':
      return unionIssues(issue, schema, path);
    case 'invalid_key':
    case 'invalid_element':
      // A record key that fails its check: report at the key itself.
      return issue.issues.flatMap((inner) => issueToSpecIssues(inner, schema, path));
    default:
      return [at(issue.message)];
  }
}

function unknownKeyMessage(key: string, objectPath: Path, schema: z.ZodType): string {
  if (objectPath.length === 0 && key in UNSUPPORTED_DOCKERTOOLS_KEYS) {
    return `\`${key}\` is not supported: ${UNSUPPORTED_DOCKERTOOLS_KEYS[key]}`;
  }
  const known = knownKeysAt(schema, objectPath);
  const suggestion = closestKey(key, known);
  if (suggestion) return `unknown key; did you mean \`${suggestion}\`?`;
  return known.length > 0 ? `unknown key; known keys: ${known.join(', ')}` : 'unknown key';
}

/**
 * A union failed (e.g. `ExposedPorts` is a list or an object). Report the branch that matches the
 * value's shape; when none does, say which shapes are accepted.
 */
function unionIssues(issue: Extract<ZodIssue, { code: 'invalid_union' }>, schema: z.ZodType, path: Path): SpecIssue[] {
  const branches = issue.errors;
  const isShapeMismatch = (errs: readonly ZodIssue[]) => errs.some((e) => e.path.length === 0 && e.code === 'invalid_type');
  const matching = branches.find((errs) => !isShapeMismatch(errs));
  if (matching) return specIssues(matching, schema, path);
  const expected = branches
    .flatMap((errs) => errs.filter((e) => e.path.length === 0 && e.code === 'invalid_type'))
    .map((e) => (e.code === 'invalid_type' ? (EXPECTED[e.expected] ?? e.expected) : ''));
  const unique = [...new Set(expected)];
  return [{ field: formatField(path), path, message: `expected ${unique.join(' or ')}, got ${describe(issue.input)}` }];
}

interface Def {
  type: string;
  shape?: Record<string, unknown>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  valueType?: z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** The keys of the strict object the schema expects at `path` (for "did you mean"). */
export function knownKeysAt(schema: z.ZodType, path: Path): string[] {
  const candidates = schemasAt(schema, path);
  const keys = candidates.flatMap((s) => Object.keys(defOf(s).shape ?? {}));
  return [...new Set(keys)];
}

function schemasAt(schema: z.ZodType, path: Path): z.ZodType[] {
  const def = defOf(schema);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'readonly':
      return schemasAt(def.innerType!, path);
    case 'pipe':
      return schemasAt(def.in!, path);
    case 'union':
      return def.options!.flatMap((o) => schemasAt(o, path));
  }
  if (path.length === 0) return def.type === 'object' ? [schema] : [];
  const [head, ...rest] = path;
  if (def.type === 'object') {
    const child = def.shape?.[String(head)] as z.ZodType | undefined;
    return child ? schemasAt(child, rest) : [];
  }
  if (def.type === 'array' && typeof head === 'number') return schemasAt(def.element!, rest);
  if (def.type === 'record') return schemasAt(def.valueType!, rest);
  return [];
}
