import { readFile, realpath } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import type { Document, LineCounter } from 'yaml';
import { SpecError } from '../errors.js';
import { fileError, thrownText } from './errors.js';
import { findJsonDuplicateKeys, findJsonSyntaxError } from './json-syntax.js';
import { evaluateModuleSpec } from './module-spec.js';

/**
 * The YAML parser, loaded on first use: a YAML spec, or a message about a JSON spec that names a
 * line. A build from a JSON spec does not pay the ~30 ms it takes to load. `yaml` is a CommonJS
 * package, so it is required synchronously (`lineOf` is synchronous).
 */
let yamlModule: typeof import('yaml') | undefined;
const yaml = (): typeof import('yaml') => (yamlModule ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

export const SPEC_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json', '.yaml', '.yml'] as const;

/** A spec file evaluated to a plain value, plus a way to find a field's line for messages. */
export interface ParsedSpecFile {
  value: unknown;
  lineOf?: (path: readonly PropertyKey[]) => number | undefined;
}

/** Read and evaluate a spec file of any supported kind. `file` must be absolute. */
export async function parseSpecFile(file: string, env: NodeJS.ProcessEnv, options: { timeoutMs?: number } = {}): Promise<ParsedSpecFile> {
  // A link without an extension (nix-build's `result`) is read as what it points to.
  const ext = (extname(file) || extname(await realpath(file).catch(() => file))).toLowerCase();
  if (!(SPEC_EXTENSIONS as readonly string[]).includes(ext)) {
    throw new SpecError(file, undefined, `unknown spec file type "${ext || '(none)'}"`, `use one of ${SPEC_EXTENSIONS.join(', ')}`);
  }
  if (ext === '.json' || ext === '.yaml' || ext === '.yml') {
    const text = await readText(file);
    return ext === '.json' ? parseJson(file, text) : parseYaml(file, text);
  }
  return { value: await evaluateModuleSpec(file, env, options) };
}

async function readText(file: string): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.startsWith('\uFEFF') ? text.slice(1) : text;
  } catch (e) {
    throw fileError(file, e);
  }
}

function parseJson(file: string, text: string): ParsedSpecFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const where = findJsonSyntaxError(text);
    if (where) throw new SpecError(file, undefined, `invalid JSON at line ${where.line}, column ${where.column}: ${where.message}`);
    throw new SpecError(file, undefined, `invalid JSON: ${thrownText(e)}`);
  }
  // JSON.parse keeps the last of two equal keys; YAML refuses them, and so do we (a silent pick).
  const duplicates = findJsonDuplicateKeys(text);
  if (duplicates.length > 0) {
    const problems = duplicates.map((d) => `line ${d.line}, column ${d.column}: duplicate key ${JSON.stringify(d.key)} (first at line ${d.firstLine})`);
    const message = problems.length === 1 ? `invalid JSON at ${problems[0]}` : `invalid JSON (${problems.length} problems):\n${problems.map((p) => `  ${p}`).join('\n')}`;
    throw new SpecError(file, undefined, message);
  }
  octalNumericModes(value);
  // JSON is YAML, so the YAML parser finds the lines of fields; only parsed when a message needs it.
  let doc: { doc: Document; lines: LineCounter } | undefined;
  return {
    value,
    lineOf: (path) => {
      doc ??= yamlDoc(text);
      return lineIn(doc.doc, doc.lines, path);
    },
  };
}

function yamlDoc(text: string): { doc: Document; lines: LineCounter } {
  const { LineCounter, parseDocument } = yaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, keepSourceTokens: true });
  return { doc, lines };
}

function parseYaml(file: string, text: string): ParsedSpecFile {
  const { doc, lines } = yamlDoc(text);
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = lines.linePos(e.pos[0]);
      return `line ${pos.line}, column ${pos.col}: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
    });
    const message =
      problems.length === 1 ? `invalid YAML at ${problems[0]}` : `invalid YAML (${problems.length} problems):\n${problems.map((p) => `  ${p}`).join('\n')}`;
    throw new SpecError(file, undefined, message);
  }
  // A `mode` written as a bare number (`mode: 0644`, `mode: 755`) means octal digits, as chmod reads
  // them; YAML 1.2 would read `0644` as decimal 644. Keep the source text and parse it as octal.
  const { isPair, isScalar, visit } = yaml();
  visit(doc, {
    Pair(_, pair, path) {
      const owner = path[path.length - 3];
      const inList = isPair(owner) && isScalar(owner.key) && MODE_LISTS.includes(String(owner.key.value)) && path.length === 5;
      if (inList && isScalar(pair.key) && pair.key.value === 'mode' && isScalar(pair.value) && typeof pair.value.value === 'number' && pair.value.source) {
        pair.value.value = pair.value.source;
      }
    },
  });
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // The yaml package refuses aliases that expand too far ("billion laughs") with a ReferenceError.
    const text = thrownText(e);
    if (/^Excessive alias count/.test(text)) {
      throw new SpecError(file, undefined, `invalid YAML: its aliases expand too far (more than ${MAX_ALIAS_COUNT} copies of aliased nodes), as in an alias bomb ("billion laughs")`, 'write the values out, or use fewer aliases of nodes that hold aliases');
    }
    throw new SpecError(file, undefined, `invalid YAML: ${text}`);
  }
  return { value, lineOf: (path) => lineIn(doc, lines, path) };
}

/** The line of the deepest node on `path` that exists (a missing key is reported at its parent). */
function lineIn(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number | undefined {
  const { isMap, isScalar, isSeq } = yaml();
  let node: unknown = doc.contents;
  let line: number | undefined = rangeLine(node, lines);
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      if (!pair) break;
      // Report at the key: it is where a reader looks, and it exists even when the value is empty.
      line = rangeLine(pair.key, lines) ?? line;
      node = pair.value;
      continue;
    }
    if (isSeq(node) && typeof key === 'number' && node.items[key] !== undefined) {
      node = node.items[key];
      line = rangeLine(node, lines) ?? line;
      continue;
    }
    break;
  }
  return line;
}

function rangeLine(node: unknown, lines: LineCounter): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? lines.linePos(range[0]).line : undefined;
}

/** How many copies aliases may make of aliased nodes (the yaml package's measure), against alias bombs. */
const MAX_ALIAS_COUNT = 100;

/** The top-level lists whose entries have a `mode`. */
const MODE_LISTS = ['files', 'directories'];

/** JSON has no octal literals: a numeric `mode` is read as octal digits, the same rule as YAML's. */
function octalNumericModes(value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
  for (const list of MODE_LISTS) {
    const entries = (value as Record<string, unknown>)[list];
    if (!Array.isArray(entries)) continue;
    for (const entry of entries) {
      if (entry === null || typeof entry !== 'object') continue;
      const e = entry as Record<string, unknown>;
      if (typeof e.mode === 'number' && Number.isInteger(e.mode) && e.mode >= 0) e.mode = String(e.mode);
    }
  }
}
