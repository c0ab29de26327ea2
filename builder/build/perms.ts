import type { ClosureGraph } from '../../layering/types.js';
import { SpecError } from '../errors.js';
import type { TarHeaderDefaults } from '../layer/types.js';
import { treeEntries } from '../layer/tree-entries.js';
import type { ResolvedSpec } from '../spec/types.js';

/**
 * Refuses a `perms` rule that changes no entry of the image: a typo in a path or regex would
 * otherwise give an image without the setuid bit or owner it was meant to have, silently (as
 * nix2container does). `matched` holds the rules the customisation layer already used; the
 * others are looked for in their store path's tree (names only, nothing is read), which is what
 * the store layers hold.
 */
export function checkPermRules(spec: ResolvedSpec, closure: ClosureGraph, fsPathOf: (storePath: string) => string, matched: ReadonlySet<number>): void {
  const inClosure = new Set(closure.paths.map((p) => p.path));
  spec.perms.forEach((rule, i) => {
    if (matched.has(i)) return;
    const where = `the rule (path ${rule.path}, regex ${JSON.stringify(rule.regex)})`;
    if (!inClosure.has(rule.path)) {
      throw new SpecError(spec.file, rule.field, `${where} matches nothing: ${rule.path} is not in the image's closure${spec.exclude.includes(rule.path) ? ' (it is in `exclude`)' : ''}`, 'name a store path of `contents` or `copyToRoot` (or their closure) in the rule, or remove it');
    }
    if (spec.includeStorePaths) {
      const re = new RegExp(rule.regex);
      for (const e of treeEntries(fsPathOf(rule.path), rule.path.slice(1))) if (re.test(`/${e.path}`)) return;
    }
    const why = spec.includeStorePaths ? `no file under ${rule.path} matches the regex` : 'includeStorePaths is false and nothing copyToRoot links from it matches';
    throw new SpecError(spec.file, rule.field, `${where} matches nothing: ${why}`, `the regex is searched in each entry's full store path, e.g. "${rule.path}/bin/sudo"; try ".*" or "/bin/sudo$"`);
  });
}

/**
 * The header defaults of store layers: the spec's, with `nixUid`/`nixGid` as the owner of
 * /nix, /nix/store and every store entry when given. A given id gets the name `users`/`groups`
 * give it (root for 0), else an empty one, so that tar does not map it back by name.
 */
export function storeHeader(spec: ResolvedSpec, header: TarHeaderDefaults): TarHeaderDefaults {
  const owner = nixOwner(spec);
  return owner ? { ...header, ...owner } : header;
}

/** The owner fields `nixUid`/`nixGid` set, or undefined when the spec gives neither. */
export function nixOwner(spec: ResolvedSpec): { uid?: number; uname?: string; gid?: number; gname?: string } | undefined {
  if (spec.nixUid === undefined && spec.nixGid === undefined) return undefined;
  const out: { uid?: number; uname?: string; gid?: number; gname?: string } = {};
  if (spec.nixUid !== undefined) {
    out.uid = spec.nixUid;
    out.uname = spec.users.find((u) => u.uid === spec.nixUid)?.name ?? (spec.nixUid === 0 ? 'root' : '');
  }
  if (spec.nixGid !== undefined) {
    out.gid = spec.nixGid;
    out.gname = spec.groups.find((g) => g.gid === spec.nixGid)?.name ?? (spec.nixGid === 0 ? 'root' : '');
  }
  return out;
}
