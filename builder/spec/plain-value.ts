import { types } from 'node:util';

/** A value a spec cannot hand over from its thread: a function, a symbol, a promise it did not await. */
export class NotData {
  constructor(
    readonly path: readonly PropertyKey[],
    readonly what: string,
  ) {}
}

/**
 * A TS/JS spec's value as plain data, to cross from the spec's thread by structured clone. It is
 * read as validation reads it (zod): an object's enumerable keys (`for…in`, own and inherited)
 * and each key the schema knows at that place (`keysAt`; a getter of a class's prototype is read,
 * as validation did), an array's elements, a Date's time. Getters and
 * Proxy traps run here, in the spec's thread; what they throw is thrown. Maps, Sets, typed arrays
 * and the other built-ins structured clone knows are left as they are (the schema refuses them as
 * before). Shared and cyclic references stay shared. Throws {@link NotData} at a function, a
 * symbol or a promise.
 */
export function plainValue(value: unknown, keysAt: (path: readonly PropertyKey[]) => readonly string[]): unknown {
  const copies = new Map<object, unknown>();
  const copy = (v: unknown, path: PropertyKey[]): unknown => {
    if (typeof v === 'function') throw new NotData(path, 'a function');
    if (typeof v === 'symbol') throw new NotData(path, `a symbol (${v.toString()})`);
    if (v === null || typeof v !== 'object') return v;
    if (copies.has(v)) return copies.get(v);
    if (types.isPromise(v)) throw new NotData(path, 'a promise (one the spec did not await)');
    if (v instanceof Date) {
      const d = new Date(v.getTime());
      copies.set(v, d);
      return d;
    }
    if (types.isMap(v) || types.isSet(v) || types.isRegExp(v) || types.isAnyArrayBuffer(v) || ArrayBuffer.isView(v) || types.isBoxedPrimitive(v) || types.isNativeError(v)) return v;
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      copies.set(v, out);
      const length = v.length;
      for (let i = 0; i < length; i++) out.push(copy(v[i], [...path, i]));
      return out;
    }
    const out: Record<string, unknown> = {};
    copies.set(v, out);
    const put = (k: string, value: unknown) => {
      // defineProperty: a key named `__proto__` (JSON.parse makes one) stays a key.
      Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
    };
    const keys: string[] = [];
    for (const k in v) keys.push(k);
    for (const k of keys) put(k, copy((v as Record<string, unknown>)[k], [...path, k]));
    // Validation reads each key its schema knows there, whether or not the object has it.
    for (const k of keysAt(path)) {
      if (keys.includes(k)) continue;
      const child = (v as Record<string, unknown>)[k];
      if (child !== undefined || k in v) put(k, copy(child, [...path, k]));
    }
    return out;
  };
  return copy(value, []);
}
