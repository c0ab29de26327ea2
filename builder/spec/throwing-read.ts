import { types } from 'node:util';

/**
 * A TS/JS spec's value is an object the spec made, and reading it can run the spec's code: a
 * getter, or a Proxy's traps. When validation fails with something that is not our error, this
 * finds where: it reads the value as validation does (keys, `for…in`, each property, the
 * prototype), catching each step, and gives the path of the first read that throws. When none
 * throws now but the value holds a getter or a Proxy (code that may throw once and not again,
 * or in a way only validation's reads reach: a Proxy around a Date), it says so without a path.
 * A plain value, whose reads cannot throw, gives undefined: the failure was imgbuild's own.
 */
export type ThrowingRead = { path: PropertyKey[]; error: unknown } | { path: undefined; error?: undefined };

export function findThrowingRead(value: unknown, keysAt: (path: readonly PropertyKey[]) => readonly string[]): ThrowingRead | undefined {
  const seen = new Set<object>();
  let userCode = false;
  const visit = (v: unknown, path: PropertyKey[]): ThrowingRead | undefined => {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return undefined;
    if (seen.has(v)) return undefined;
    seen.add(v);
    if (types.isProxy(v)) userCode = true;
    let keys: string[];
    let isArray: boolean;
    try {
      isArray = Array.isArray(v);
      void (v instanceof Date);
      const own = Reflect.ownKeys(v).filter((k): k is string => typeof k === 'string');
      const enumerable: string[] = [];
      for (const k in v) enumerable.push(k);
      keys = [...new Set([...own, ...enumerable, ...keysAt(path)])];
      for (const k of keys) {
        void (k in v);
        const d = Reflect.getOwnPropertyDescriptor(v, k);
        if (d && (d.get || d.set)) userCode = true;
      }
    } catch (error) {
      return { path, error };
    }
    for (const k of keys) {
      const at = [...path, isArray && /^(0|[1-9]\d*)$/.test(k) ? Number(k) : k];
      let child: unknown;
      try {
        child = (v as Record<string, unknown>)[k];
      } catch (error) {
        return { path: at, error };
      }
      const found = visit(child, at);
      if (found) return found;
    }
    return undefined;
  };
  return visit(value, []) ?? (userCode ? { path: undefined } : undefined);
}
