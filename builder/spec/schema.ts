import * as z from 'zod';
import { nameProblem, tagProblem } from './reference.js';
import { MAX_TAR_TIME, parseIsoDate } from './dates.js';
import { GO_ARCHITECTURES, GO_OSES } from './platform.js';
import { parseDuration } from './duration.js';
import { parseMode } from './mode.js';
import type { ImageSpec, ImageSpecFactory } from './types.js';

export type * from './types.js';

/**
 * The zod schema of an image spec. It validates only; `resolve.ts` applies defaults and converts
 * (modes to numbers, ports to objects, relative paths to absolute). Every object is strict: an
 * unknown key is an error, reported with the closest known key.
 */

/** Compressors a spec may name (each one the layer writer knows: builder/layer/blob-sinks.ts createSink). */
export const COMPRESSORS = ['gzip', 'none', 'zstd'] as const;
export const LAYERING_STRATEGIES = ['popularity', 'auto', 'stable'] as const;
export const MAX_LAYERS_LIMIT = 125;

/** Why `p` is not an absolute, normalised path, or undefined when it is. */
export function imagePathProblem(p: string): string | undefined {
  if (!p.startsWith('/')) return `"${p}" is not an absolute path (it must start with "/")`;
  if (p === '/') return 'must not be "/" itself';
  if (p.includes('\0')) return 'contains a NUL byte';
  if (!(p as string & { isWellFormed(): boolean }).isWellFormed()) return 'is not valid Unicode (a lone surrogate cannot be written as UTF-8)';
  if (p.endsWith('/')) return `"${p}" must not end with "/"`;
  for (const part of p.slice(1).split('/')) {
    if (part === '') return `"${p}" contains an empty component ("//")`;
    if (part === '.' || part === '..') return `"${p}" is not normalised (contains "${part}")`;
  }
  return undefined;
}

const NIX_BASE32 = '[0-9abcdfghijklmnpqrsvwxyz]';
const STORE_PATH_NAME = new RegExp(`^${NIX_BASE32}{32}-[A-Za-z0-9+\\-_?=][A-Za-z0-9+\\-._?=]*$`);

/** Why `p` does not look like `<storeDir>/<32-char hash>-<name>`, or undefined. */
export function storePathProblem(p: string): string | undefined {
  const pathIssue = imagePathProblem(p);
  if (pathIssue) return pathIssue;
  const base = p.slice(p.lastIndexOf('/') + 1);
  if (p.lastIndexOf('/') === 0 || !STORE_PATH_NAME.test(base) || base.length > 211) {
    return `"${p}" is not a store path (<storeDir>/<32-char nix-base32 hash>-<name>)`;
  }
  return undefined;
}

function checked(problem: (v: string) => string | undefined) {
  return z.string().check((ctx) => {
    const message = problem(ctx.value);
    if (message) ctx.issues.push({ code: 'custom', message, input: ctx.value });
  });
}

const imagePath = checked(imagePathProblem);
const storePath = checked(storePathProblem);
const nonEmpty = checked((v) => (v === '' ? 'must not be empty' : undefined));
/** An id in /etc/passwd or /etc/group (`users`, `groups`): what Linux allows, 0..2^32-2. */
const id = z.number().int().min(0).max(0xfffffffe);
/**
 * The largest uid/gid of an entry's owner: a tar header holds 7 octal digits (layer/tar-header.ts
 * MAX_ID; test/spec-owner-limits.test.ts checks they agree).
 */
export const MAX_OWNER_ID = 0o7777777;
/** The longest owner name (uname/gname) of an entry: a tar header's 32-byte field less its NUL, ASCII (layer/tar-header.ts). */
export const MAX_OWNER_NAME = 31;
/** The uid/gid of an entry's owner (`uid`, `nixUid`, `files[].uid`, `perms[].uid`, ...). */
const ownerId = z.number().int().min(0).max(MAX_OWNER_ID);

/** Why `name` cannot be an entry's owner name in a tar header, or undefined. */
export function ownerNameProblem(name: string): string | undefined {
  if (name.includes('\0')) return 'contains a NUL byte';
  if (!/^[\x01-\x7f]*$/.test(name)) return `"${name}" is not ASCII: a tar header holds an ASCII owner name`;
  if (name.length > MAX_OWNER_NAME) return `"${name}" has ${name.length} characters: a tar header holds an owner name of at most ${MAX_OWNER_NAME}`;
  return undefined;
}

const mode = z.union([z.string(), z.number()]).check((ctx) => {
  const r = parseMode(ctx.value);
  if ('problem' in r) ctx.issues.push({ code: 'custom', message: r.problem, input: ctx.value });
});

/** A date: ISO 8601 text or `"now"`, or (in TS/JS specs) a Date. */
const isoDate = (allowNow: boolean) =>
  z.union([z.string(), z.date()]).check((ctx) => {
    if (allowNow && ctx.value === 'now') return;
    const r = dateMs(ctx.value);
    if ('problem' in r) ctx.issues.push({ code: 'custom', message: r.problem, input: ctx.value });
  });

/** Milliseconds since the epoch of a validated spec date other than "now". */
export function dateMs(value: string | Date): { ms: number; subMs?: string } | { problem: string } {
  if (typeof value === 'string') return parseIsoDate(value);
  const ms = value.getTime();
  const seconds = Math.floor(ms / 1000);
  if (ms < 0) return { problem: `${value.toISOString()} is before 1970-01-01T00:00:00Z; tar cannot record it` };
  if (seconds > MAX_TAR_TIME) return { problem: `${value.toISOString()} is after the latest time a tar header holds` };
  return { ms };
}

const duration = z.union([z.number().int().min(0), z.string()]).check((ctx) => {
  if (typeof ctx.value !== 'string') return;
  const r = parseDuration(ctx.value);
  if ('problem' in r) ctx.issues.push({ code: 'custom', message: r.problem, input: ctx.value });
});

export function envKeyProblem(key: string): string | undefined {
  if (key === '') return 'an environment variable name must not be empty';
  if (key.includes('=')) return `"${key}" contains "="`;
  if (key.includes('\0')) return 'contains a NUL byte';
  return undefined;
}
const envEntry = checked((v) => {
  const eq = v.indexOf('=');
  if (eq < 0) return `"${v}" is not of the form "KEY=value"`;
  return envKeyProblem(v.slice(0, eq));
});

export function portProblem(p: string): string | undefined {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(p);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) return `"${p}" is not a port like "8080", "8080/tcp", "53/udp" or "9/sctp"`;
  return undefined;
}
const port = checked(portProblem);
const emptyObject = z.strictObject({});

const healthcheckTest = z.array(z.string()).check((ctx) => {
  const [kind, ...rest] = ctx.value;
  const ok = (kind === 'NONE' && rest.length === 0) || (kind === 'CMD' && rest.length > 0) || (kind === 'CMD-SHELL' && rest.length === 1);
  if (!ok) ctx.issues.push({ code: 'custom', message: 'must be ["NONE"], ["CMD", program, args...] or ["CMD-SHELL", command]', input: ctx.value });
});

const healthcheck = z.strictObject({
  Test: healthcheckTest.optional(),
  Interval: duration.optional(),
  Timeout: duration.optional(),
  StartPeriod: duration.optional(),
  StartInterval: duration.optional(),
  Retries: z.number().int().min(0).optional(),
});

const containerConfig = z.strictObject({
  Cmd: z.array(z.string()).optional(),
  Entrypoint: z.array(z.string()).optional(),
  Env: z.union([z.array(envEntry), z.record(checked(envKeyProblem), z.string())]).optional(),
  WorkingDir: imagePath.optional(),
  User: nonEmpty.optional(),
  ExposedPorts: z.union([z.array(z.union([port, z.number().int().min(1).max(65535)])), z.record(port, emptyObject)]).optional(),
  Volumes: z.union([z.array(imagePath), z.record(imagePath, emptyObject)]).optional(),
  Labels: z.record(z.string(), z.string()).optional(),
  StopSignal: checked((v) => (/^(SIG[A-Z0-9+-]+|[A-Z0-9+-]+|\d+)$/.test(v) ? undefined : `"${v}" is not a signal name like "SIGTERM" or a number`)).optional(),
  Healthcheck: healthcheck.optional(),
});

const fileSpec = z
  .strictObject({
    path: imagePath,
    content: z.string().optional(),
    source: nonEmpty.optional(),
    mode: mode.optional(),
    uid: ownerId.optional(),
    gid: ownerId.optional(),
  })
  .check((ctx) => {
    const { content, source } = ctx.value;
    if ((content === undefined) === (source === undefined)) {
      const message = content === undefined ? 'needs `content` or `source`' : 'has both `content` and `source`; give exactly one';
      ctx.issues.push({ code: 'custom', message, input: ctx.value });
    }
  });

const directorySpec = z.strictObject({ path: imagePath, mode: mode.optional(), uid: ownerId.optional(), gid: ownerId.optional() });
const symlinkSpec = z.strictObject({ path: imagePath, target: checked((v) => (v === '' ? 'must not be empty' : v.includes('\0') ? 'contains a NUL byte' : undefined)) });

/** /etc/passwd and /etc/group fields are colon-separated lines: no `:` and no newline in a field. */
const passwdField = (what: string) =>
  z.string().check((ctx) => {
    if (/[:\n\r\0]/.test(ctx.value)) ctx.issues.push({ code: 'custom', message: `${what} must not contain ":", a newline or NUL`, input: ctx.value });
  });
/** An entry's owner name (`uname`, `gname`): a passwd field that a tar header can hold. */
const ownerName = (what: string) =>
  z.string().check((ctx) => {
    const problem = /[:\n\r\0]/.test(ctx.value) ? `${what} must not contain ":", a newline or NUL` : ownerNameProblem(ctx.value);
    if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
  });
const accountName = checked((v) =>
  /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/.test(v) ? undefined : `"${v}" is not a valid name (a letter or "_", then letters, digits, ".", "_", "-"; at most 32 characters)`,
);
const absoluteField = (what: string) =>
  z.string().check((ctx) => {
    const p = ctx.value;
    if (!p.startsWith('/') || /[:\n\r\0]/.test(p)) ctx.issues.push({ code: 'custom', message: `${what} must be an absolute path without ":" or a newline`, input: p });
  });

const userSpec = z.strictObject({
  name: accountName,
  uid: id,
  gid: id.optional(),
  home: absoluteField('home').optional(),
  shell: absoluteField('shell').optional(),
  description: passwdField('description').optional(),
});
const groupSpec = z.strictObject({ name: accountName, gid: id, members: z.array(accountName).optional() });

const layering = z.strictObject({
  strategy: z.enum(LAYERING_STRATEGIES).optional(),
  layers: z.array(z.array(storePath).min(1)).optional(),
  pinned: z.array(storePath).optional(),
});

const maxLayers = z.number().check((ctx) => {
  const n = ctx.value;
  if (!Number.isInteger(n) || n < 2 || n > MAX_LAYERS_LIMIT) {
    ctx.issues.push({ code: 'custom', message: `must be a whole number from 2 to ${MAX_LAYERS_LIMIT}, got ${n} (containerd's overlay limit is 127 layers)`, input: n });
  }
});

const compressor = z.string().check((ctx) => {
  if ((COMPRESSORS as readonly string[]).includes(ctx.value)) return;
  ctx.issues.push({ code: 'custom', message: `must be one of ${COMPRESSORS.map((c) => `"${c}"`).join(', ')}, got "${ctx.value}"`, input: ctx.value });
});

const oneOf = (what: string, values: readonly string[], aliases: Record<string, string> = {}) =>
  z.string().check((ctx) => {
    if (values.includes(ctx.value)) return;
    const alias = aliases[ctx.value] ?? aliases[ctx.value.toLowerCase()] ?? (values.includes(ctx.value.toLowerCase()) ? ctx.value.toLowerCase() : undefined);
    const hint = alias ? `; did you mean "${alias}"?` : ` (known: ${values.join(', ')})`;
    ctx.issues.push({ code: 'custom', message: `"${ctx.value}" is not a Go ${what} name${hint}`, input: ctx.value });
  });

/** Keys of the spec's `store` object. */
const store = z.strictObject({
  kind: z.enum(['directory', 'nix', 'closure-file', 'binary-cache']).optional(),
  dir: nonEmpty.optional(),
  storeDir: imagePath.optional(),
  closureFile: nonEmpty.optional(),
  verify: z.boolean().optional(),
  url: nonEmpty.optional(),
  publicKeys: z.array(nonEmpty).optional(),
});

/** Keys of the spec's `cache` object. */
const cacheSpec = z.strictObject({
  ref: nonEmpty.optional(),
});

const goArchitecture = oneOf('architecture', GO_ARCHITECTURES, { x86_64: 'amd64', x64: 'amd64', aarch64: 'arm64', i386: '386', i686: '386', armv7l: 'arm' });
const goOs = oneOf('OS', GO_OSES, { macos: 'darwin', osx: 'darwin', win32: 'windows' });
const cpuVariant = checked((v) => (/^[a-z0-9][a-z0-9.]*$/.test(v) ? undefined : `"${v}" is not a CPU variant like "v7" or "v8"`));

/** A JavaScript regular expression (perms' `regex`). */
const regexSource = z.string().check((ctx) => {
  try {
    new RegExp(ctx.value);
  } catch (e) {
    ctx.issues.push({ code: 'custom', message: `"${ctx.value}" is not a regular expression: ${(e as Error).message}`, input: ctx.value });
  }
});

/** One `perms` rule (nix2container's shape); it must set something. */
const permSpec = z
  .strictObject({ path: storePath, regex: regexSource, mode: mode.optional(), uid: ownerId.optional(), gid: ownerId.optional(), uname: ownerName('uname').optional(), gname: ownerName('gname').optional() })
  .check((ctx) => {
    const v = ctx.value;
    if (v.mode === undefined && v.uid === undefined && v.gid === undefined && v.uname === undefined && v.gname === undefined) {
      ctx.issues.push({ code: 'custom', message: 'sets nothing: give at least one of mode, uid, gid, uname, gname', input: v });
    }
  });

/** One platform of a multi-platform spec. */
const platformPart = z.strictObject({
  architecture: goArchitecture.describe('Go architecture name of this platform (amd64, arm64, ...).'),
  variant: cpuVariant.optional().describe('CPU variant (v7, v8, ...).'),
  os: goOs.optional().describe('Go OS name. Default: the shared os, else linux.'),
  contents: z.array(nonEmpty).optional().describe("This platform's contents (replaces the shared contents)."),
  copyToRoot: z.array(storePath).optional().describe("This platform's copyToRoot (replaces the shared one)."),
  store: store.optional().describe("This platform's store (replaces the shared store)."),
  fromImage: nonEmpty.optional().describe("This platform's base image (replaces the shared fromImage)."),
  perms: z.array(permSpec).optional().describe("This platform's perms (replaces the shared perms)."),
  exclude: z.array(storePath).optional().describe("This platform's exclude (replaces the shared exclude)."),
});

export const ImageSpecSchema = z.strictObject({
  $schema: z.string().optional().describe('JSON Schema of this file, for editors; ignored by imgbuild.'),
  name: checked(nameProblem).describe('Repository name: lowercase, optionally with a registry host[:port], e.g. ghcr.io/acme/app.'),
  tag: checked(tagProblem).optional().describe('Tag. Absent: derived from the image content.'),
  // Checked in resolve.ts: store paths, or also installables when the store is Nix.
  contents: z.array(nonEmpty).optional().describe('Store paths whose closure goes into the store layers (with store.kind "nix", installables too).'),
  store: store.optional().describe('Where the store paths come from: kind (directory, nix, closure-file, binary-cache), dir and closureFile (relative to the spec), storeDir, verify; url and publicKeys (binary-cache).'),
  cache: cacheSpec.optional().describe('Layer records in a registry: ref, a repository[:tag] the records are fetched from before a build and pushed to after it.'),
  config: containerConfig.optional().describe('Container config (Docker/OCI names).'),
  created: isoDate(true).optional().describe('Image creation date: ISO 8601 with a time zone, a date, or "now". Default 1970-01-01T00:00:01Z or SOURCE_DATE_EPOCH.'),
  mtime: isoDate(true).optional().describe('mtime of every layer entry: ISO 8601 or "now". Default SOURCE_DATE_EPOCH, else a fixed created, else 1970-01-01T00:00:01Z.'),
  uid: ownerId.optional().describe('Owner uid of every entry (default 0; at most 2097151, what a tar header holds).'),
  gid: ownerId.optional().describe('Owner gid of every entry (default 0; at most 2097151, what a tar header holds).'),
  uname: ownerName('uname').optional().describe('Owner user name of every entry (default root).'),
  gname: ownerName('gname').optional().describe('Owner group name of every entry (default root).'),
  maxLayers: maxLayers.optional().describe('Most layers of the image, base + store + customisation: 2..125, default 100.'),
  architecture: goArchitecture.optional().describe("Go architecture name (amd64, arm64, ...). Default: the architecture of the closure's ELF files; with none, the spec must name it."),
  os: goOs.optional().describe('Go OS name. Default linux.'),
  variant: cpuVariant.optional().describe('CPU variant (v7, v8, ...).'),
  platforms: z.array(platformPart).min(1).optional().describe('A multi-platform image: one part per platform (architecture, variant, os, and its own contents, copyToRoot, store, fromImage); the rest is shared.'),
  includeStorePaths: z.boolean().optional().describe('Put the store paths in layers (default true).'),
  includeNixDB: z.boolean().optional().describe('Register the closure in a Nix database in the image (default false).'),
  compressor: compressor.optional().describe('Layer compression: gzip (default), zstd (level 3, media type tar+zstd) or none.'),
  layering: layering.optional().describe('How store paths are grouped into layers.'),
  fromImage: nonEmpty.optional().describe('Base image reference.'),
  copyToRoot: z.array(storePath).optional().describe('Store paths whose trees are linked into / (like buildEnv).'),
  pathsToLink: z.array(checked((p) => (p === '/' ? undefined : imagePathProblem(p)))).min(1).optional().describe("Subtrees of the copyToRoot paths to link (default ['/'])."),
  files: z.array(fileSpec).optional().describe('Files to create: { path, content | source, mode?, uid?, gid? }.'),
  directories: z.array(directorySpec).optional().describe('Directories to create: { path, mode?, uid?, gid? }.'),
  symlinks: z.array(symlinkSpec).optional().describe('Symlinks to create: { path, target }.'),
  users: z.array(userSpec).optional().describe('Users for /etc/passwd and /etc/shadow (root and nobody are added).'),
  groups: z.array(groupSpec).optional().describe('Groups for /etc/group (root and nobody are added).'),
  perms: z.array(permSpec).optional().describe("Owner/mode of store entries (store layers and copyToRoot): { path, regex, mode?, uid?, gid?, uname?, gname? }, as nix2container's perms; later rules win; a rule matching nothing is an error."),
  exclude: z.array(storePath).optional().describe("Store paths dropped from the closure (nix2container's ignore, dockerTools' excludePaths); their references stay."),
  nixUid: ownerId.optional().describe('Owner uid of /nix, /nix/store and the store entries (default: uid, 0).'),
  nixGid: ownerId.optional().describe('Owner gid of /nix, /nix/store and the store entries (default: gid, 0).'),
  annotations: z.record(nonEmpty, z.string()).optional().describe('OCI annotations on the manifest (and the index of a multi-platform image); with them the standard keys imgbuild knows are filled too (org.opencontainers.image.created, .base.name, .base.digest). Absent: the manifest has none.'),
});

/**
 * dockerTools arguments imgbuild does not take, with what to do instead. An unknown key that is
 * one of these gets this message rather than a "did you mean" guess.
 */
export const UNSUPPORTED_DOCKERTOOLS_KEYS: Record<string, string> = {
  extraCommands: 'imgbuild runs no build scripts; describe the files with `files`, `directories` and `symlinks`',
  fakeRootCommands: 'imgbuild runs no build scripts; set owners and modes per entry in `files` and `directories`',
  runAsRoot: 'imgbuild runs no build scripts; describe the files with `files`, `directories` and `symlinks`',
  enableFakechroot: 'imgbuild runs no build scripts',
  fromImageName: 'give the whole reference in `fromImage`, e.g. "docker.io/library/alpine:3.20"',
  fromImageTag: 'give the whole reference in `fromImage`, e.g. "docker.io/library/alpine:3.20"',
  layeringPipeline: 'choose the layering with `layering: { strategy, layers, pinned }`',
  passthru: 'a Nix-only argument; it has no meaning here',
  meta: 'a Nix-only argument; it has no meaning here',
  diskSize: 'imgbuild uses no build VM',
  buildVMMemorySize: 'imgbuild uses no build VM',
  keepContentsDirlinks: 'copyToRoot always makes real directories and links files',
  streamNixDbConfig: 'a Nix-only argument; it has no meaning here',
};

/** Identity: lets a `.ts` spec be type-checked and completed by an editor. */
export function defineImage(spec: ImageSpec): ImageSpec;
export function defineImage(spec: ImageSpecFactory): ImageSpecFactory;
export function defineImage(spec: ImageSpec | ImageSpecFactory): ImageSpec | ImageSpecFactory {
  return spec;
}
