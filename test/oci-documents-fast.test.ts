// oci/documents-fast.ts: the hand-written parsers of the manifest, index and image config give
// exactly what zod's schemas (oci/schemas.ts) give for every document they vouch for, and vouch
// for none that zod refuses; the lazily made schemas work as the zod schemas they stand for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as z from 'zod';
import * as fast from '../oci/documents-fast.js';
import {
  ContainerConfigSchema, DescriptorSchema, HealthcheckSchema, HistorySchema, ImageConfigSchema, IndexSchema, ManifestSchema, PlatformSchema,
} from '../oci/schemas.js';
import { ImageReadError, parseDocument } from '../builder/model/complete.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const manifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('a'), size: 1086 },
  layers: [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('b'), size: 374, annotations: { 'org.example.paths': '/nix/store/x', '1': 'one' } },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', size: 0, digest: 'sha512:' + 'c'.repeat(128), urls: ['https://example.com/l'], extra: { kept: [1, { as: 'is' }] } },
  ],
  annotations: { 'org.opencontainers.image.created': '1970-01-01T00:00:00Z' },
  subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('e'), size: 10, artifactType: 'application/x' },
  zzz: null,
};
const index = {
  mediaType: 'application/vnd.oci.image.index.v1+json',
  schemaVersion: 2,
  manifests: [
    { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('1'), size: 55286, annotations: { 'org.opencontainers.image.ref.name': 'v1' }, platform: { os: 'linux', architecture: 'arm64', variant: 'v8', 'os.features': ['x'], 'os.version': '1', more: 1 } },
    { digest: d('2'), size: 1, mediaType: 'application/vnd.oci.image.index.v1+json' },
  ],
  artifactType: 'application/y',
};
const config = {
  architecture: 'amd64',
  os: 'linux',
  created: '1970-01-01T00:00:00Z',
  author: 'imgbuild',
  config: {
    Env: ['PATH=/bin'], Entrypoint: null, Cmd: ['/bin/hello'], WorkingDir: '/', User: '0:0', Labels: { a: 'b' }, ExposedPorts: { '80/tcp': {}, '443/tcp': { odd: 1 } },
    Volumes: { '/data': {} }, StopSignal: 'SIGTERM', ArgsEscaped: false, Healthcheck: { Test: ['CMD', 'true'], Interval: 1, Timeout: -2, StartPeriod: 0, StartInterval: 3, Retries: 4, x: 'y' }, Other: true,
  },
  rootfs: { diff_ids: [d('3'), d('4')], type: 'layers', more: [] },
  history: [{ created_by: 'imgbuild', empty_layer: true, comment: 'c', created: 't', author: 'a', note: 1 }, {}],
  'os.version': '10', 'os.features': [], variant: 'v2', unknown: { deep: [null] },
};

const pairs = [
  { name: 'manifest', parse: fast.manifest, schema: ManifestSchema, doc: manifest },
  { name: 'index', parse: fast.index, schema: IndexSchema, doc: index },
  { name: 'image config', parse: fast.imageConfig, schema: ImageConfigSchema, doc: config },
] as const;

/** Every value of `doc` with one change: each key removed, each value replaced by each of `odd`, an unknown key added. */
function* variants(doc: unknown): Generator<unknown> {
  const odd: unknown[] = [null, 0, -1, 1.5, 2 ** 53, 'x', 'sha256:NOT HEX', '', true, [], {}, ['x'], [1], { a: 1 }, { a: 'b' }, 2, 'layers'];
  if (Array.isArray(doc)) {
    for (let i = 0; i < doc.length; i++) {
      for (const v of variants(doc[i])) yield doc.map((x, j) => (j === i ? v : x));
      yield doc.filter((_, j) => j !== i);
    }
    yield [...doc, 'extra'];
    return;
  }
  if (doc && typeof doc === 'object') {
    const o = doc as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const { [k]: _dropped, ...rest } = o;
      yield rest;
      for (const v of odd) yield { ...o, [k]: v };
      for (const v of variants(o[k])) yield { ...o, [k]: v };
    }
    yield { ...o, added: 'x' };
    return;
  }
}

function zodResult(schema: { safeParse(v: unknown): { success: boolean; data?: unknown } }, value: unknown): unknown {
  const r = schema.safeParse(value);
  return r.success ? r.data : fast.NO;
}

test('each fast parser gives what zod gives for a valid document: the same values, keys in the same order', () => {
  for (const { name, parse, schema, doc } of pairs) {
    const value = JSON.parse(JSON.stringify(doc));
    const got = parse(value);
    assert.notEqual(got, fast.NO, `${name}: vouched for`);
    assert.deepEqual(got, zodResult(schema, value), name);
    assert.equal(JSON.stringify(got), JSON.stringify(zodResult(schema, value)), `${name}: key order`);
  }
});

test('each fast parser vouches for no variant zod refuses, and gives what zod gives for those it vouches for', () => {
  for (const { name, parse, schema, doc } of pairs) {
    let vouched = 0;
    let refused = 0;
    for (const variant of variants(doc)) {
      const value = JSON.parse(JSON.stringify(variant));
      const got = parse(value);
      const want = zodResult(schema, value);
      if (want === fast.NO) {
        refused++;
        assert.equal(got, fast.NO, `${name}: zod refuses ${JSON.stringify(variant)}`);
        continue;
      }
      assert.notEqual(got, fast.NO, `${name}: zod accepts ${JSON.stringify(variant)}`);
      vouched++;
      assert.equal(JSON.stringify(got), JSON.stringify(want), `${name}: ${JSON.stringify(variant)}`);
      assert.deepEqual(got, want);
    }
    assert.ok(vouched > 50 && refused > 50, `${name}: ${vouched} accepted and ${refused} refused variants`);
  }
});

test('a document with a __proto__ key, or a non-object, is left to zod', () => {
  const withProto = JSON.parse('{"__proto__": {"x": 1}, "schemaVersion": 2, "manifests": []}');
  assert.equal(fast.index(withProto), fast.NO);
  for (const v of [null, [], 'x', 2]) assert.equal(fast.manifest(v), fast.NO);
});

test('the fast shapes list the keys of the zod schemas, in their order, optional where they are', () => {
  type Shaped = { _zod: { def: { shape: Record<string, { _zod: { optin?: string } }> } } };
  const keysOf = (schema: unknown) => Object.entries((schema as Shaped)._zod.def.shape).map(([k, s]) => `${k}${s._zod.optin === 'optional' ? '?' : ''}`);
  const fastKeys = (p: { shape: readonly fast.Field[] }) => p.shape.map(([k, , optional]) => `${k}${optional ? '?' : ''}`);
  const rootfs = (ImageConfigSchema as unknown as Shaped)._zod.def.shape.rootfs;
  for (const [p, schema] of [
    [fast.platform, PlatformSchema], [fast.descriptor, DescriptorSchema], [fast.manifest, ManifestSchema], [fast.index, IndexSchema], [fast.healthcheck, HealthcheckSchema],
    [fast.containerConfig, ContainerConfigSchema], [fast.history, HistorySchema], [fast.imageConfig, ImageConfigSchema], [fast.rootfs, rootfs],
  ] as const) {
    assert.deepEqual(fastKeys(p), keysOf(schema));
  }
});

test('parseDocument reports an invalid document with zod\'s issues, as before', () => {
  const bad = Buffer.from(JSON.stringify({ ...manifest, layers: [{ ...manifest.layers[0], size: -1 }], config: { ...manifest.config, digest: 'nope' } }));
  assert.throws(() => parseDocument('oci:x', 'manifest', ManifestSchema, bad), (e: unknown) => {
    assert.ok(e instanceof ImageReadError);
    assert.equal(e.message, 'oci:x: manifest is not valid: config.digest: not a digest; layers.0.size: Invalid input');
    return true;
  });
});

test('the lazily made schemas work as zod schemas: parsed, composed by classic zod, cloned', () => {
  assert.equal(PlatformSchema.safeParse({ os: 'linux' }).success, false);
  const composed = z.object({ config: ImageConfigSchema, platform: z.optional(PlatformSchema) });
  assert.deepEqual(composed.parse({ config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } } }), { config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } } });
  const copy = z.core.clone(DescriptorSchema);
  assert.equal(copy.safeParse({ mediaType: 'm', digest: d('f'), size: 1 }).success, true);
  assert.ok(ManifestSchema instanceof z.core.$ZodType);
});
