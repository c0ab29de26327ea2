// Parsers of the OCI documents a push reads (manifest, index, image config) without zod: the
// shapes of oci/schemas.ts written out by hand, for documents that are valid. Each gives exactly
// what zod's parse of its schema gives (a new object per object, the schema's keys first in its
// order, then the others as they came, unknown values as they are; a new array per array), or
// NO when it does not vouch for the document: then zod parses it, and any error is zod's.
// They vouch for less than zod accepts (an object with an own `__proto__` key, or whose prototype
// is not Object.prototype, is left to zod), never for more. Building oci/schemas.ts's ~50 zod
// schemas cost a push ~3 ms of CPU, parsing with them ~1 ms more. test/oci-documents-fast.test.ts
// compares both, shape by shape and on valid and broken documents.

/** What a parser returns for a value it does not vouch for. */
export const NO: unique symbol = Symbol('imgbuild.documents-fast.no');
type Parse = (value: unknown) => unknown;

/** The OCI digest grammar (algorithm ":" encoded), as DescriptorSchema checks it. */
export const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** A JSON object as JSON.parse makes it, with no `__proto__` key (zod treats that key apart). */
function plainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype && !Object.hasOwn(v, '__proto__');
}

const str: Parse = (v) => (typeof v === 'string' ? v : NO);
const bool: Parse = (v) => (typeof v === 'boolean' ? v : NO);
const int: Parse = (v) => (Number.isSafeInteger(v) ? v : NO);
const byteCount: Parse = (v) => (Number.isSafeInteger(v) && (v as number) >= 0 ? v : NO);
const digest: Parse = (v) => (typeof v === 'string' && DIGEST_GRAMMAR.test(v) ? v : NO);
const literal = (x: unknown): Parse => (v) => (v === x ? v : NO);
const nullable = (p: Parse): Parse => (v) => (v === null ? null : p(v));

function array(p: Parse): Parse {
  return (v) => {
    if (!Array.isArray(v)) return NO;
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      const r = p(v[i]);
      if (r === NO) return NO;
      out[i] = r;
    }
    return out;
  };
}

/** z.record(z.string(), value): a new object, keys as they came. */
function record(p: Parse): Parse {
  return (v) => {
    if (!plainObject(v)) return NO;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      const r = p(v[k]);
      if (r === NO) return NO;
      out[k] = r;
    }
    return out;
  };
}

/** z.object({}): any object gives an empty one (zod strips the keys it does not know). */
const emptyObject: Parse = (v) => (plainObject(v) ? {} : NO);

/** One key of an object shape: its name, its parser, whether it may be absent. */
export type Field = readonly [key: string, parse: Parse, optional?: 'optional'];

/** z.looseObject(shape): the shape's keys in its order (absent optional ones left out), then the other keys as they are. */
function looseObject(shape: readonly Field[]): Parse & { shape: readonly Field[] } {
  const keys = new Set(shape.map(([k]) => k));
  const parse = (v: unknown): unknown => {
    if (!plainObject(v)) return NO;
    const out: Record<string, unknown> = {};
    for (const [k, p, optional] of shape) {
      // `in`, as zod asks (no key of these shapes is one of Object.prototype's).
      if (!(k in v)) {
        if (optional) continue;
        return NO;
      }
      const r = p(v[k]);
      if (r === NO) return NO;
      out[k] = r;
    }
    for (const k in v) if (!keys.has(k)) out[k] = v[k];
    return out;
  };
  return Object.assign(parse, { shape });
}

const O = 'optional';
const annotations = record(str);

export const platform = looseObject([['architecture', str], ['os', str], ['os.version', str, O], ['os.features', array(str), O], ['variant', str, O]]);

export const descriptor = looseObject([
  ['mediaType', str], ['digest', digest], ['size', byteCount], ['urls', array(str), O], ['annotations', annotations, O], ['platform', platform, O], ['artifactType', str, O],
]);

export const manifest = looseObject([
  ['schemaVersion', literal(2)], ['mediaType', str, O], ['artifactType', str, O], ['config', descriptor], ['layers', array(descriptor)], ['subject', descriptor, O], ['annotations', annotations, O],
]);

export const index = looseObject([
  ['schemaVersion', literal(2)], ['mediaType', str, O], ['artifactType', str, O], ['manifests', array(descriptor)], ['subject', descriptor, O], ['annotations', annotations, O],
]);

export const healthcheck = looseObject([['Test', array(str), O], ['Interval', int, O], ['Timeout', int, O], ['StartPeriod', int, O], ['StartInterval', int, O], ['Retries', int, O]]);

export const containerConfig = looseObject([
  ['User', str, O], ['ExposedPorts', record(emptyObject), O], ['Env', array(str), O], ['Entrypoint', nullable(array(str)), O], ['Cmd', nullable(array(str)), O],
  ['Volumes', record(emptyObject), O], ['WorkingDir', str, O], ['Labels', record(str), O], ['StopSignal', str, O], ['Healthcheck', healthcheck, O], ['ArgsEscaped', bool, O],
]);

export const history = looseObject([['created', str, O], ['author', str, O], ['created_by', str, O], ['comment', str, O], ['empty_layer', bool, O]]);

export const rootfs = looseObject([['type', literal('layers')], ['diff_ids', array(digest)]]);

export const imageConfig = looseObject([
  ['created', str, O], ['author', str, O], ['architecture', str], ['os', str], ['os.version', str, O], ['os.features', array(str), O], ['variant', str, O],
  ['config', containerConfig, O], ['rootfs', rootfs], ['history', array(history), O],
]);
