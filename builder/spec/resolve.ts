import { dirname, resolve as resolvePath } from 'node:path';
import type { z } from 'zod';
import type { ContainerConfig } from '../../oci/schemas.js';
import { formatRfc3339, parseSourceDateEpoch } from './dates.js';
import { parseDuration } from './duration.js';
import { ImgbuildError, SpecError } from '../errors.js';
import { argumentError, describeValue } from '../arguments.js';
import { SpecValidationError, thrownText, type SpecIssue } from './errors.js';
import { formatField, knownKeysAt, specIssues } from './issues.js';
import { findThrowingRead } from './throwing-read.js';
import { parseMode } from './mode.js';
import { hostArchitecture } from './platform.js';
import { dateMs, ImageSpecSchema, imagePathProblem, MAX_OWNER_NAME, storePathProblem } from './schema.js';
import { ACCOUNT_FILES, nixDbProblem, storeShadowProblem, type EntryKind } from './store-shadow.js';
import { PLATFORM_FIELDS, type HealthcheckSpec, type ImageSpec, type PlatformSpec, type ResolvedGroup, type ResolvedPerm, type ResolvedSpec, type ResolvedUser, type StoreKind } from './types.js';

/** What the CLI may override in a spec. */
export interface SpecOverrides {
  store?: {
    kind?: StoreKind;
    /** On-disk store directory (relative to the current directory). */
    dir?: string;
    /** Logical store dir written into the image. */
    storeDir?: string;
    /** Closure file (relative to the current directory). */
    closureFile?: string;
    verify?: boolean;
    /** binary-cache URL (`--substituter`). */
    url?: string;
    /** Trusted public keys (`--trusted-public-key`). */
    publicKeys?: string[];
  };
  /** `--cache-ref`. */
  cacheRef?: string;
}

export interface ResolveOptions {
  /** The spec file: relative paths in the spec are relative to its directory; errors name it. */
  file: string;
  /** The environment the spec is resolved in; only SOURCE_DATE_EPOCH is read. Default: empty. */
  env?: Readonly<Record<string, string | undefined>>;
  overrides?: SpecOverrides;
  /** Line of a field in the spec's text, for messages (JSON/YAML). */
  lineOf?: (path: readonly PropertyKey[]) => number | undefined;
  /** The current time for `"now"` (tests pin it). */
  now?: () => Date;
}

/** The date dockerTools and nix2container use when a spec gives none: one second after the epoch. */
export const DEFAULT_DATE_MS = 1000;
export const DEFAULT_STORE_DIR = '/nix/store';
export const DEFAULT_MAX_LAYERS = 100;

/**
 * Validate a spec value (what a spec file evaluated to) and apply every default. Throws a
 * SpecValidationError listing every problem found.
 */
export function resolveSpec(input: unknown, options: ResolveOptions): ResolvedSpec {
  // A JavaScript caller that leaves out the options (TypeScript refuses that call) got a TypeError from inside.
  const file = (options as Partial<ResolveOptions> | null | undefined)?.file;
  if (typeof file !== 'string' || file === '') {
    throw argumentError('resolveSpec', `options.file must be the spec file's path (relative paths in the spec are relative to its directory), got ${describeValue(file)}`, "call resolveSpec(spec, { file: '/path/to/image.ts' }), or loadSpec(file), which reads the file and resolves it");
  }
  try {
    const spec = resolveOne(input, options);
    const parts = (input as ImageSpec).platforms;
    if (!parts) return spec;
    return { ...spec, platforms: resolvePlatforms(input as ImageSpec, parts, options) };
  } catch (e) {
    if (e instanceof ImgbuildError) throw e;
    throw userCodeError(input, resolvePath(options.file), e) ?? e;
  }
}

/**
 * A TS/JS spec's getter or Proxy trap that threw while the spec was validated, as a SpecError
 * naming the field it was reading; undefined when the value runs no code of the spec (the error
 * is then imgbuild's own).
 */
export function userCodeError(input: unknown, file: string, e: unknown): SpecError | undefined {
  let found: ReturnType<typeof findThrowingRead>;
  try {
    found = findThrowingRead(input, (path) => knownKeysAt(ImageSpecSchema as unknown as z.ZodType, path));
  } catch {
    found = { path: undefined };
  }
  if (!found) return undefined;
  const hint = "a spec's value should be plain data: compute it before it is exported, not in getters or Proxy traps";
  if (found.path === undefined) return new SpecError(file, undefined, `validating it ran a getter or Proxy trap of the spec, which threw: ${thrownText(e)}`, hint);
  const field = formatField(found.path);
  return new SpecError(file, field, `${field ? 'reading it' : 'reading the exported value'} threw (a getter or Proxy trap of the spec): ${thrownText(found.error)}`, hint);
}

/**
 * Each platform's spec: its part's fields over the shared ones, resolved like any spec. A
 * problem in a part's field is reported at `platforms[i].<field>`. Two parts for one platform,
 * or an architecture outside the parts, are errors.
 */
function resolvePlatforms(shared: ImageSpec, parts: PlatformSpec[], options: ResolveOptions): ResolvedSpec[] {
  const file = resolvePath(options.file);
  const issues: SpecIssue[] = [];
  for (const key of ['architecture', 'variant'] as const) {
    if (shared[key] !== undefined) issues.push({ field: key, path: [key], message: `a spec with \`platforms\` names the ${key} in each platform, not here` });
  }
  const { platforms: _, ...rest } = shared;
  const seen = new Map<string, number>();
  const resolved: ResolvedSpec[] = [];
  parts.forEach((part, i) => {
    const own = Object.fromEntries(PLATFORM_FIELDS.filter((k) => part[k] !== undefined).map((k) => [k, part[k]]));
    const merged = { ...rest, ...own };
    try {
      const r = resolveOne(merged, { ...options, lineOf: undefined });
      const key = `${r.os}/${r.architecture}${r.variant ? `/${r.variant}` : ''}`;
      if (seen.has(key)) issues.push({ field: `platforms[${i}]`, path: ['platforms', i], message: `${key} is also platforms[${seen.get(key)}]` });
      seen.set(key, i);
      resolved.push({ ...r, part: { index: i, fields: PLATFORM_FIELDS.filter((k) => part[k] !== undefined) } });
    } catch (e) {
      if (!(e instanceof SpecValidationError)) throw e;
      for (const issue of e.issues) {
        const path = issue.path.length > 0 && issue.path[0] as string in own ? ['platforms', i, ...issue.path] : issue.path;
        issues.push({ ...issue, path, field: formatField(path) });
      }
    }
  });
  if (issues.length > 0) {
    const lineOf = options.lineOf;
    throw new SpecValidationError(file, lineOf ? issues.map((i) => withLine(i, i.path.length > 0 ? lineOf(i.path) : undefined)) : issues);
  }
  return resolved;
}

function resolveOne(input: unknown, options: ResolveOptions): ResolvedSpec {
  const file = resolvePath(options.file);
  const fail = (issues: SpecIssue[]): never => {
    const lineOf = options.lineOf;
    // With lines known, list problems in the order a reader meets them in the file.
    // A problem of the whole spec (SOURCE_DATE_EPOCH, a command-line override) has no line.
    const located = lineOf ? issues.map((i) => withLine(i, i.path.length > 0 ? lineOf(i.path) : undefined)).sort((a, b) => (a.line ?? 0) - (b.line ?? 0)) : issues;
    throw new SpecValidationError(file, located);
  };
  const parsed = ImageSpecSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) fail(specIssues(parsed.error.issues, ImageSpecSchema as unknown as z.ZodType));
  const spec = parsed.data as ImageSpec;
  const issues: SpecIssue[] = [];
  const issue = (path: PropertyKey[], message: string, hint?: string) => issues.push({ field: formatField(path), path, message, ...(hint ? { hint } : {}) });

  const specDir = dirname(file);
  const storeDir = options.overrides?.store?.storeDir ?? spec.store?.storeDir ?? DEFAULT_STORE_DIR;
  if (options.overrides?.store?.storeDir !== undefined) {
    const problem = imagePathProblem(storeDir);
    if (problem) issue([], `the store dir given on the command line: ${problem}`);
  }
  const over = options.overrides?.store ?? {};
  const storeFsDir = over.dir !== undefined ? resolvePath(over.dir) : spec.store?.dir !== undefined ? resolvePath(specDir, spec.store.dir) : undefined;
  const closureFile = over.closureFile !== undefined ? resolvePath(over.closureFile) : spec.store?.closureFile !== undefined ? resolvePath(specDir, spec.store.closureFile) : undefined;
  const storeKind: StoreKind = over.kind ?? spec.store?.kind ?? (closureFile !== undefined ? 'closure-file' : 'directory');
  if (storeKind === 'closure-file' && closureFile === undefined) issue(['store', 'closureFile'], 'a closure-file store needs closureFile');
  const cacheUrl = over.url ?? spec.store?.url;
  if (storeKind === 'binary-cache' && cacheUrl === undefined) issue(['store', 'url'], 'a binary-cache store needs url (or --substituter)');
  const publicKeys = over.publicKeys ?? spec.store?.publicKeys;

  const inStore = (paths: string[] | undefined, at: PropertyKey[]) =>
    (paths ?? []).forEach((p, i) => {
      if (p.slice(0, p.lastIndexOf('/')) !== storeDir) issue([...at, i], `"${p}" is not in the store dir ${storeDir}`);
    });
  // A Nix store also realises installables (flake references, .drv files); other sources only hold store paths.
  const isInstallable = (p: string) => storeKind === 'nix' && p.includes('#');
  const contentPaths = (spec.contents ?? []).filter((p, i) => {
    if (isInstallable(p)) return false;
    const problem = storePathProblem(p);
    if (problem) issue(['contents', i], storeKind === 'nix' ? `${problem}, nor an installable (flake#attr)` : problem);
    return !problem;
  });
  inStore(contentPaths, ['contents']);
  inStore(spec.copyToRoot, ['copyToRoot']);
  inStore(spec.layering?.pinned, ['layering', 'pinned']);
  spec.layering?.layers?.forEach((group, i) => inStore(group, ['layering', 'layers', i]));
  inStore(spec.exclude, ['exclude']);
  spec.perms?.forEach((r, i) => inStore([r.path], ['perms', i, 'path']));

  const dates = resolveDates(spec, options.env ?? {}, options.now ?? (() => new Date()));
  if ('problem' in dates) issue([], dates.problem, dates.hint);

  const accounts = resolveAccounts(spec, issue);
  ownerNameIssues(spec, accounts, issue);
  // The store dir a Nix store reports is known once it is asked (customisation/entries.ts checks then).
  const storeDirKnown = storeKind !== 'nix' || over.storeDir !== undefined || spec.store?.storeDir !== undefined;
  const storeDirValid = imagePathProblem(storeDir) === undefined;
  for (const e of specEntries(spec, accounts)) {
    const problem = (storeDirKnown && storeDirValid ? storeShadowProblem(e.path, e.kind, storeDir) : undefined) ?? (spec.includeNixDB ? nixDbProblem(e.path, e.kind, [...contentPaths, ...(spec.copyToRoot ?? [])]) : undefined);
    if (problem) issue(e.at, problem);
  }

  if (issues.length > 0) fail(issues);
  const { created, mtime } = dates as { created: string; mtime: number };

  return {
    file,
    name: spec.name,
    tag: spec.tag,
    contents: unique(spec.contents ?? []),
    store: {
      kind: storeKind,
      dir: storeFsDir,
      storeDir,
      storeDirGiven: over.storeDir !== undefined || spec.store?.storeDir !== undefined,
      closureFile,
      verify: over.verify ?? spec.store?.verify ?? false,
      ...(cacheUrl !== undefined ? { url: cacheUrl } : {}),
      ...(publicKeys !== undefined ? { publicKeys } : {}),
    },
    ...((options.overrides?.cacheRef ?? spec.cache?.ref) !== undefined ? { cacheRef: options.overrides?.cacheRef ?? spec.cache?.ref } : {}),
    config: resolveConfig(spec.config ?? {}),
    created,
    mtime,
    uid: spec.uid ?? 0,
    gid: spec.gid ?? 0,
    uname: spec.uname ?? 'root',
    gname: spec.gname ?? 'root',
    maxLayers: spec.maxLayers ?? DEFAULT_MAX_LAYERS,
    // Until the build reads the closure's ELF files (build/architecture.ts): this machine's.
    architecture: spec.architecture ?? hostArchitecture(),
    architectureGiven: spec.architecture !== undefined,
    os: spec.os ?? 'linux',
    variant: spec.variant,
    includeStorePaths: spec.includeStorePaths ?? true,
    includeNixDB: spec.includeNixDB ?? false,
    compressor: spec.compressor ?? 'gzip',
    layering: {
      strategy: spec.layering?.strategy ?? 'auto',
      layers: spec.layering?.layers ?? [],
      pinned: unique(spec.layering?.pinned ?? []),
    },
    fromImage: spec.fromImage,
    copyToRoot: unique(spec.copyToRoot ?? []),
    pathsToLink: unique(spec.pathsToLink ?? ['/']),
    files: (spec.files ?? []).map((f, i) => ({
      path: f.path,
      content: f.source !== undefined ? { kind: 'host' as const, fsPath: resolvePath(specDir, f.source) } : { kind: 'text' as const, text: f.content ?? '' },
      mode: f.mode === undefined ? undefined : modeOf(f.mode),
      uid: f.uid,
      gid: f.gid,
      field: `files[${i}]`,
    })),
    directories: (spec.directories ?? []).map((d, i) => ({
      path: d.path,
      mode: d.mode === undefined ? 0o755 : modeOf(d.mode),
      uid: d.uid,
      gid: d.gid,
      field: `directories[${i}]`,
    })),
    symlinks: (spec.symlinks ?? []).map((s, i) => ({ path: s.path, target: s.target, field: `symlinks[${i}]` })),
    users: accounts.users,
    groups: accounts.groups,
    perms: resolvePerms(spec, accounts),
    exclude: unique(spec.exclude ?? []),
    nixUid: spec.nixUid,
    nixGid: spec.nixGid,
    ...(spec.annotations !== undefined ? { annotations: { ...spec.annotations } } : {}),
  };
}

/** The entries the spec itself puts in the customisation layer, with the field each comes from. */
function specEntries(spec: ImageSpec, accounts: { users: ResolvedUser[]; groups: ResolvedGroup[] }): { path: string; kind: EntryKind; at: PropertyKey[] }[] {
  const out: { path: string; kind: EntryKind; at: PropertyKey[] }[] = [];
  if (accounts.users.length > 0 || accounts.groups.length > 0) {
    const at = (spec.users ?? []).length > 0 ? ['users'] : ['groups'];
    for (const path of ACCOUNT_FILES) out.push({ path, kind: 'file', at });
  }
  (spec.directories ?? []).forEach((d, i) => out.push({ path: d.path, kind: 'directory', at: ['directories', i, 'path'] }));
  (spec.files ?? []).forEach((f, i) => out.push({ path: f.path, kind: 'file', at: ['files', i, 'path'] }));
  (spec.symlinks ?? []).forEach((l, i) => out.push({ path: l.path, kind: 'symlink', at: ['symlinks', i, 'path'] }));
  return out;
}

/**
 * An entry's owner name comes from `users`/`groups` when the spec gives its id alone (a per-entry
 * uid/gid, a perms rule's, nixUid/nixGid), and a tar header holds at most 31 characters of it: a
 * longer account name (valid in /etc/passwd, up to 32) cannot own an entry. Refused at the id.
 */
function ownerNameIssues(spec: ImageSpec, accounts: { users: ResolvedUser[]; groups: ResolvedGroup[] }, issue: (path: PropertyKey[], message: string) => void): void {
  const check = (kind: 'uid' | 'gid', id: number | undefined, at: PropertyKey[]) => {
    if (id === undefined) return;
    const name = kind === 'uid' ? accounts.users.find((u) => u.uid === id)?.name : accounts.groups.find((g) => g.gid === id)?.name;
    // Account names are ASCII (the schema's rule): only their length can be too much.
    if (name === undefined || name.length <= MAX_OWNER_NAME) return;
    // A group the spec does not define is the one made for the user of that name.
    const made = kind === 'gid' && !(spec.groups ?? []).some((g) => g.gid === id);
    const what = kind === 'uid' ? `user "${name}"` : made ? `group "${name}" (made for the user of that name)` : `group "${name}"`;
    issue(at, `${kind} ${id} is ${what}, whose name has ${name.length} characters: a tar header holds an owner name of at most ${MAX_OWNER_NAME}; shorten the ${kind === 'uid' || made ? "user's" : "group's"} name`);
  };
  for (const list of ['files', 'directories'] as const) {
    (spec[list] ?? []).forEach((e, i) => {
      check('uid', e.uid, [list, i, 'uid']);
      check('gid', e.gid, [list, i, 'gid']);
    });
  }
  (spec.perms ?? []).forEach((r, i) => {
    if (r.uname === undefined) check('uid', r.uid, ['perms', i, 'uid']);
    if (r.gname === undefined) check('gid', r.gid, ['perms', i, 'gid']);
  });
  check('uid', spec.nixUid, ['nixUid']);
  check('gid', spec.nixGid, ['nixGid']);
}

/**
 * perms rules with modes as numbers. A rule giving a uid (gid) without a name gets the name of
 * that account in `users` (`groups`), else an empty one: tar must not map the id back to root by
 * name (nix2container keeps "root" there).
 */
function resolvePerms(spec: ImageSpec, accounts: { users: ResolvedUser[]; groups: ResolvedGroup[] }): ResolvedPerm[] {
  return (spec.perms ?? []).map((r, i) => {
    const out: ResolvedPerm = { path: r.path, regex: r.regex, field: `perms[${i}]` };
    if (r.mode !== undefined) out.mode = modeOf(r.mode);
    if (r.uid !== undefined) {
      out.uid = r.uid;
      out.uname = r.uname ?? accounts.users.find((u) => u.uid === r.uid)?.name ?? '';
    } else if (r.uname !== undefined) out.uname = r.uname;
    if (r.gid !== undefined) {
      out.gid = r.gid;
      out.gname = r.gname ?? accounts.groups.find((g) => g.gid === r.gid)?.name ?? '';
    } else if (r.gname !== undefined) out.gname = r.gname;
    return out;
  });
}

function withLine(issue: SpecIssue, line: number | undefined): SpecIssue {
  return line === undefined ? issue : { ...issue, line };
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function modeOf(value: string | number): number {
  const r = parseMode(value);
  if ('problem' in r) throw new Error(`unreachable: mode validated by the schema: ${r.problem}`);
  return r.mode;
}

/**
 * `created` and `mtime`. Precedence for each: the spec's value ("now" = this second), then
 * SOURCE_DATE_EPOCH, then — for mtime only — a fixed `created` (dockerTools' `mtime ? created`),
 * then 1970-01-01T00:00:01Z. `created: "now"` does not move mtime: layers stay reproducible and
 * cacheable while the config records the build time.
 */
function resolveDates(spec: ImageSpec, env: NodeJS.ProcessEnv, now: () => Date): { created: string; mtime: number } | { problem: string; hint: string } {
  const nowMs = Math.floor(now().getTime() / 1000) * 1000;
  const sde = env.SOURCE_DATE_EPOCH;
  const needsSde = sde !== undefined && sde !== '' && (spec.created === undefined || spec.mtime === undefined);
  let sdeMs: number | undefined;
  if (needsSde) {
    const r = parseSourceDateEpoch(sde);
    if ('problem' in r) return r;
    sdeMs = r.seconds * 1000;
  }
  const fixed = (value: string | Date) => (dateMs(value) as { ms: number }).ms;
  const createdMs = spec.created === 'now' ? nowMs : spec.created !== undefined ? fixed(spec.created) : (sdeMs ?? DEFAULT_DATE_MS);
  // A fraction of a second finer than a millisecond is kept in created (mtime is whole seconds: tar's).
  const createdSubMs = spec.created !== undefined && spec.created !== 'now' ? (dateMs(spec.created) as { subMs?: string }).subMs : undefined;
  const mtimeMs =
    spec.mtime === 'now'
      ? nowMs
      : spec.mtime !== undefined
        ? fixed(spec.mtime)
        : (sdeMs ?? (spec.created !== undefined && spec.created !== 'now' ? createdMs : DEFAULT_DATE_MS));
  return { created: formatRfc3339(createdMs, createdSubMs), mtime: Math.floor(mtimeMs / 1000) };
}

function resolveConfig(c: NonNullable<ImageSpec['config']>): ContainerConfig {
  const out: ContainerConfig = {};
  if (c.User !== undefined) out.User = c.User;
  if (c.ExposedPorts !== undefined) {
    const ports = Array.isArray(c.ExposedPorts) ? c.ExposedPorts.map(String) : Object.keys(c.ExposedPorts);
    out.ExposedPorts = Object.fromEntries(ports.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}]));
  }
  if (c.Env !== undefined) out.Env = Array.isArray(c.Env) ? [...c.Env] : Object.entries(c.Env).map(([k, v]) => `${k}=${v}`);
  if (c.Entrypoint !== undefined) out.Entrypoint = [...c.Entrypoint];
  if (c.Cmd !== undefined) out.Cmd = [...c.Cmd];
  if (c.Volumes !== undefined) {
    const volumes = Array.isArray(c.Volumes) ? c.Volumes : Object.keys(c.Volumes);
    out.Volumes = Object.fromEntries(volumes.map((v) => [v, {}]));
  }
  if (c.WorkingDir !== undefined) out.WorkingDir = c.WorkingDir;
  if (c.Labels !== undefined) out.Labels = { ...c.Labels };
  if (c.StopSignal !== undefined) out.StopSignal = c.StopSignal;
  if (c.Healthcheck !== undefined) out.Healthcheck = resolveHealthcheck(c.Healthcheck);
  return out;
}

function resolveHealthcheck(h: HealthcheckSpec): NonNullable<ContainerConfig['Healthcheck']> {
  const ns = (v: number | string | undefined) => (v === undefined ? undefined : typeof v === 'number' ? v : (parseDuration(v) as { ns: number }).ns);
  const out: NonNullable<ContainerConfig['Healthcheck']> = {};
  if (h.Test !== undefined) out.Test = [...h.Test];
  for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval'] as const) {
    const v = ns(h[key]);
    if (v !== undefined) out[key] = v;
  }
  if (h.Retries !== undefined) out.Retries = h.Retries;
  return out;
}

/** The accounts every generated /etc/passwd has unless the spec defines them (as dockerTools.fakeNss). */
export const BUILTIN_USERS: readonly ResolvedUser[] = [
  { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/sh', description: 'root' },
  { name: 'nobody', uid: 65534, gid: 65534, home: '/var/empty', shell: '/bin/sh', description: 'nobody' },
];
export const BUILTIN_GROUPS: readonly ResolvedGroup[] = [
  { name: 'root', gid: 0, members: [] },
  { name: 'nobody', gid: 65534, members: [] },
];

/**
 * Users and groups with defaults: when the spec has either, root and nobody are added unless the
 * spec uses their name or id, and a user whose gid has no group gets one named after the user.
 * Sorted by id, then name, so the generated files do not depend on the spec's order.
 */
function resolveAccounts(spec: ImageSpec, issue: (path: PropertyKey[], message: string) => void): { users: ResolvedUser[]; groups: ResolvedGroup[] } {
  const specUsers = spec.users ?? [];
  const specGroups = spec.groups ?? [];
  if (specUsers.length === 0 && specGroups.length === 0) return { users: [], groups: [] };

  const firstUser = new Map<string, number>();
  specUsers.forEach((u, i) => {
    const prev = firstUser.get(u.name);
    if (prev !== undefined) issue(['users', i, 'name'], `user "${u.name}" is already defined by users[${prev}]`);
    else firstUser.set(u.name, i);
  });
  const firstGroup = new Map<string, number>();
  specGroups.forEach((g, i) => {
    const prev = firstGroup.get(g.name);
    if (prev !== undefined) issue(['groups', i, 'name'], `group "${g.name}" is already defined by groups[${prev}]`);
    else firstGroup.set(g.name, i);
  });

  const users: ResolvedUser[] = specUsers.map((u) => ({
    name: u.name,
    uid: u.uid,
    gid: u.gid ?? u.uid,
    home: u.home ?? '/var/empty',
    shell: u.shell ?? '/bin/sh',
    description: u.description ?? '',
  }));
  // A built-in account is left out when the spec already uses its name or its id.
  for (const b of BUILTIN_USERS) if (!users.some((u) => u.name === b.name || u.uid === b.uid)) users.push({ ...b });
  const groups: ResolvedGroup[] = specGroups.map((g) => ({ name: g.name, gid: g.gid, members: [...(g.members ?? [])] }));
  for (const b of BUILTIN_GROUPS) if (!groups.some((g) => g.name === b.name || g.gid === b.gid)) groups.push({ ...b, members: [] });

  const userNames = new Set(users.map((u) => u.name));
  specGroups.forEach((g, i) =>
    (g.members ?? []).forEach((m, j) => {
      if (!userNames.has(m)) issue(['groups', i, 'members', j], `"${m}" is not a user (define it in \`users\`)`);
    }),
  );
  for (const u of users) {
    const gids = new Set(groups.map((g) => g.gid));
    const names = new Set(groups.map((g) => g.name));
    if (!gids.has(u.gid) && !names.has(u.name)) groups.push({ name: u.name, gid: u.gid, members: [] });
  }
  const byId = <T extends { name: string }>(id: (x: T) => number) => (a: T, b: T) => id(a) - id(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  users.sort(byId((u: ResolvedUser) => u.uid));
  groups.sort(byId((g: ResolvedGroup) => g.gid));
  return { users, groups };
}
