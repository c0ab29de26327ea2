import { StoreError } from '../errors.js';
import { parseNarHash } from './nar-hash.js';

/** One path as a closure file describes it. narSize is absent only in the plain exportReferencesGraph format. */
export interface ClosureFileEntry {
  path: string;
  narSize?: number;
  narHash?: string;
  references: string[];
  deriver?: string;
}

export type ClosureFileFormat =
  | 'path-info-array' // nix path-info --json, Nix ≤ 2.18
  | 'path-info-object' // nix path-info --json, Nix ≥ 2.19 (keyed by path)
  | 'structured-attrs' // exportReferencesGraph with __structuredAttrs (.attrs.json)
  | 'registration' // closureInfo's `registration`, nix-store --dump-db (--load-db input)
  | 'references-graph'; // exportReferencesGraph without structured attrs

export interface ParsedClosureFile {
  format: ClosureFileFormat;
  entries: ClosureFileEntry[];
}

/** Recognises and reads any of the closure file formats. `file` names the file in errors. */
export function parseClosureFile(text: string, file: string): ParsedClosureFile {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) return parseJson(text, file);
  return parseRegistrationText(text, file);
}

/**
 * What differs between two entries for one path (its references as a set, narHash, narSize,
 * each when both give it), or undefined when they agree: a path has one NAR and one set of
 * references, so two entries that disagree cannot both be right, and keeping either would
 * silently drop a dependency or a check. Identical entries are normal (graph files concatenated).
 */
export function entryConflict(first: ClosureFileEntry, then: ClosureFileEntry): string | undefined {
  const diffs: string[] = [];
  const refs = (e: ClosureFileEntry) => [...new Set(e.references)].sort();
  const a = refs(first);
  const b = refs(then);
  if (a.length !== b.length || a.some((r, i) => r !== b[i])) {
    const only = (x: string[], y: string[]) => x.filter((r) => !y.includes(r));
    const parts = [only(a, b).length > 0 ? `only the first: ${only(a, b).join(', ')}` : '', only(b, a).length > 0 ? `only the later: ${only(b, a).join(', ')}` : ''].filter(Boolean);
    diffs.push(`references (${parts.join('; ')})`);
  }
  if (first.narHash !== undefined && then.narHash !== undefined) {
    const x = parseNarHash(first.narHash);
    const y = parseNarHash(then.narHash);
    if (!x || !y || !Buffer.from(x).equals(Buffer.from(y))) diffs.push(`narHash (${first.narHash}, then ${then.narHash})`);
  }
  if (first.narSize !== undefined && then.narSize !== undefined && first.narSize !== then.narSize) diffs.push(`narSize (${first.narSize}, then ${then.narSize})`);
  return diffs.length > 0 ? diffs.join(', ') : undefined;
}

export function duplicateError(file: string, path: string, what: string): StoreError {
  return new StoreError(
    `closure file ${file} lists ${path} twice, with different ${what}`,
    [path],
    'a path has one NAR and one set of references: make the closure file (or the graph files joined into it) from one store, or drop the stale entry',
  );
}

function fail(file: string, where: string, msg: string): never {
  throw new StoreError(`closure file ${file}: ${where}: ${msg}`, []);
}

function parseJson(text: string, file: string): ParsedClosureFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(file, 'not valid JSON', (e as Error).message);
  }
  if (Array.isArray(doc)) {
    return { format: 'path-info-array', entries: doc.map((v, i) => pathInfoEntry(v, undefined, file, `[${i}]`)) };
  }
  const obj = doc as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length > 0 && keys.every((k) => k.startsWith('/'))) {
    return { format: 'path-info-object', entries: keys.map((k) => pathInfoEntry(obj[k], k, file, JSON.stringify(k))) };
  }
  // .attrs.json: each exportReferencesGraph name maps to an array of path infos; other attrs are ignored.
  const graphs = keys.filter((k) => {
    const v = obj[k];
    return Array.isArray(v) && v.length > 0 && v.every((e) => e !== null && typeof e === 'object' && 'path' in e);
  });
  if (graphs.length === 0) {
    fail(file, 'unrecognised JSON', 'expected nix path-info --json output or a structured-attrs file with an exportReferencesGraph array');
  }
  const byPath = new Map<string, ClosureFileEntry>();
  for (const k of graphs) {
    (obj[k] as unknown[]).forEach((v, i) => {
      const e = pathInfoEntry(v, undefined, file, `${k}[${i}]`);
      const seen = byPath.get(e.path);
      const conflict = seen && entryConflict(seen, e);
      if (conflict) throw duplicateError(file, e.path, conflict);
      byPath.set(e.path, e);
    });
  }
  return { format: 'structured-attrs', entries: [...byPath.values()] };
}

function pathInfoEntry(v: unknown, key: string | undefined, file: string, where: string): ClosureFileEntry {
  if (v === null && key !== undefined) {
    fail(file, where, 'the path is not valid in the store that exported this file (null entry)');
  }
  if (v === null || typeof v !== 'object') fail(file, where, 'expected an object');
  const o = v as Record<string, unknown>;
  const path = key ?? o.path;
  if (typeof path !== 'string') fail(file, where, 'missing "path"');
  if (o.valid === false) fail(file, where, `${path} is not valid in the store that exported this file`);
  if (typeof o.narSize !== 'number' || !Number.isSafeInteger(o.narSize) || o.narSize < 0) {
    fail(file, where, `${path}: "narSize" must be a non-negative integer`);
  }
  const refs = o.references ?? [];
  if (!Array.isArray(refs) || !refs.every((r) => typeof r === 'string')) {
    fail(file, where, `${path}: "references" must be an array of store paths`);
  }
  // Nix ≥ 2.20 may print references as base names; make them full paths.
  const dir = path.slice(0, path.lastIndexOf('/'));
  const entry: ClosureFileEntry = {
    path,
    narSize: o.narSize,
    references: (refs as string[]).map((r) => (r.startsWith('/') ? r : `${dir}/${r}`)),
  };
  if (o.narHash !== undefined) {
    if (typeof o.narHash !== 'string' || !parseNarHash(o.narHash)) fail(file, where, `${path}: "narHash" is not a SHA-256 hash`);
    entry.narHash = o.narHash;
  }
  if (typeof o.deriver === 'string') entry.deriver = o.deriver.startsWith('/') ? o.deriver : `${dir}/${o.deriver}`;
  return entry;
}

/**
 * The text formats, one field per line. With hashes (closureInfo `registration`, `--dump-db`):
 * path, narHash, narSize, deriver, reference count, references. Without (exportReferencesGraph):
 * path, deriver, reference count, references. The second line tells them apart: a hash, or a
 * deriver (a store path or empty).
 */
function parseRegistrationText(text: string, file: string): ParsedClosureFile {
  const lines = text.split('\n');
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) fail(file, 'line 1', 'the file is empty');
  const withHash = lines[1] !== undefined && lines[1] !== '' && !lines[1].startsWith('/') && parseNarHash(lines[1]) !== undefined;
  const entries: ClosureFileEntry[] = [];
  let i = 0;
  const next = (what: string): string => {
    const l = lines[i];
    if (l === undefined) fail(file, `line ${i + 1}`, `the file ends where ${what} was expected`);
    i++;
    return l;
  };
  while (i < lines.length) {
    const path = next('a store path');
    if (!path.startsWith('/')) fail(file, `line ${i}`, `expected a store path, found ${JSON.stringify(path)}`);
    const entry: ClosureFileEntry = { path, references: [] };
    if (withHash) {
      const hash = next('a NAR hash');
      if (!parseNarHash(hash)) fail(file, `line ${i}`, `${path}: ${JSON.stringify(hash)} is not a SHA-256 hash`);
      entry.narHash = hash.includes(':') || hash.includes('-') ? hash : `sha256:${hash}`;
      const size = next('a NAR size');
      if (!/^\d+$/.test(size)) fail(file, `line ${i}`, `${path}: NAR size ${JSON.stringify(size)} is not a number`);
      entry.narSize = Number(size);
    }
    const deriver = next('a deriver line');
    if (deriver) entry.deriver = deriver;
    const countText = next('a reference count');
    if (!/^\d+$/.test(countText)) fail(file, `line ${i}`, `${path}: reference count ${JSON.stringify(countText)} is not a number`);
    for (let n = Number(countText); n > 0; n--) {
      const ref = next('a reference');
      if (!ref.startsWith('/')) fail(file, `line ${i}`, `${path}: reference ${JSON.stringify(ref)} is not a store path`);
      entry.references.push(ref);
    }
    entries.push(entry);
  }
  return { format: withHash ? 'registration' : 'references-graph', entries };
}
