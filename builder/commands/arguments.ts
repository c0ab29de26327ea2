import { statSync } from 'node:fs';
import { InvalidReferenceError } from '../../registry-client/errors.js';
import { isValidRegistryHost, normaliseRegistry, parseReference, type ImageReference } from '../../registry-client/reference.js';
import { ImgbuildError } from '../errors.js';
import { parseImageRef } from '../transports/image-ref.js';

/**
 * What a command checks of its arguments and flags before it does anything: a malformed
 * argument is a usage error (`error[usage]`, exit 2: README, "Exit codes"), said before a build
 * starts or a blob moves, whichever command it is given to.
 */

const REFERENCE_FORM = '[host[:port]/]name[:tag][@sha256:<64 hex>], the name in lower case';

/**
 * A registry reference given on the command line (`docker://` allowed): a positional argument
 * (`flag` undefined) or a flag's value (`--push`). A malformed one is a usage error naming the flag.
 */
export function referenceArgument(text: string, flag?: string, options: { defaultTag?: string | null } = {}): ImageReference {
  try {
    return parseReference(text.startsWith('docker://') ? text.slice('docker://'.length) : text, options);
  } catch (err) {
    if (!(err instanceof InvalidReferenceError)) throw err;
    if (flag === undefined) throw new ImgbuildError('usage', err.message, err.hint, { cause: err });
    throw new ImgbuildError('usage', `${flag}: ${err.message}`, `a reference looks like ${REFERENCE_FORM}: e.g. ${flag} ghcr.io/org/app:1.0`, { cause: err });
  }
}

/**
 * A flag given an empty value: in a script that is an unset variable (`--plan "$PLAN"`), and it
 * was taken as the flag not given at all (a build without the plan it was told to follow).
 */
export function refuseEmpty(value: string | undefined, flag: string | undefined, what: string): void {
  if (value !== '') return;
  if (flag === undefined) throw new ImgbuildError('usage', `the image argument is empty: it needs ${what}`, 'name one (in a script, an unset variable gives "")');
  throw new ImgbuildError('usage', `${flag} is empty: it needs ${what}`, `give ${flag} ${what}, or leave it out (in a script, an unset variable gives "")`);
}

/**
 * An image argument (`oci:<dir>`, `docker://<ref>`, a path, `host/repo:tag`), or a flag's
 * (`--previous`, `--against`): a registry reference in it that is malformed is a usage error,
 * said before anything is read. Anything else (a path that does not exist) is left to the
 * command's own reading of the argument, which says it as it always has.
 */
export function checkImageArgument(arg: string | undefined, flag?: string): void {
  if (arg === undefined) return;
  refuseEmpty(arg, flag, 'an image');
  let reference: string;
  try {
    const ref = parseImageRef(arg);
    if (ref.transport !== 'docker') return;
    reference = ref.reference;
  } catch {
    return;
  }
  referenceArgument(reference, flag);
}

/** `--tag` values for a push to `ref`: each a tag, checked before anything is pushed (a bad one found after the push left the reference's tag moved). */
export function checkTags(ref: ImageReference, tags: readonly string[] | undefined): void {
  for (const tag of tags ?? []) {
    try {
      ref.withTag(tag);
    } catch (err) {
      if (!(err instanceof InvalidReferenceError)) throw err;
      throw new ImgbuildError('usage', `--tag ${JSON.stringify(tag)} is not a tag`, 'a tag is letters, digits, _ . - (at most 128), not starting with . or -: e.g. --tag latest', { cause: err });
    }
  }
}

/** The registry `login` is given (`ghcr.io`, `localhost:5000`, `https://index.docker.io/v1/`), as references name it; a malformed host is a usage error. */
export function registryArgument(text: string): string {
  const registry = normaliseRegistry(text);
  if (!isValidRegistryHost(registry)) {
    throw new ImgbuildError('usage', `${JSON.stringify(text)} is not a registry host`, 'name the registry as a reference does: a host name and optionally a port, e.g. imgbuild login ghcr.io or imgbuild login localhost:5000');
  }
  return registry;
}

/** `IMGBUILD_INSECURE_REGISTRIES`: registries named insecure for every command (registry-flags.ts). */
const INSECURE_ENV = 'IMGBUILD_INSECURE_REGISTRIES';

/**
 * The registry flags a command was given, checked before it does anything: `--creds` must be
 * `user:password`, each `--ca-file` a file that is there, each `--insecure-registry` (and each
 * host of `IMGBUILD_INSECURE_REGISTRIES`, when `env` has it) a `host[:port]` as references write
 * it. A bad one is a usage error naming the flag or variable (never the `--creds` value: it
 * may be a token). What a `--ca-file` holds is checked when it is read (registry-flags.ts).
 */
export function checkRegistryFlags(flags: { creds?: string; caFile?: readonly string[]; insecureRegistry?: readonly string[] }, env: Readonly<Record<string, string | undefined>>): void {
  if (flags.creds !== undefined && !(flags.creds.indexOf(':') > 0)) {
    throw new ImgbuildError('usage', `--creds takes user:password, and the value given has ${flags.creds.startsWith(':') ? 'no user before its ":"' : 'no ":"'}`, 'e.g. --creds ci-bot:"$TOKEN" (with a token: a user name the registry accepts, ":", then the token)');
  }
  for (const file of flags.caFile ?? []) {
    let what: string | undefined;
    try {
      if (statSync(file).isDirectory()) what = 'is a directory';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') what = 'no such file';
      // Anything else (no permission) is said when the file is read.
    }
    if (what) throw new ImgbuildError('usage', `--ca-file ${file}: ${what}`, "give the file holding the registry's CA certificate in PEM, e.g. --ca-file ./ca.pem");
  }
  for (const host of flags.insecureRegistry ?? []) {
    if (!isRegistryHost(host)) {
      throw new ImgbuildError('usage', `--insecure-registry ${JSON.stringify(host)} is not a registry host`, 'name it as a reference does, host[:port]: e.g. --insecure-registry registry.local:5000');
    }
  }
  for (const host of (env[INSECURE_ENV] ?? '').split(',').map((h) => h.trim()).filter(Boolean)) {
    if (!isRegistryHost(host)) {
      throw new ImgbuildError('usage', `${INSECURE_ENV} names ${JSON.stringify(host)}, which is not a registry host`, `list host[:port] separated by commas: e.g. ${INSECURE_ENV}=registry.local:5000,10.0.0.2 (or --insecure-registry <host[:port]>)`);
    }
  }
}

/** `host[:port]` (an `http://` or `https://` in front is dropped, as the registry client drops it), with a port of 1..65535 if any. */
function isRegistryHost(text: string): boolean {
  const host = normaliseRegistry(text);
  if (!isValidRegistryHost(host)) return false;
  const port = /:(\d+)$/.exec(host)?.[1];
  return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
}
