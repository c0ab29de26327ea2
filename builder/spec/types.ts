import type { ContainerConfig } from '../../oci/schemas.js';
/** How layers are compressed (layer/ writes them). */
export type Compressor = 'gzip' | 'none' | 'zstd';
import type { LayeringStrategy } from '../../layering/types.js';

/**
 * An image spec as a user writes it (`.ts`, `.js`, `.json` or `.yaml`). Names follow nixpkgs'
 * `dockerTools.streamLayeredImage` / `buildLayeredImage` arguments, in camelCase. Only `name` is
 * required; `loadSpec` turns this into a {@link ResolvedSpec} with every default applied.
 */
export interface ImageSpec {
  /** Optional JSON-Schema pointer for editors; ignored. */
  $schema?: string;
  /** Repository name: lowercase, optionally with a registry host[:port], e.g. `ghcr.io/acme/app`. */
  name: string;
  /** Tag, `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. Absent: derived from the image's content. */
  tag?: string;
  /** Store paths whose closure goes into the store layers; with the `nix` store also installables (`nixpkgs#hello`, `.#app`). */
  contents?: string[];
  /** Where the store paths come from. Paths are relative to the spec file; the CLI can override each field. */
  store?: StoreSpec;
  /** Layer records kept in a registry (`ref`), so a runner with an empty disk knows its layers. */
  cache?: CacheSpec;
  /** The container config (Docker/OCI names). */
  config?: ContainerConfigSpec;
  /** Image creation date: ISO 8601 (with a time zone), `"now"`, or a Date. Default 1970-01-01T00:00:01Z. */
  created?: string | Date;
  /** mtime of every file in every layer: ISO 8601, `"now"`, or a Date. Default: see `resolve.ts`. */
  mtime?: string | Date;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Every layer of the image counts (base + store + customisation). 2..125, default 100. */
  maxLayers?: number;
  /** Go architecture name (amd64, arm64, ...). Default: the architecture of the closure's ELF files; with none, the spec must name it. */
  architecture?: string;
  /** Go OS name. Default linux. */
  os?: string;
  /** CPU variant (v7, v8, ...). */
  variant?: string;
  /** false: store paths are not put in layers (only the customisation layer is written). */
  includeStorePaths?: boolean;
  /**
   * A multi-platform image: one part per platform, each naming its `architecture` (and `variant`,
   * `os`) and optionally its own `contents`, `copyToRoot`, `store` and `fromImage`; every other
   * field is shared. The build makes each platform's image and an OCI image index over them.
   */
  platforms?: PlatformSpec[];
  /** Put a Nix database registering the closure into the image (dockerTools' includeNixDB). */
  includeNixDB?: boolean;
  compressor?: Compressor;
  layering?: LayeringSpec;
  /** Base image reference (`registry/repo:tag` or `...@sha256:...`). */
  fromImage?: string;
  /** Store paths whose trees are linked into `/` the way nixpkgs' buildEnv does. */
  copyToRoot?: string[];
  /** Which subtrees of the copyToRoot paths are linked (buildEnv's pathsToLink). Default `['/']`. */
  pathsToLink?: string[];
  files?: FileSpec[];
  directories?: DirectorySpec[];
  symlinks?: SymlinkSpec[];
  /** Users written to /etc/passwd (and /etc/shadow, locked). */
  users?: UserSpec[];
  /** Groups written to /etc/group. */
  groups?: GroupSpec[];
  /**
   * Owner and mode of entries that come from store paths, in the store layers and in the
   * customisation layer (copyToRoot), as nix2container's `perms`. Later rules win.
   */
  perms?: PermSpec[];
  /** Store paths dropped from the closure (nix2container's `ignore`, dockerTools' `excludePaths`); what they reference stays. */
  exclude?: string[];
  /** Owner uid of /nix, /nix/store and the store entries (and the Nix database). Default: `uid` (0). */
  nixUid?: number;
  /** Owner gid of /nix, /nix/store and the store entries (and the Nix database). Default: `gid` (0). */
  nixGid?: number;
  /**
   * OCI annotations on the image manifest (and on the index of a multi-platform image). With
   * annotations (even `{}`), the standard keys imgbuild knows are filled too, unless given here:
   * `org.opencontainers.image.created`, `.base.name`, `.base.digest`. Absent: no annotations,
   * and the manifest is what it was without them (docs/sbom.md).
   */
  annotations?: Record<string, string>;
}

/** One `perms` rule: entries of store path `path` whose source path (`<path>/...`) the regex finds get these fields. */
export interface PermSpec {
  /** A store path of the closure (or of copyToRoot). */
  path: string;
  /** A regular expression searched (unanchored) in each entry's store path, e.g. `"/bin/sudo$"` or `".*"`. */
  regex: string;
  mode?: ModeSpec;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
}

/** A `perms` rule resolved: `mode` a number, `field` where it is in the spec (errors name it). */
export interface ResolvedPerm {
  path: string;
  regex: string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  field: string;
}

/** Store source kinds: a directory laid out like a store, a real Nix installation, or a closure file plus a directory. */
export type StoreKind = 'directory' | 'nix' | 'closure-file' | 'binary-cache';

export interface StoreSpec {
  /** Default: `closure-file` when `closureFile` is set, else `directory`. */
  kind?: StoreKind;
  /** On-disk store directory (directory: required; closure-file: where the files are, default the store dir). */
  dir?: string;
  /** Logical store dir written into the image (default `/nix/store`). */
  storeDir?: string;
  /** `nix path-info --json`, `exportReferencesGraph` or `closureInfo` output from another CI step. */
  closureFile?: string;
  /** Check NAR hashes the source gives (nix, closure-file). */
  verify?: boolean;
  /** binary-cache: the cache's URL (`https://…`, `http://…`, `file:///…`), as Nix's `substituters` names it. */
  url?: string;
  /** binary-cache: trusted keys in Nix's `name:base64` format; given, every path must be signed by one. */
  publicKeys?: string[];
}

/** Where layer records are kept besides the local cache (`cache.ref`, `--cache-ref`). */
export interface CacheSpec {
  /** A registry repository (and tag) holding the layer records: `ghcr.io/acme/app-cache[:tag]`. */
  ref?: string;
}

export interface LayeringSpec {
  /** Default `auto` (nixpkgs' default since 25.11). */
  strategy?: LayeringStrategy;
  /** Groups of store paths that form their own layers, bottom first (nix2container's `layers`). */
  layers?: string[][];
  /** Store paths that each get a layer of their own. */
  pinned?: string[];
}

export interface HealthcheckSpec {
  Test?: string[];
  /** Nanoseconds, or a Go duration string like `"30s"` or `"1m30s"`. */
  Interval?: number | string;
  Timeout?: number | string;
  StartPeriod?: number | string;
  StartInterval?: number | string;
  Retries?: number;
}

export interface ContainerConfigSpec {
  Cmd?: string[];
  Entrypoint?: string[];
  /** `["KEY=value"]`, or an object `{ KEY: "value" }`. */
  Env?: string[] | Record<string, string>;
  WorkingDir?: string;
  User?: string;
  /** `["8080/tcp", "53/udp", 9090]` or `{ "8080/tcp": {} }`; a bare port means tcp. */
  ExposedPorts?: (string | number)[] | Record<string, Record<string, never>>;
  /** `["/data"]` or `{ "/data": {} }`. */
  Volumes?: string[] | Record<string, Record<string, never>>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: HealthcheckSpec;
}

/** A mode as an octal string (`"0644"`, `"1777"`) or a number (`0o644`). */
export type ModeSpec = string | number;

export interface FileSpec {
  /** Absolute path in the image. */
  path: string;
  /** The file's text (UTF-8). Exactly one of `content` and `source`. */
  content?: string;
  /** A file on this machine, relative to the spec file. */
  source?: string;
  /** Default 0644, or 0755 for a `source` that is executable by its owner. */
  mode?: ModeSpec;
  uid?: number;
  gid?: number;
}

export interface DirectorySpec {
  path: string;
  /** Default 0755. */
  mode?: ModeSpec;
  uid?: number;
  gid?: number;
}

export interface SymlinkSpec {
  path: string;
  target: string;
}

export interface UserSpec {
  name: string;
  uid: number;
  /** Default: the uid. A group with this gid is created (named after the user) if none exists. */
  gid?: number;
  /** Default `/var/empty`. */
  home?: string;
  /** Default `/bin/sh`. */
  shell?: string;
  /** The GECOS field. Default empty. */
  description?: string;
}

export interface GroupSpec {
  name: string;
  gid: number;
  /** User names listed as supplementary members. */
  members?: string[];
}

/** A (sync or async) function a `.ts`/`.js` spec may default-export instead of an object. */
export type ImageSpecFactory = (context: SpecContext) => ImageSpec | Promise<ImageSpec>;

export interface SpecContext {
  /** The environment the spec is loaded with. */
  env: NodeJS.ProcessEnv;
  /** Absolute path of the spec file. */
  file: string;
}

export interface ResolvedFile {
  path: string;
  content: { kind: 'text'; text: string } | { kind: 'host'; fsPath: string };
  /** Undefined: 0644, or 0755 for an owner-executable host file (decided when the file is read). */
  mode: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
  /** Where it came from in the spec, e.g. `files[2]`. */
  field: string;
}

export interface ResolvedDirectory {
  path: string;
  mode: number;
  uid: number | undefined;
  gid: number | undefined;
  field: string;
}

export interface ResolvedSymlink {
  path: string;
  target: string;
  field: string;
}

export interface ResolvedUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  description: string;
}

export interface ResolvedGroup {
  name: string;
  gid: number;
  members: string[];
}

/** One platform of a multi-platform spec: what it names replaces the shared spec's field. */
export interface PlatformSpec {
  architecture: string;
  variant?: string;
  os?: string;
  contents?: string[];
  copyToRoot?: string[];
  store?: StoreSpec;
  fromImage?: string;
  /** This platform's perms (store paths differ between platforms). */
  perms?: PermSpec[];
  /** This platform's exclude. */
  exclude?: string[];
}

/** The fields a platform part may name (and so override). */
export const PLATFORM_FIELDS = ['architecture', 'variant', 'os', 'contents', 'copyToRoot', 'store', 'fromImage', 'perms', 'exclude'] as const;

/** A spec with every default applied and every relative path made absolute. Plain data. */
export interface ResolvedSpec {
  /** Absolute path of the spec file (errors name it). */
  file: string;
  name: string;
  /** Undefined: the builder derives one from the image's content. */
  tag: string | undefined;
  contents: string[];
  store: {
    kind: StoreKind;
    /** Absolute directory holding the store paths on this machine; undefined when the spec names none. */
    dir: string | undefined;
    /** Logical store dir written into the image, without trailing slash. */
    storeDir: string;
    /** Whether storeDir was given (spec or CLI) rather than defaulted: a Nix store reports its own otherwise. */
    storeDirGiven: boolean;
    /** Absolute path of the closure file (closure-file). */
    closureFile: string | undefined;
    verify: boolean;
    /** binary-cache: the cache URL. */
    url?: string;
    /** binary-cache: trusted public keys (`name:base64`). */
    publicKeys?: string[];
  };
  /** `cache.ref`: where layer records are fetched from and pushed to (the CLI's --cache-ref overrides it). */
  cacheRef?: string;
  config: ContainerConfig;
  /** RFC 3339 UTC date for the image config and history (`1970-01-01T00:00:01Z`). */
  created: string;
  /** Seconds since the epoch, written as every tar entry's mtime. */
  mtime: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  maxLayers: number;
  /**
   * The image's architecture: the spec's, else (until the build reads the closure's ELF files and
   * replaces it, build/architecture.ts) this machine's.
   */
  architecture: string;
  /** Whether the spec named `architecture`; if not, the build takes it from the content. */
  architectureGiven: boolean;
  os: string;
  variant: string | undefined;
  includeStorePaths: boolean;
  includeNixDB: boolean;
  compressor: Compressor;
  layering: { strategy: LayeringStrategy; layers: string[][]; pinned: string[] };
  fromImage: string | undefined;
  copyToRoot: string[];
  pathsToLink: string[];
  files: ResolvedFile[];
  directories: ResolvedDirectory[];
  symlinks: ResolvedSymlink[];
  /** Empty unless the spec has users or groups; then root and nobody are included (see etc-files.ts). */
  users: ResolvedUser[];
  groups: ResolvedGroup[];
  /** Empty unless the spec has perms. */
  perms: ResolvedPerm[];
  /** Empty unless the spec has exclude. */
  exclude: string[];
  /** Undefined: the store entries have the spec's uid/gid (as before these fields). */
  nixUid: number | undefined;
  nixGid: number | undefined;
  /** The spec's `annotations` (plus `--annotation`s and CI metadata the CLI adds); undefined: the manifest gets none. */
  annotations?: Record<string, string>;
  /**
   * A multi-platform spec: each platform's spec, resolved with its part's fields over the shared
   * ones (and no `platforms` of its own). Absent for a single-platform spec.
   */
  platforms?: ResolvedSpec[];
  /**
   * Of one platform of a multi-platform spec: its place in `platforms` and the fields its part
   * names itself (the rest are the shared spec's), so that an error can name the field to change.
   */
  part?: { index: number; fields: readonly (typeof PLATFORM_FIELDS)[number][] };
}
