import { Annotation } from '../../oci/media-types.js';
import { openImage } from '../input/open-image.js';
import { printJson } from './common.js';

export async function runInspect(imagePath: string, flags: { json?: boolean }): Promise<void> {
  const img = await openImage(imagePath);
  const diffIds = img.config.rootfs.diff_ids;
  const layers = img.manifest.layers.map((l, i) => ({
    digest: l.digest,
    diffId: diffIds[i],
    size: l.size,
    mediaType: l.mediaType,
    reason: l.annotations?.[Annotation.layerReason],
    storePaths: l.annotations?.[Annotation.storePaths]?.split('\n') ?? [],
  }));
  if (flags.json) {
    printJson({ source: img.source, manifestDigest: img.manifestDigest, refs: img.refs, config: img.config, layers });
    return;
  }
  const c = img.config;
  const out: string[] = [
    `image:    ${img.source}`,
    `digest:   ${img.manifestDigest}`,
    `refs:     ${img.refs.join(', ') || '-'}`,
    `platform: ${c.os}/${c.architecture}${c.variant ? `/${c.variant}` : ''}`,
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
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
