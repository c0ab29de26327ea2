import * as z from 'zod/mini';
import { DIGEST_GRAMMAR } from './documents-fast.js';

// Schemas of the OCI image spec documents, written from the spec text (image-spec v1.1).
// `.passthrough()`-style looseness is deliberate on read: registries and other tools add fields.
//
// zod/mini, not zod: the same parser, checks and messages (both are zod's core), but the
// push's own bundle (scripts/bundle-cli.mjs) holds ~50 KB of zod instead of ~200 KB. They are zod
// schemas all the same: classic zod composes them (commands/documents.ts).
//
// Each is made at its first use (`lazySchema`): making these ~50 zod schemas cost a push ~3 ms of
// CPU as its command loaded, while a push of a valid layout parses its documents without them
// (documents-fast.ts; zod is asked only for a document the fast parsers do not vouch for, so every
// error is still zod's). oci/documents-fast.ts holds the same shapes: change both together (a
// test compares them).

/**
 * A schema made by `make` at its first use: a proxy that forwards everything to it. Used as the
 * schema it stands for, everywhere (composed, cloned, parsed); its identity is the proxy's.
 */
function lazySchema<T extends object>(make: () => T): T {
  let made: T | undefined;
  const real = (): T => (made ??= make());
  return new Proxy({} as T, {
    get: (_, k) => Reflect.get(real(), k),
    set: (_, k, v) => Reflect.set(real(), k, v),
    has: (_, k) => Reflect.has(real(), k),
    ownKeys: () => Reflect.ownKeys(real()),
    // Reported configurable: a proxy may not report a non-configurable property its (empty) target lacks.
    getOwnPropertyDescriptor: (_, k) => {
      const d = Reflect.getOwnPropertyDescriptor(real(), k);
      if (d) d.configurable = true;
      return d;
    },
    defineProperty: (_, k, d) => Reflect.defineProperty(real(), k, d),
    deleteProperty: (_, k) => Reflect.deleteProperty(real(), k),
    getPrototypeOf: () => Reflect.getPrototypeOf(real()),
  });
}

/** A value made once, at its first use (the helpers the lazy schemas share). */
function once<T>(make: () => T): () => T {
  let made: T | undefined;
  return () => (made ??= make());
}

const digestString = once(() => z.string().check(z.regex(DIGEST_GRAMMAR, 'not a digest')));
const annotations = once(() => z.record(z.string(), z.string()));

export const PlatformSchema = lazySchema(() => z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.optional(z.string()),
  'os.features': z.optional(z.array(z.string())),
  variant: z.optional(z.string()),
}));
export type Platform = z.infer<typeof PlatformSchema>;

export const DescriptorSchema = lazySchema(() => z.looseObject({
  mediaType: z.string(),
  digest: digestString(),
  size: z.number().check(z.int(), z.nonnegative()),
  urls: z.optional(z.array(z.string())),
  annotations: z.optional(annotations()),
  platform: z.optional(PlatformSchema),
  artifactType: z.optional(z.string()),
}));
export type Descriptor = z.infer<typeof DescriptorSchema>;

export const ManifestSchema = lazySchema(() => z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  subject: z.optional(DescriptorSchema),
  annotations: z.optional(annotations()),
}));
export type Manifest = z.infer<typeof ManifestSchema>;

export const IndexSchema = lazySchema(() => z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  manifests: z.array(DescriptorSchema),
  subject: z.optional(DescriptorSchema),
  annotations: z.optional(annotations()),
}));
export type Index = z.infer<typeof IndexSchema>;

export const HealthcheckSchema = lazySchema(() => z.looseObject({
  Test: z.optional(z.array(z.string())),
  Interval: z.optional(z.number().check(z.int())),
  Timeout: z.optional(z.number().check(z.int())),
  StartPeriod: z.optional(z.number().check(z.int())),
  StartInterval: z.optional(z.number().check(z.int())),
  Retries: z.optional(z.number().check(z.int())),
}));

/** The `config` object inside an image config (the runtime defaults of a container). */
export const ContainerConfigSchema = lazySchema(() => z.looseObject({
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
}));
export type ContainerConfig = z.infer<typeof ContainerConfigSchema>;

export const HistorySchema = lazySchema(() => z.looseObject({
  created: z.optional(z.string()),
  author: z.optional(z.string()),
  created_by: z.optional(z.string()),
  comment: z.optional(z.string()),
  empty_layer: z.optional(z.boolean()),
}));
export type History = z.infer<typeof HistorySchema>;

export const ImageConfigSchema = lazySchema(() => z.looseObject({
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
    diff_ids: z.array(digestString()),
  }),
  history: z.optional(z.array(HistorySchema)),
}));
export type ImageConfig = z.infer<typeof ImageConfigSchema>;
