import { ImgbuildError } from './errors.js';
import { InvalidReferenceError } from '../registry-client/errors.js';
import { parseReference } from '../registry-client/reference.js';

// The checks of the public functions' arguments (builder/index.ts exports them): a JavaScript
// caller that passes the wrong thing gets error[usage] naming the function and the argument, and
// a hint naming the call that gives the right thing, not a TypeError from deep inside. TypeScript
// callers never see these (the types already refuse such calls); each check is a few typeofs.

/** error[usage]: `fn`'s argument is not what it takes. */
export function argumentError(fn: string, message: string, hint: string): ImgbuildError {
  return new ImgbuildError('usage', `${fn}(): ${message}`, hint);
}

/** What a value is, for a message: `undefined`, `a number (123)`, `an array`, `a string ("x")`. */
export function describeValue(v: unknown): string {
  if (v === undefined || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string':
      return v === '' ? 'an empty string' : `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
    case 'number':
    case 'boolean':
    case 'bigint':
      return `a ${typeof v} (${String(v)})`;
    case 'function':
      return 'a function';
    default:
      return 'an object';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The kinds of option a public function takes, each with what it must be. */
export type OptionKind = 'signal' | 'registry' | 'function' | 'string' | 'boolean' | 'count' | 'workers' | 'array' | 'object' | 'ref';

const EXPECTED: Record<OptionKind, string> = {
  signal: 'an AbortSignal (an AbortController\'s .signal)',
  registry: 'a RegistryClient (new RegistryClient() from imgbuild/registry-client) or a function giving one',
  function: 'a function',
  string: 'a string',
  boolean: 'true or false',
  count: 'a whole number of at least 1',
  workers: 'true, false or a whole number (0: none)',
  array: 'an array',
  object: 'an object',
  ref: 'an image name and tag (`name:tag`) or a bare tag',
};

function fits(kind: OptionKind, v: unknown): boolean {
  switch (kind) {
    case 'signal':
      return v instanceof AbortSignal;
    case 'registry':
      return typeof v === 'function' || (isObject(v) && typeof v.getManifest === 'function');
    case 'function':
      return typeof v === 'function';
    case 'string':
      return typeof v === 'string';
    case 'boolean':
      return typeof v === 'boolean';
    case 'count':
      return typeof v === 'number' && Number.isInteger(v) && v >= 1;
    case 'workers':
      return typeof v === 'boolean' || (typeof v === 'number' && Number.isInteger(v) && v >= 0);
    case 'array':
      return Array.isArray(v);
    case 'object':
      return isObject(v);
    case 'ref':
      return typeof v === 'string' && refProblem(v) === undefined;
  }
}

/**
 * `options` (the argument called `name`) is absent or an object, and each of `fields` it sets is
 * of its kind. Fields it does not name are not looked at.
 */
export function checkOptions(fn: string, options: unknown, fields: Readonly<Record<string, OptionKind>>, name = 'options'): void {
  if (options === undefined) return;
  if (!isObject(options)) throw argumentError(fn, `${name} must be an object, got ${describeValue(options)}`, `pass ${name} as an object (or leave it out)`);
  for (const [field, kind] of Object.entries(fields)) {
    const v = options[field];
    if (v === undefined || fits(kind, v)) continue;
    const why = kind === 'ref' && typeof v === 'string' ? `: ${refProblem(v)}` : '';
    throw argumentError(fn, `${name}.${field} must be ${EXPECTED[kind]}, got ${describeValue(v)}${why}`, kind === 'ref' ? 'write it as registry/repository:tag (lowercase name; a tag of letters, digits, _, . and -), or leave it out to use the image\'s own' : `pass ${EXPECTED[kind]} as ${field}, or leave it out`);
  }
}

/** Why `ref` (a writer's `name:tag` or bare tag) is not one, or undefined when it is. */
function refProblem(ref: string): string | undefined {
  const slash = ref.lastIndexOf('/');
  const colon = ref.indexOf(':', slash + 1);
  if (colon < 0 && slash < 0) return /^[\w][\w.-]{0,127}$/.test(ref) ? undefined : 'not a valid tag (letters, digits, \'_\', \'.\', \'-\', at most 128, not starting with \'.\' or \'-\')';
  try {
    parseReference(ref, { defaultTag: null });
    return undefined;
  } catch (err) {
    if (err instanceof InvalidReferenceError) return err.message;
    throw err;
  }
}

/** An image argument: a string naming one (`oci:<dir>`, `docker://<ref>`, a path) or an ImageRef. */
export function checkImageArgument(fn: string, arg: unknown): void {
  if (typeof arg === 'string' && arg !== '') return;
  if (isObject(arg) && typeof arg.transport === 'string') return;
  throw argumentError(fn, `the image argument must be a string naming an image ('oci:<dir>', 'oci-archive:<file>', 'docker-archive:<file>', 'docker://<ref>' or a path) or an ImageRef, got ${describeValue(arg)}`, `call ${fn}('oci:./app.oci') or ${fn}(parseImageRef(arg))`);
}

/** An Image (or, with `index`, an Index) as sources give them. */
export function checkImage(fn: string, what: string, v: unknown, kinds: 'image' | 'image-or-index' = 'image-or-index'): void {
  if (isObject(v) && (v.kind === 'image' ? Array.isArray(v.layers) : kinds === 'image-or-index' && v.kind === 'index' && Array.isArray(v.manifests))) return;
  const wanted = kinds === 'image' ? 'an Image' : 'an Image or an Index';
  const gotIndex = isObject(v) && v.kind === 'index';
  throw argumentError(fn, `${what} must be ${wanted}, got ${gotIndex ? 'an Index' : describeValue(v)}`,
    gotIndex ? 'pick one of its images: openImage(arg, { platform }) or imageForPlatform(index, platform)' : 'pass an image from openImage() or buildImage()\'s result (`(await buildImage(spec, context)).image`)');
}

/** A Layer (an image's `layers[i]`). */
export function checkLayer(fn: string, v: unknown): void {
  if (isObject(v) && typeof v.open === 'function' && typeof v.digest === 'string') return;
  throw argumentError(fn, `the layer must be a Layer, got ${describeValue(v)}`, 'pass one of an image\'s layers: (await openImage(arg)).layers[i]');
}

/** A RegistryClient. */
export function checkClient(fn: string, v: unknown): void {
  if (isObject(v) && typeof v.getManifest === 'function') return;
  throw argumentError(fn, `the client must be a RegistryClient, got ${describeValue(v)}`, `create one with new RegistryClient() from imgbuild/registry-client and pass it first: ${fn}(client, …)`);
}

/** A non-empty string argument. */
export function checkString(fn: string, what: string, v: unknown, hint: string): void {
  if (typeof v === 'string' && v !== '') return;
  throw argumentError(fn, `${what} must be a non-empty string, got ${describeValue(v)}`, hint);
}

/** A writer's arguments: the image, where it goes (a path, or a stream for streamDockerArchive), the naming and the options. */
export function checkWriteArguments(fn: string, image: unknown, kinds: 'image' | 'image-or-index', target: { path: unknown } | { stream: unknown }, naming: unknown, options: unknown): void {
  checkImage(fn, 'the image', image, kinds);
  if ('path' in target) checkString(fn, 'the output path', target.path, `name where it goes: ${fn}(image, './app.${fn === 'writeOciLayout' ? 'oci' : 'tar'}')`);
  else if (typeof (target.stream as { write?: unknown } | null)?.write !== 'function') throw argumentError(fn, `the output must be a writable stream, got ${describeValue(target.stream)}`, `pass a Writable: ${fn}(image, process.stdout) or createWriteStream(file)`);
  checkOptions(fn, naming, { ref: 'ref', referrers: 'array' }, 'naming');
  checkOptions(fn, options, { signal: 'signal' });
}

/** A spec as buildImage takes it: resolved (resolveSpec() or loadSpec()), not the object an image.ts exports. */
export function checkResolvedSpec(fn: string, spec: unknown): void {
  const store = isObject(spec) ? spec.store : undefined;
  if (isObject(spec) && typeof spec.file === 'string' && isObject(store) && typeof store.kind === 'string' && Array.isArray(spec.contents) && typeof spec.mtime === 'number') return;
  const unresolved = isObject(spec) && typeof spec.name === 'string';
  throw argumentError(fn, unresolved ? 'the spec is not resolved: it is a spec as an image.ts exports it (defineImage()), without its defaults' : `the spec must be a resolved spec, got ${describeValue(spec)}`,
    `pass the spec through resolveSpec() or loadSpec() first: ${fn}(resolveSpec(defineImage({ … }), { file: '/path/to/image.ts' }), context)`);
}

/** A BuildContext's fields, each of its kind. */
export const BUILD_CONTEXT_FIELDS: Readonly<Record<string, OptionKind>> = {
  cacheDir: 'string', env: 'object', clock: 'function', workers: 'workers', startedWorker: 'function', concurrency: 'count',
  onEvent: 'function', warn: 'function', signal: 'signal', registry: 'registry', store: 'object', storeFetch: 'object', layerHints: 'object',
};
