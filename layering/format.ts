import type { LayerPlan } from './types.js';

/** Bytes in binary units with one decimal, e.g. `1.5 MiB` (plain bytes below 1 KiB). */
export function formatBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = '';
  for (const u of units) {
    if (value < 1024 && unit) break;
    value /= 1024;
    unit = u;
  }
  return `${value.toFixed(1)} ${unit}`;
}

/**
 * The plan as a table for `imgbuild plan`: one row per store layer (bottom first) with its reason,
 * NAR size and paths, one path per line. The customisation layer is the builder's, not shown.
 */
export function formatPlan(plan: LayerPlan): string {
  const rows = plan.layers.map((layer, i) => ({
    n: String(i + 1),
    reason: layer.reason,
    size: formatBytes(layer.narSize),
    paths: layer.paths.length > 0 ? layer.paths : ['(no paths)'],
  }));
  const head = { n: '#', reason: 'reason', size: 'NAR size', paths: ['paths'] };
  const wN = Math.max(head.n.length, ...rows.map((r) => r.n.length));
  const wReason = Math.max(head.reason.length, ...rows.map((r) => r.reason.length));
  const wSize = Math.max(head.size.length, ...rows.map((r) => r.size.length));
  const line = (n: string, reason: string, size: string, path: string) =>
    `${n.padStart(wN)}  ${reason.padEnd(wReason)}  ${size.padStart(wSize)}  ${path}`.trimEnd();
  const out: string[] = [];
  const totalPaths = plan.layers.reduce((s, l) => s + l.paths.length, 0);
  const totalSize = plan.layers.reduce((s, l) => s + l.narSize, 0);
  out.push(`strategy: ${plan.strategy}, store layers: ${plan.layers.length}, paths: ${totalPaths}, NAR size: ${formatBytes(totalSize)}`);
  out.push(line(head.n, head.reason, head.size, head.paths[0]!));
  for (const r of rows) {
    out.push(line(r.n, r.reason, r.size, r.paths[0]!));
    for (const p of r.paths.slice(1)) out.push(line('', '', '', p));
  }
  return `${out.join('\n')}\n`;
}
