import * as z from 'zod/mini';

// Schemas of the OCI image spec documents, written from the spec text (image-spec v1.1).
// `.passthrough()`-style looseness is deliberate on read: registries and other tools add fields.
//
// zod/mini, not zod: the same parser, checks and messages (both are zod's core), but the
// push's own bundle (scripts/bundle-cli.mjs) holds ~50 KB of zod instead of ~200 KB. They are zod
// schemas all the same: classic zod composes them (commands/documents.ts).

const digestString = z.string().check(z.regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/, 'not a digest'));
const annotations = z.record(z.string(), z.string());

export const PlatformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.optional(z.string()),
  'os.features': z.optional(z.array(z.string())),
  variant: z.optional(z.string()),
});
export type Platform = z.infer<typeof PlatformSchema>;

export const DescriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest: digestString,
  size: z.number().check(z.int(), z.nonnegative()),
  urls: z.optional(z.array(z.string())),
  annotations: z.optional(annotations),
  platform: z.optional(PlatformSchema),
  artifactType: z.optional(z.string()),
});
export type Descriptor = z.infer<typeof DescriptorSchema>;

export const ManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  subject: z.optional(DescriptorSchema),
  annotations: z.optional(annotations),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export const IndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  manifests: z.array(DescriptorSchema),
  subject: z.optional(DescriptorSchema),
  annotations: z.optional(annotations),
});
export type Index = z.infer<typeof IndexSchema>;

export const HealthcheckSchema = z.looseObject({
  Test: z.optional(z.array(z.string())),
  Interval: z.optional(z.number().check(z.int())),
  Timeout: z.optional(z.number().check(z.int())),
  StartPeriod: z.optional(z.number().check(z.int())),
  StartInterval: z.optional(z.number().check(z.int())),
  Retries: z.optional(z.number().check(z.int())),
});

/** The `config` object inside an image config (the runtime defaults of a container). */
export const ContainerConfigSchema = z.looseObject({
  User: z.optional(z.string()),
  ExposedPorts: z.optional(z.record(z.string(), z.object({}))),
  Env: z.optional(z.array(z.string())),
  Entrypoint: z.optional(z.nullable(z.array(z.string()))),
  Cmd: z.optional(z.nullable(z.array(z.string()))),
  Volumes: z.optional(z.record(z.string(), z.object({}))),
  WorkingDir: z.optional(z.string()),
  Labels: z.optional(z.record(z.string(), z.string())),
  StopSignal: z.optional(z.string()),
  Healthcheck: z.optional(HealthcheckSchema),
  ArgsEscaped: z.optional(z.boolean()),
});
export type ContainerConfig = z.infer<typeof ContainerConfigSchema>;

export const HistorySchema = z.looseObject({
  created: z.optional(z.string()),
  author: z.optional(z.string()),
  created_by: z.optional(z.string()),
  comment: z.optional(z.string()),
  empty_layer: z.optional(z.boolean()),
});
export type History = z.infer<typeof HistorySchema>;

export const ImageConfigSchema = z.looseObject({
  created: z.optional(z.string()),
  author: z.optional(z.string()),
  architecture: z.string(),
  os: z.string(),
  'os.version': z.optional(z.string()),
  'os.features': z.optional(z.array(z.string())),
  variant: z.optional(z.string()),
  config: z.optional(ContainerConfigSchema),
  rootfs: z.looseObject({
    type: z.literal('layers'),
    diff_ids: z.array(digestString),
  }),
  history: z.optional(z.array(HistorySchema)),
});
export type ImageConfig = z.infer<typeof ImageConfigSchema>;
