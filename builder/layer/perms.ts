import type { LayerEntry } from './types.js';

/**
 * One `perms` rule as the layer writer applies it (plain data: it crosses to worker threads and
 * enters cache keys). nix2container's semantics: the rule concerns the entries of store path
 * `path` (the path itself and everything under it); of those, the ones whose source path
 * (`/nix/store/<hash>-name/sub/path`) `regex` finds (an unanchored search, as Go's
 * `regexp.Match`) get the fields the rule sets. Rules apply in order, so a later rule wins.
 *
 * Where imgbuild differs, and why: a field the rule does not set keeps the entry's owner
 * (nix2container resets uid/gid to 0, its Go zero value, which is root there anyway); a
 * symlink's mode is left alone (Linux ignores it, nix2container writes it); the regex is a
 * JavaScript one (RE2 and JS agree on the usual syntax: classes, anchors, alternation).
 */
export interface PermRule {
  path: string;
  regex: string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

interface Compiled {
  rule: PermRule;
  re: RegExp;
  index: number;
}

/** The rules that concern entries of these store paths, in their order. */
export function rulesFor(rules: readonly PermRule[], storePaths: Iterable<string>): PermRule[] {
  // No rules (the usual case): no Set of the layer's paths (tens of thousands in a warm build's big layer).
  if (rules.length === 0) return [];
  const set = new Set(storePaths);
  return rules.filter((r) => set.has(r.path));
}

/** Whether `sourcePath` is store path `path` or under it. */
export function underStorePath(sourcePath: string, path: string): boolean {
  return sourcePath === path || (sourcePath.startsWith(path) && sourcePath.charCodeAt(path.length) === 0x2f);
}

/**
 * Applies rules to entries; `sourceOf` gives an entry's source path (for a store layer
 * `/` + the entry's path), or undefined for an entry no rule concerns. `onMatch` is told the
 * index of each rule that changed something.
 */
export class PermApplier {
  private readonly compiled: Compiled[];

  constructor(rules: readonly PermRule[], private readonly onMatch?: (index: number) => void) {
    this.compiled = rules.map((rule, index) => ({ rule, re: new RegExp(rule.regex), index }));
  }

  get empty(): boolean {
    return this.compiled.length === 0;
  }

  apply<E extends LayerEntry>(entry: E, sourcePaths: readonly string[]): E {
    let out = entry;
    for (const c of this.compiled) {
      const source = sourcePaths.find((s) => underStorePath(s, c.rule.path));
      if (source === undefined || !c.re.test(source)) continue;
      out = withRule(out, c.rule);
      this.onMatch?.(c.index);
    }
    return out;
  }
}

function withRule<E extends LayerEntry>(entry: E, rule: PermRule): E {
  const next: E = { ...entry };
  if (rule.uid !== undefined) next.uid = rule.uid;
  if (rule.gid !== undefined) next.gid = rule.gid;
  if (rule.uname !== undefined) next.uname = rule.uname;
  if (rule.gname !== undefined) next.gname = rule.gname;
  if (rule.mode !== undefined && next.kind !== 'symlink') (next as { mode: number }).mode = rule.mode;
  return next;
}

/** A store layer's entries with the rules applied (the source path of each is `/` + its path). */
/** `withPerms` for entries that arrive asynchronously (a store layer read from NARs). */
export async function* withPermsAsync(entries: AsyncIterable<LayerEntry>, rules: readonly PermRule[]): AsyncGenerator<LayerEntry> {
  if (rules.length === 0) {
    yield* entries;
    return;
  }
  const applier = new PermApplier(rules);
  for await (const e of entries) yield applier.apply(e, [`/${e.path}`]);
}

export function withPerms(entries: Iterable<LayerEntry>, rules: readonly PermRule[]): Iterable<LayerEntry> {
  // Without rules, the entries themselves: a generator around them cost a resumption per entry.
  if (rules.length === 0) return entries;
  return applied(entries, rules);
}

function* applied(entries: Iterable<LayerEntry>, rules: readonly PermRule[]): Generator<LayerEntry> {
  const applier = new PermApplier(rules);
  for (const e of entries) yield applier.apply(e, [`/${e.path}`]);
}
