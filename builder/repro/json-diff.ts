import { isDeepStrictEqual } from 'node:util';

/**
 * One field that differs between two JSON documents. `path` is dotted with brackets for array
 * indexes (`history[2].created_by`) and for Env entries by variable name (`config.Env[PATH]`).
 * `a` absent: only b has it; `b` absent: only a has it.
 */
export interface FieldChange {
  path: string;
  a?: unknown;
  b?: unknown;
}

/**
 * The fields that differ, in a stable order. Objects are compared key by key; arrays of objects
 * entry by entry; `Env` arrays by variable name (so one changed entry
 * is one change, wherever it sits); any other array as a whole value (`Cmd` reads better whole).
 */
export function diffJson(a: unknown, b: unknown, path = ''): FieldChange[] {
  const out: FieldChange[] = [];
  walk(a, b, path, out);
  return out;
}

function walk(a: unknown, b: unknown, path: string, out: FieldChange[]): void {
  if (isDeepStrictEqual(a, b)) return;
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in b)) out.push({ path: p, a: a[k] });
      else if (!(k in a)) out.push({ path: p, b: b[k] });
      else walk(a[k], b[k], p, out);
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (/(^|\.)Env$/.test(path) && isEnvList(a) && isEnvList(b)) return diffEnv(a, b, path, out);
    if (a.some(isPlainObject) || b.some(isPlainObject)) {
      // Arrays of objects (history): entry by entry, extra entries as only in a or only in b.
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const p = `${path}[${i}]`;
        if (i >= b.length) out.push({ path: p, a: a[i] });
        else if (i >= a.length) out.push({ path: p, b: b[i] });
        else walk(a[i], b[i], p, out);
      }
      return;
    }
  }
  out.push({ path, a, b });
}

function diffEnv(a: string[], b: string[], path: string, out: FieldChange[]): void {
  const ma = envMap(a);
  const mb = envMap(b);
  const names = [...new Set([...ma.keys(), ...mb.keys()])].sort();
  for (const n of names) {
    const p = `${path}[${n}]`;
    const va = ma.get(n);
    const vb = mb.get(n);
    if (va === vb) continue;
    if (vb === undefined) out.push({ path: p, a: va });
    else if (va === undefined) out.push({ path: p, b: vb });
    else out.push({ path: p, a: va, b: vb });
  }
  // Same variables and values, other order: the config bytes differ all the same.
  if (out.every((c) => !c.path.startsWith(`${path}[`)) && !isDeepStrictEqual(a, b)) out.push({ path, a, b });
}

function envMap(list: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of list) {
    const eq = e.indexOf('=');
    const name = eq === -1 ? e : e.slice(0, eq);
    // A repeated name: later entries win in a container runtime, as here.
    m.set(name, eq === -1 ? '' : e.slice(eq + 1));
  }
  return m;
}

function isEnvList(x: unknown[]): x is string[] {
  return x.every((e) => typeof e === 'string');
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
