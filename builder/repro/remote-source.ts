import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { isDigest } from '../../oci/digest.js';
import { ImageConfigSchema } from '../../oci/schemas.js';
import { readCapped, type RegistryClient } from '../../registry-client/client.js';
import { RegistryError } from '../../registry-client/errors.js';
import { resolveImage } from '../../registry-client/pull.js';
import { parseReference } from '../../registry-client/reference.js';
import { ImgbuildError } from '../errors.js';
import type { ImageSource, RemoteImageOpener } from './image-source.js';

/** Image configs are small JSON documents; refuse anything absurd rather than buffer it. */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface RegistryOpener {
  open: RemoteImageOpener;
  /** Closes the client's connections, if one was made. */
  close(): Promise<void>;
}

/**
 * Opens registry images (`ghcr.io/acme/app@sha256:...`, the host platform's manifest of an
 * index) as ImageSources: manifest and config are fetched at once, layers stream on demand and
 * are checked against their digests as they are read. The client is made on first use, for the
 * registry of the first image opened (`makeClient` decides credentials and TLS from that).
 */
export function registryImageOpener(makeClient: (registry: string) => Promise<RegistryClient> | RegistryClient): RegistryOpener {
  let client: RegistryClient | undefined;
  const open: RemoteImageOpener = async (name) => {
    try {
      const ref = parseReference(name);
      client ??= await makeClient(ref.registry);
      const repo = { registry: ref.registry, repository: ref.repository };
      const resolved = await resolveImage(client, ref);
      const configDigest = resolved.manifest.config.digest;
      if (!isDigest(configDigest)) throw new ImgbuildError('image-read', `docker://${ref}: config digest ${configDigest} is not sha256`);
      const configBytes = await readCapped(await client.getBlob(repo, configDigest), MAX_CONFIG_BYTES, `docker://${ref}: config ${configDigest}`);
      const got = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;
      if (got !== configDigest) throw new ImgbuildError('image-read', `docker://${ref}: the registry sent config bytes with digest ${got}, not ${configDigest}`);
      const parsed = ImageConfigSchema.safeParse(JSON.parse(configBytes.toString('utf8')));
      if (!parsed.success) throw new ImgbuildError('image-read', `docker://${ref}: config is not valid: ${parsed.error.issues[0]?.message ?? ''}`);
      const source: ImageSource = {
        source: `docker://${ref}`,
        manifest: resolved.manifest,
        manifestBytes: resolved.manifestBytes,
        manifestDigest: resolved.digest,
        config: parsed.data,
        configBytes,
        openBlob: (digest) => Readable.from(blobChunks(client!, repo, digest, `docker://${ref}`)),
      };
      return source;
    } catch (err) {
      throw asImgbuildError(err);
    }
  };
  return { open, close: async () => client?.close() };
}

/** A blob's bytes, fetched when first read, failing at the end if they do not hash to `digest`. */
async function* blobChunks(client: RegistryClient, repo: { registry: string; repository: string }, digest: string, shown: string): AsyncGenerator<Buffer> {
  if (!isDigest(digest)) throw new ImgbuildError('image-read', `${shown}: unsupported digest ${digest} (only sha256)`);
  let res;
  try {
    res = await client.getBlob(repo, digest);
  } catch (err) {
    throw asImgbuildError(err);
  }
  const hash = createHash('sha256');
  for await (const chunk of res.body) {
    hash.update(chunk as Buffer);
    yield chunk as Buffer;
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== digest) throw new ImgbuildError('image-read', `${shown}: the registry sent blob bytes with digest ${got}, not ${digest}`);
}

/** Registry errors carry a code and a hint already: keep them, in the CLI's error type. */
function asImgbuildError(err: unknown): unknown {
  if (err instanceof RegistryError) return new ImgbuildError(err.code, err.message, err.hint, { cause: err });
  return err;
}
