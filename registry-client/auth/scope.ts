/**
 * Token scopes (`repository:<name>:<actions>`), kept as a map from resource to a set of actions
 * so that widening a scope (pull → pull,push; adding a mount's `from` repository) is a union.
 */
export class ScopeSet {
  private readonly map = new Map<string, Set<string>>();

  constructor(scopes: Iterable<string> = []) {
    for (const s of scopes) this.add(s);
  }

  static repository(name: string, ...actions: string[]): string {
    return `repository:${name}:${actions.join(',')}`;
  }

  /** Add one scope string; a scope may hold several space-separated scopes (as challenges send them). */
  add(scope: string): this {
    for (const one of scope.split(' ')) {
      if (!one) continue;
      const lastColon = one.lastIndexOf(':');
      if (lastColon <= 0) continue;
      const resource = one.slice(0, lastColon);
      const actions = one.slice(lastColon + 1).split(',').filter(Boolean);
      let set = this.map.get(resource);
      if (!set) this.map.set(resource, (set = new Set()));
      for (const a of actions) set.add(a);
    }
    return this;
  }

  addAll(other: ScopeSet | Iterable<string>): this {
    for (const s of other instanceof ScopeSet ? other.toArray() : other) this.add(s);
    return this;
  }

  /** Whether every action of every resource in `other` is in this set. */
  covers(other: ScopeSet): boolean {
    for (const [resource, actions] of other.map) {
      const mine = this.map.get(resource);
      if (!mine) return false;
      if (mine.has('*')) continue;
      for (const a of actions) if (!mine.has(a)) return false;
    }
    return true;
  }

  get size(): number {
    return this.map.size;
  }

  /** Sorted scope strings with sorted actions: a stable cache key and query. */
  toArray(): string[] {
    return [...this.map.entries()]
      .map(([resource, actions]) => `${resource}:${[...actions].sort().join(',')}`)
      .sort();
  }

  toString(): string {
    return this.toArray().join(' ');
  }
}
