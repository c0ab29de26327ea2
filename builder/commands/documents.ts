import * as z from 'zod';
import { ImageConfigSchema } from '../../oci/schemas.js';
import { SCHEMA_VERSION } from './schema-version.js';

/** What classic zod's `.describe()` does, for a zod/mini schema (oci/schemas.ts): a copy carrying the description. */
function described<T extends z.core.$ZodType>(schema: T, description: string): T {
  const copy = z.core.clone(schema);
  z.globalRegistry.add(copy, { description });
  return copy;
}

/**
 * The documents `--json` prints: one per command, each a single JSON value on stdout with
 * `schemaVersion` first. The same names mean the same thing everywhere: `digest` is the digest
 * of the manifest or index a document is about, `reference` the pushed image pinned by digest
 * (`<registry>/<repository>@<digest>`, what a push prints without --json), `tags` every tag a
 * push put, `platforms` the images of a multi-platform one. A command that fails with --json
 * prints the error document instead and exits non-zero.
 *
 * These zod schemas are the definition: the printers are typed by them, the JSON Schema files in
 * `schemas/` are generated from them (`scripts/write-schemas.mjs`; a test checks they are up to
 * date), and the test suite checks every --json output it produces against them.
 */

export { SCHEMA_VERSION };

const schemaVersion = z.literal(SCHEMA_VERSION).describe('version of this document\'s shape; bumped only by an incompatible change');
const digest = z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/);
const imageDigest = digest.describe('digest of the manifest (an image) or of the index (a multi-platform image)');
const platformName = z.string().describe('os/architecture[/variant], e.g. linux/arm64');
const size = z.number().int().nonnegative();

/** What a push did, in `build --push`, `push` and `index create`. */
const PushedSchema = z.strictObject({
  uploaded: size.describe('blobs sent'),
  mounted: size.describe('blobs mounted from another repository of the registry'),
  skipped: size.describe('blobs the registry held already'),
  bytesSent: size.describe('blob bytes sent (manifests not counted)'),
  alreadyThere: z.boolean().describe('the registry held every manifest already: no blob was checked, only the tags were put'),
}).meta({ id: 'Pushed' });

const pushFields = {
  reference: z.string().describe('the pushed image pinned by digest: <registry>/<repository>@<digest> (what the command prints without --json)'),
  tags: z.array(z.string()).describe('every tag pushed: the reference\'s (latest when it names none; none when it names only a digest), then each --tag'),
  pushed: PushedSchema,
};

const BuiltLayerSchema = z.strictObject({
  digest,
  diffId: digest,
  size,
  mediaType: z.string(),
  reason: z.string().describe('why the layer is there: popularity, auto, explicit, pinned, merged-tail, carried-over, new, customisation, or base (from the base image)'),
  storePaths: z.array(z.string()).describe('store paths in the layer'),
}).meta({ id: 'BuiltLayer' });

const SbomAttachedSchema = z.strictObject({
  platform: platformName.describe('the platform of the image it describes'),
  format: z.enum(['spdx', 'cyclonedx']),
  mediaType: z.string().describe('application/spdx+json or application/vnd.cyclonedx+json (also the artifactType of its referrer manifest)'),
  subject: digest.describe('the image manifest it describes and refers to'),
  digest: digest.describe('the referrer (artifact) manifest that attaches it'),
  size: size.describe('bytes of the SBOM document'),
}).meta({ id: 'SbomAttached' });

const outputFields = {
  sboms: z.array(SbomAttachedSchema).optional().describe('with --sbom: each SBOM made, attached to its image in the output and the push'),
  format: z.enum(['oci', 'oci-archive', 'docker-archive']).optional().describe('with an output written: its format'),
  output: z.string().optional().describe('with an output written: its path'),
};

/** What every build document says: the image (or index) built and under which name. */
const builtFields = {
  schemaVersion,
  name: z.string(),
  tag: z.string(),
  digest: imageDigest,
  mediaType: z.string(),
};

export const BuildDocumentSchema = z.union([
  z.strictObject({
    ...builtFields,
    platform: platformName,
    configDigest: digest,
    layers: z.array(BuiltLayerSchema).describe('bottom first'),
    ...outputFields,
    ...partial(pushFields),
  }),
  z.strictObject({
    ...builtFields,
    platforms: z.array(z.strictObject({ platform: platformName, digest, mediaType: z.string(), configDigest: digest, layers: z.array(BuiltLayerSchema) })).describe('the image of each platform built'),
    ...outputFields,
    ...partial(pushFields),
  }),
]).meta({ title: 'imgbuild build --json', description: 'A build: the image (or, for a multi-platform spec, the index and each platform\'s image), where it was written, and with --push what was pushed.' });
export type BuildDocument = z.output<typeof BuildDocumentSchema>;

const pushedPlatforms = z.array(z.strictObject({ platform: platformName, digest, mediaType: z.string() }));
const pushedReferrers = z.array(z.strictObject({
  digest: digest.describe('the artifact manifest'),
  subject: digest.describe('the image (or index) it refers to'),
  artifactType: z.string(),
  via: z.enum(['api', 'tag']).describe("api: the registry's referrers API lists it; tag: the referrers tag schema (an index under sha256-<hex>)"),
})).optional().describe('referrers carried along from the source (an OCI layout\'s SBOMs); absent when there were none');

export const PushDocumentSchema = z.strictObject({
  schemaVersion,
  source: z.string().describe('the image pushed, as read (oci:<dir>, docker://<ref>, ...)'),
  digest: imageDigest,
  mediaType: z.string(),
  ...pushFields,
  platforms: pushedPlatforms.optional().describe('of a multi-platform image: its images, each pushed by digest'),
  referrers: pushedReferrers,
}).meta({ title: 'imgbuild push --json', description: 'A push (or a copy between registries).' });
export type PushDocument = z.output<typeof PushDocumentSchema>;

export const IndexCreateDocumentSchema = z.strictObject({
  schemaVersion,
  digest: imageDigest,
  mediaType: z.string(),
  ...pushFields,
  platforms: pushedPlatforms.describe('the images of the index, in order'),
  referrers: pushedReferrers,
}).meta({ title: 'imgbuild index create --json', description: 'An index pushed over images already built.' });
export type IndexCreateDocument = z.output<typeof IndexCreateDocumentSchema>;

/** What every inspect document begins with (an artifact's and an index's; an image's describes its refs). */
const inspectHead = { schemaVersion, source: z.string(), digest: imageDigest, mediaType: z.string(), refs: z.array(z.string()) };

export const InspectDocumentSchema = z.union([
  z.strictObject({
    schemaVersion,
    source: z.string(),
    digest: imageDigest,
    mediaType: z.string(),
    refs: z.array(z.string()).describe('the name:tags the image carries where it is stored'),
    platform: platformName,
    configDigest: digest,
    config: described(ImageConfigSchema, 'the image config, as stored'),
    layers: z.array(z.strictObject({ digest, diffId: digest.optional(), size, mediaType: z.string(), reason: z.string().optional(), storePaths: z.array(z.string()) })),
  }),
  z.strictObject({
    ...inspectHead,
    artifactType: z.string().describe("an artifact (an SBOM, a signature), not an image: the manifest's artifactType, else its config's media type"),
    subject: z.strictObject({ digest, mediaType: z.string(), size }).optional().describe('the image (or artifact) it is about'),
    configDigest: digest,
    configMediaType: z.string().describe('application/vnd.oci.empty.v1+json when it has no config'),
    blobs: z.array(z.strictObject({ digest, size, mediaType: z.string(), annotations: z.record(z.string(), z.string()).optional() })).describe("the manifest's layers: the artifact's content"),
  }),
  z.strictObject({
    ...inspectHead,
    platforms: z.array(z.strictObject({ platform: platformName.optional().describe('absent when the index gives none'), digest, size, mediaType: z.string() })),
  }),
]).meta({ title: 'imgbuild inspect --json', description: 'An image (config, layers, store paths), an artifact (its type, subject and blobs), or an index (its platforms) unless --platform picks one of its images.' });
export type InspectDocument = z.output<typeof InspectDocumentSchema>;

const StorePathSchema = z.strictObject({
  path: z.string(),
  narSize: size,
  references: z.array(z.string()),
  narHash: z.string().optional(),
});

export const ClosureDocumentSchema = z.strictObject({
  schemaVersion,
  storeDir: z.string(),
  roots: z.array(z.string()).describe('the paths the spec asked for'),
  paths: z.array(StorePathSchema).describe('every path of the closure'),
}).meta({ title: 'imgbuild closure --json', description: 'The closure of a spec\'s contents.' });
export type ClosureDocument = z.output<typeof ClosureDocumentSchema>;

export const PlanDocumentSchema = z.strictObject({
  schemaVersion,
  imgbuildPlan: z.literal(1).describe('marks a plan document for build --plan (its own version)'),
  closure: z.strictObject({ digest, paths: size, narSize: size }).describe('the closure the plan was made for'),
  base: z.strictObject({ source: z.string(), digest: imageDigest, layers: z.array(z.strictObject({ digest, diffId: digest, size })) }).optional(),
  strategy: z.string(),
  layers: z.array(z.strictObject({ paths: z.array(z.string()), reason: z.string(), narSize: size })).describe('store layers, bottom first'),
  totalLayers: size.describe('base + store + customisation layers'),
}).meta({ title: 'imgbuild plan --json', description: 'The layer plan build follows; build --plan accepts it.' });
export type PlanDocument = z.output<typeof PlanDocumentSchema>;

// Diffs ------------------------------------------------------------------------------------

const FieldChangeSchema = z.strictObject({
  path: z.string(),
  a: z.unknown().optional().describe('the value in a; absent when a has none'),
  b: z.unknown().optional().describe('the value in b; absent when b has none'),
}).meta({ id: 'FieldChange' });

const LayerInfoSchema = z.strictObject({ index: size, digest, diffId: digest.optional(), size, mediaType: z.string() }).meta({ id: 'LayerInfo' });

const EntrySummarySchema = z.strictObject({
  path: z.string(),
  index: size,
  type: z.string(),
  mode: size,
  uid: z.number().int(),
  gid: z.number().int(),
  uname: z.string(),
  gname: z.string(),
  mtime: z.number(),
  size,
  sha256: z.string().optional(),
  linkname: z.string().optional(),
  pax: z.record(z.string(), z.string()).optional(),
  devmajor: z.number().int().optional(),
  devminor: z.number().int().optional(),
  header: z.strictObject({ format: z.string(), hash: z.string() }).optional(),
}).meta({ id: 'TarEntry' });

const FileDiffSchema = z.union([
  z.strictObject({ path: z.string(), change: z.literal('added'), b: EntrySummarySchema }),
  z.strictObject({ path: z.string(), change: z.literal('removed'), a: EntrySummarySchema }),
  z.strictObject({ path: z.string(), change: z.literal('changed'), fields: z.array(FieldChangeSchema) }),
]).meta({ id: 'FileDiff' });

const LayerDiffSchema = z.union([
  z.strictObject({ change: z.literal('added'), b: LayerInfoSchema }),
  z.strictObject({ change: z.literal('removed'), a: LayerInfoSchema }),
  z.strictObject({ change: z.literal('moved'), a: LayerInfoSchema, b: LayerInfoSchema, descriptor: z.array(FieldChangeSchema) }),
  z.strictObject({ change: z.literal('compression'), a: LayerInfoSchema, b: LayerInfoSchema, descriptor: z.array(FieldChangeSchema), gzipHeader: z.array(FieldChangeSchema) }),
  z.strictObject({
    change: z.literal('content'),
    a: LayerInfoSchema,
    b: LayerInfoSchema,
    descriptor: z.array(FieldChangeSchema),
    entries: z.strictObject({ a: size, b: size }),
    files: z.array(FileDiffSchema),
    fieldCounts: z.record(z.string(), size),
    order: z.strictObject({ position: size, a: z.string(), b: z.string(), displaced: size }).optional(),
    notes: z.array(z.string()),
  }),
]).meta({ id: 'LayerDiff' });

const imageDiffFields = {
  kind: z.literal('image'),
  a: z.strictObject({ source: z.string(), digest: imageDigest, configDigest: digest }),
  b: z.strictObject({ source: z.string(), digest: imageDigest, configDigest: digest }),
  identical: z.boolean().describe('the manifests are the same bytes'),
  manifest: z.array(FieldChangeSchema),
  config: z.array(FieldChangeSchema),
  layers: z.array(LayerDiffSchema),
  notes: z.array(z.string()),
};
const ImageDiffSchema = z.strictObject(imageDiffFields).meta({ id: 'ImageDiff' });

const indexDiffFields = {
  kind: z.literal('index'),
  a: z.strictObject({ source: z.string(), digest: imageDigest }),
  b: z.strictObject({ source: z.string(), digest: imageDigest }),
  identical: z.boolean(),
  platforms: z.array(z.strictObject({ platform: platformName, diff: ImageDiffSchema.optional(), onlyIn: z.enum(['a', 'b']).optional() })),
  notes: z.array(z.string()).optional().describe('when identical: how each side\'s blobs were checked (read and hashed, or a registry\'s digests)'),
};
const ArtifactDiffSchema = z.union([ImageDiffSchema, z.strictObject(indexDiffFields)]);

const SbomPackageSchema = z.strictObject({ path: z.string(), name: z.string(), version: z.string(), narHash: z.string().optional() });
const SbomDiffSchema = z.strictObject({
  from: z.strictObject({ a: z.enum(['attached', 'image', 'none']), b: z.enum(['attached', 'image', 'none']) }).describe("where each side's packages came from: its attached SPDX SBOM, its layers' store-path annotations, or none (no SBOM attached and no imgbuild layer annotations, as in a docker-archive: the packages were not compared)"),
  note: z.string().optional().describe('why the packages were not compared, when a side has none to compare'),
  added: z.array(SbomPackageSchema),
  removed: z.array(SbomPackageSchema),
  changed: z.array(z.strictObject({ name: z.string(), a: SbomPackageSchema, b: SbomPackageSchema })).describe('one package name at other store paths (a new version, or other inputs)'),
}).meta({ id: 'SbomDiff' });

export const DiffDocumentSchema = z.union([
  z.strictObject({ schemaVersion, ...imageDiffFields, sbom: SbomDiffSchema.optional().describe('two images that differ: their packages (store paths) compared') }),
  z.strictObject({ schemaVersion, ...indexDiffFields }),
]).meta({ title: 'imgbuild diff --json', description: 'How two images differ (exit 0: the same, 1: they differ).' });
export type DiffDocument = z.output<typeof DiffDocumentSchema>;

export const VerifyDocumentSchema = z.strictObject({
  schemaVersion,
  reproducible: z.boolean(),
  digest: imageDigest.describe('the digest the (first) build gave'),
  builds: z.array(z.strictObject({
    umask: z.string(),
    tz: z.string(),
    locale: z.string(),
    freshCache: z.boolean(),
    cwd: z.string(),
    output: z.string(),
    cacheDir: z.string().optional(),
    digest: imageDigest,
  })),
  against: z.strictObject({ source: z.string(), digest: imageDigest }).optional().describe('with --against: the image compared with'),
  referrers: z.strictObject({
    same: z.boolean().describe('every SBOM attached to the --against image is the one the build attaches'),
    checked: z.array(z.strictObject({
      subject: digest.describe('the image the SBOM is about'),
      artifactType: z.string(),
      digest: digest.describe('the referrer manifest attached to the --against image'),
      rebuilt: digest.optional().describe('the referrer manifest the build made for it (absent: none of that type)'),
    })),
    notes: z.array(z.string()),
  }).optional().describe('with --with-referrers: the SBOM referrers of --against compared with the rebuilt ones'),
  workDir: z.string().optional().describe('with --keep: where the builds are'),
  diff: ArtifactDiffSchema.optional().describe('when the digests differ'),
  previous: z.strictObject({
    from: z.enum(['previous', 'against']).describe('--previous, or the --against image (built with --previous) recorded what it carried over'),
    source: z.string(),
    layers: size.describe('store layers the builds were given to carry over'),
  }).optional().describe('when the builds carried layers over (stable layering)'),
  notes: z.array(z.string()).optional().describe('with --against: how the image was compared (a docker-archive: config and layers; how its blobs were checked)'),
}).meta({ title: 'imgbuild verify --json', description: 'Two builds in unlike conditions (or one and --against), compared (exit 0: reproducible, 1: not).' });
export type VerifyDocument = z.output<typeof VerifyDocumentSchema>;

const TallySchema = z.strictObject({ count: size, bytes: size }).meta({ id: 'Tally' });

export const CachePruneDocumentSchema = z.strictObject({
  schemaVersion,
  cacheDir: z.string(),
  maxSize: size.nullable().describe('--max-size in bytes; null when not given'),
  olderThanMs: size.nullable().describe('--older-than in milliseconds; null when not given'),
  removed: z.strictObject({
    blobs: z.strictObject({ olderThan: TallySchema, maxSize: TallySchema }),
    layerRecords: z.strictObject({ olderThan: TallySchema, unreadable: TallySchema }),
    scanRecords: z.strictObject({ olderThan: TallySchema }),
    tempFiles: z.strictObject({ stale: TallySchema }),
  }),
  kept: z.strictObject({ blobs: TallySchema, layerRecords: TallySchema, scanRecords: TallySchema }),
}).meta({ title: 'imgbuild cache prune --json', description: 'What prune removed, and kept, by kind and reason.' });
export type CachePruneDocument = z.output<typeof CachePruneDocumentSchema>;

export const CacheVerifyDocumentSchema = z.strictObject({
  schemaVersion,
  cacheDir: z.string(),
  repair: z.boolean().describe('whether --repair was given'),
  checked: z.strictObject({ blobs: size, blobBytes: size, layerRecords: size, scanRecords: size, closureRecords: size }),
  damaged: z.array(z.strictObject({ kind: z.enum(['blob', 'layer-record', 'scan-record', 'closure-record', 'directory']), path: z.string(), problem: z.string() })).describe("damaged files (a scan-record is a line of the pack at path; a directory is one of the cache's directories that is a file or something else); removed when repaired is true (a pack is written again without its damaged lines)"),
  repaired: z.boolean().describe('true when damaged files were removed (a build makes them again)'),
}).meta({ title: 'imgbuild cache verify --json', description: 'Every blob hashed, every layer record checked against its blob; what is damaged.' });
export type CacheVerifyDocument = z.output<typeof CacheVerifyDocumentSchema>;

export const LoginDocumentSchema = z.strictObject({
  schemaVersion,
  registry: z.string().describe('the registry, as references name it'),
  username: z.string(),
  storedIn: z.string().describe('the Docker config file, or the credential helper, holding the credentials'),
}).meta({ title: 'imgbuild login --json', description: 'Credentials checked and stored (never the secret).' });
export type LoginDocument = z.output<typeof LoginDocumentSchema>;

export const ErrorDocumentSchema = z.strictObject({
  schemaVersion,
  error: z.strictObject({
    code: z.string().describe('stable: usage, spec, store, network, protocol, not-registry, tls, auth, registry-http, file, interrupted, internal, ...'),
    message: z.string(),
    hint: z.string().nullable().describe('what to do about it, when imgbuild knows'),
  }),
}).meta({ title: 'imgbuild error (--json)', description: 'What any command prints on stdout with --json when it fails (exit 1, 2 or 130).' });
export type ErrorDocument = z.output<typeof ErrorDocumentSchema>;

export const LsDocumentSchema = z.strictObject({
  schemaVersion,
  repository: z.string().describe('registry/repository'),
  tags: z.array(z.string()).describe('every tag, every page'),
}).meta({ title: 'imgbuild ls --json', description: "A repository's tags." });

export const TagDocumentSchema = z.strictObject({
  schemaVersion,
  source: z.string(),
  repository: z.string(),
  digest,
  mediaType: z.string(),
  tags: z.array(z.string()).describe('the tags put'),
  references: z.array(z.string()).describe('registry/repository:tag@digest, one per tag'),
}).meta({ title: 'imgbuild tag --json', description: 'The same manifest PUT under more tags.' });

const imageFacts = {
  schemaVersion,
  source: z.string(),
  digest,
  mediaType: z.string(),
  size: z.number().int().nonnegative(),
  platform: z.string().optional().describe('os/architecture[/variant] of an image (absent for an index)'),
};

export const DigestDocumentSchema = z.strictObject(imageFacts).meta({ title: 'imgbuild digest --json', description: "An image's (or index's) manifest descriptor." });
export const ManifestDocumentSchema = z.strictObject({ ...imageFacts, manifest: z.unknown().describe('the manifest or index, parsed') }).meta({ title: 'imgbuild manifest --json', description: 'A manifest or index as stored, parsed.' });
export const ConfigDocumentSchema = z.strictObject({
  ...imageFacts,
  digest: digest.describe("the image manifest's digest"),
  mediaType: z.string().describe("the config's media type"),
  size: z.number().int().nonnegative().describe("the config's size in bytes"),
  configDigest: digest.describe("the config's digest (the manifest's config.digest)"),
  config: z.unknown().describe('the config, parsed'),
}).meta({ title: 'imgbuild config --json', description: "An image's config as stored, parsed." });

export const StoreAddDocumentSchema = z.strictObject({
  schemaVersion,
  path: z.string().describe('the store path, as nix-store --add gives it'),
  store: z.string().describe('the directory store'),
  storeDir: z.string(),
  fsPath: z.string().describe('where its files are'),
  narHash: z.string(),
  narSize: z.number().int().nonnegative(),
  added: z.boolean().describe('false when the store held it already'),
}).meta({ title: 'imgbuild store add --json', description: 'A path added to a directory store.' });

export const ReferrersDocumentSchema = z.strictObject({
  schemaVersion,
  source: z.string().describe('the image (or index) whose referrers these are'),
  subject: digest.describe('its manifest digest'),
  via: z.enum(['api', 'tag', 'layout', 'none']).describe("api: the registry's referrers API; tag: the referrers tag schema (an index under sha256-<hex>); layout: an OCI layout's; none: a format that holds none (docker-archive)"),
  referrers: z.array(z.strictObject({
    digest,
    mediaType: z.string(),
    size,
    artifactType: z.string().optional().describe('what the artifact is, e.g. application/spdx+json'),
    annotations: z.record(z.string(), z.string()).optional(),
  })),
}).meta({ title: 'imgbuild referrers --json', description: 'The artifacts (SBOMs, signatures) whose subject is an image.' });
export type ReferrersDocument = z.output<typeof ReferrersDocumentSchema>;

/** Every document, by the name of its schema file (`schemas/<name>.schema.json`). */
export const documentSchemas = {
  build: BuildDocumentSchema,
  push: PushDocumentSchema,
  'index-create': IndexCreateDocumentSchema,
  inspect: InspectDocumentSchema,
  closure: ClosureDocumentSchema,
  plan: PlanDocumentSchema,
  diff: DiffDocumentSchema,
  verify: VerifyDocumentSchema,
  'cache-prune': CachePruneDocumentSchema,
  'cache-verify': CacheVerifyDocumentSchema,
  login: LoginDocumentSchema,
  ls: LsDocumentSchema,
  tag: TagDocumentSchema,
  digest: DigestDocumentSchema,
  manifest: ManifestDocumentSchema,
  config: ConfigDocumentSchema,
  'store-add': StoreAddDocumentSchema,
  referrers: ReferrersDocumentSchema,
  error: ErrorDocumentSchema,
} as const;
export type DocumentName = keyof typeof documentSchemas;

/** The document a command line prints with --json (its words before the first option), or undefined. */
export function documentOf(args: readonly string[]): Exclude<DocumentName, 'error'> | undefined {
  const words = args.filter((a) => !a.startsWith('-')).slice(0, 2);
  const name = words[0] === 'index' || words[0] === 'cache' || words[0] === 'store' ? `${words[0]}-${words[1]}` : words[0];
  return name && name !== 'error' && name in documentSchemas ? (name as Exclude<DocumentName, 'error'>) : undefined;
}

/** The JSON Schema (draft 2020-12) of a document; what `schemas/<name>.schema.json` holds. */
export function documentJsonSchema(name: DocumentName): Record<string, unknown> {
  // `unrepresentable` is left at "throw": a check the JSON Schema could not express would make the
  // two definitions part, so there is none.
  return z.toJSONSchema(documentSchemas[name], { target: 'draft-2020-12', io: 'output' }) as Record<string, unknown>;
}

/** The text of `schemas/<name>.schema.json` (scripts/write-schemas.mjs writes it; a test checks the files are this). */
export function documentSchemaFile(name: DocumentName): string {
  return `${JSON.stringify(documentJsonSchema(name), null, 2)}\n`;
}

function partial<T extends Record<string, z.ZodType>>(fields: T): { [K in keyof T]: z.ZodOptional<T[K]> } {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.optional()])) as { [K in keyof T]: z.ZodOptional<T[K]> };
}
