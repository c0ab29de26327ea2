import { layerReason } from '../build/assemble.js';
import { formatPlatform, imageForPlatform } from '../model/complete.js';
import type { Image, Index } from '../model/image.js';
import { openArtifact } from '../transports/open.js';
import { checkImageArgument } from './arguments.js';
import { printJson } from './print.js';
import type { InspectDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';
import { watchInterrupts } from './interrupt.js';
import { pickPlatform, registryOfImageArg } from './image-verbs.js';

/** `imgbuild inspect <image>`: any image argument; a registry image's layers are not fetched. */
export async function runInspect(imageArg: string, flags: RegistryFlags & { json?: boolean; platform?: string }): Promise<void> {
  checkImageArgument(imageArg);
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, registryOfImageArg(imageArg), interrupt.signal);
  try {
    const artifact = await openArtifact(imageArg, { registry: client.get });
    // A multi-platform image: its platforms, unless --platform picks one.
    if (artifact.kind === 'index' && !flags.platform) return reportIndex(artifact, flags.json);
    const img = flags.platform ? await pickPlatform(artifact, flags.platform) : await imageForPlatform(artifact, undefined);
    if (img.artifactType !== undefined) return reportArtifact(img, flags.json);
    const layers = img.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType, ...layerReason(l) }));
    if (flags.json) {
      const doc: InspectDocument = {
        ...documentHead(img),
        platform: formatPlatform(img.config),
        configDigest: img.configDescriptor.digest,
        config: img.config,
        layers,
      };
      printJson(doc);
      return;
    }
    const c = img.config;
    const out: string[] = [
      `image:    ${img.source}`,
      `digest:   ${img.descriptor.digest}`,
      `refs:     ${img.refs.join(', ') || '-'}`,
      `platform: ${formatPlatform(c)}`,
      `created:  ${c.created ?? '-'}`,
    ];
    const rc = c.config ?? {};
    if (rc.Entrypoint) out.push(`entrypoint: ${JSON.stringify(rc.Entrypoint)}`);
    if (rc.Cmd) out.push(`cmd:      ${JSON.stringify(rc.Cmd)}`);
    if (rc.Env?.length) out.push(`env:      ${rc.Env.join(' ')}`);
    if (rc.WorkingDir) out.push(`workdir:  ${rc.WorkingDir}`);
    if (rc.User) out.push(`user:     ${rc.User}`);
    const total = layers.reduce((s, l) => s + l.size, 0);
    out.push(`layers:   ${layers.length}, ${formatBytes(total)}`);
    layers.forEach((l, i) => {
      out.push(`  ${String(i + 1).padStart(3)}  ${l.digest.slice(0, 19)}  ${formatBytes(l.size).padStart(10)}  ${l.reason ?? ''}`);
      for (const p of l.storePaths) out.push(`         ${p}`);
    });
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await client.close();
    interrupt.stop();
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** An artifact (an SBOM, a signature): what it is, what it is about, and its blobs (no config, no files). */
function reportArtifact(img: Image, json: boolean | undefined): void {
  const subject = img.manifest.subject;
  const blobs = img.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, ...(l.annotations ? { annotations: l.annotations } : {}) }));
  if (json) {
    const doc: InspectDocument = {
      ...documentHead(img),
      artifactType: img.artifactType!,
      ...(subject ? { subject: { digest: subject.digest, mediaType: subject.mediaType, size: subject.size } } : {}),
      configDigest: img.configDescriptor.digest,
      configMediaType: img.configDescriptor.mediaType,
      blobs,
    };
    printJson(doc);
    return;
  }
  const total = blobs.reduce((s, b) => s + b.size, 0);
  const out = [
    `image:    ${img.source}`,
    `digest:   ${img.descriptor.digest} (an artifact)`,
    `artifact: ${img.artifactType}`,
    `subject:  ${subject ? subject.digest : '-'}`,
    `refs:     ${img.refs.join(', ') || '-'}`,
    `config:   ${img.configDescriptor.mediaType}, ${formatBytes(img.configDescriptor.size)}`,
    `blobs:    ${blobs.length}, ${formatBytes(total)}`,
    ...blobs.map((b, i) => `  ${String(i + 1).padStart(3)}  ${b.digest.slice(0, 19)}  ${formatBytes(b.size).padStart(10)}  ${b.mediaType}`),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

function reportIndex(index: Index, json: boolean | undefined): void {
  const platforms = index.manifests.map((m) => ({ ...(m.platform ? { platform: formatPlatform(m.platform) } : {}), digest: m.descriptor.digest, size: m.descriptor.size, mediaType: m.descriptor.mediaType }));
  if (json) {
    const doc: InspectDocument = { ...documentHead(index), platforms };
    printJson(doc);
    return;
  }
  const out = [
    `image:    ${index.source}`,
    `digest:   ${index.descriptor.digest} (an index)`,
    `refs:     ${index.refs.join(', ') || '-'}`,
    `platforms: ${platforms.length}`,
    ...platforms.map((p) => `  ${(('platform' in p ? p.platform : undefined) ?? '-').padEnd(16)}  ${p.digest}`),
    'hint: --platform <os/arch> shows one of them',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

/** What every inspect document begins with: where the image was read, its digest, media type and tags. */
function documentHead(x: Image | Index) {
  return { schemaVersion: SCHEMA_VERSION, source: x.source, digest: x.descriptor.digest, mediaType: x.descriptor.mediaType!, refs: [...x.refs] };
}
