import type { FieldChange } from './json-diff.js';
import type { FileDiff, ImageDiff, LayerDiff, LayerInfo } from './diff.js';
import type { EntrySummary } from './layer-summary.js';

export interface FormatOptions {
  /** Files listed per layer before `... and N more` (default 50). */
  maxFiles?: number;
}

/** Number of differences a diff reports (0 means the images are the same). */
export function countDifferences(d: ImageDiff): number {
  if (d.identical) return 0;
  return Math.max(1, d.manifest.length + d.config.length + d.layers.length + d.notes.length);
}

/** The diff for a human: one line per difference, files indented under their layer. */
export function formatDiff(d: ImageDiff, options: FormatOptions = {}): string {
  const maxFiles = options.maxFiles ?? 50;
  const out: string[] = [`a: ${d.a.source}  ${d.a.digest}`, `b: ${d.b.source}  ${d.b.digest}`];
  if (d.identical) {
    out.push('identical: same manifest digest');
    for (const n of d.notes) out.push(`note: ${n}`);
    return `${out.join('\n')}\n`;
  }
  if (d.manifest.length) {
    out.push('manifest:');
    for (const c of d.manifest) out.push(`  ${fieldLine(c)}`);
  }
  if (d.config.length) {
    out.push(`config: ${d.a.configDigest} → ${d.b.configDigest}`);
    for (const c of d.config) out.push(`  ${fieldLine(c)}`);
  }
  if (d.layers.length) {
    out.push('layers:');
    for (const l of d.layers) out.push(...layerLines(l, maxFiles));
  }
  for (const n of d.notes) out.push(`note: ${n}`);
  out.push(`${countDifferences(d)} difference(s)`);
  return `${out.join('\n')}\n`;
}

function layerLines(l: LayerDiff, maxFiles: number): string[] {
  switch (l.change) {
    case 'added':
      return [`  + layer ${l.b.index + 1} added: ${layerDesc(l.b)}`];
    case 'removed':
      return [`  - layer ${l.a.index + 1} removed: ${layerDesc(l.a)}`];
    case 'moved': {
      const lines = [`  ~ layer ${pos(l.a, l.b)}: same blob ${short(l.a.digest)}${l.a.index !== l.b.index ? ', other position' : ''}`];
      for (const c of l.descriptor) lines.push(`      ${fieldLine(c)}`);
      return lines;
    }
    case 'compression': {
      const lines = [`  ~ layer ${pos(l.a, l.b)}: only the compression differs: same tar (diff_id ${short(l.a.diffId)}), blob ${short(l.a.digest)} (${l.a.size} B) → ${short(l.b.digest)} (${l.b.size} B)`];
      for (const c of [...l.descriptor, ...l.gzipHeader]) lines.push(`      ${fieldLine(c)}`);
      return lines;
    }
    case 'content': {
      const lines = [`  ~ layer ${pos(l.a, l.b)}: content differs: diff_id ${short(l.a.diffId)} → ${short(l.b.diffId)}`];
      for (const c of l.descriptor) lines.push(`      ${fieldLine(c)}`);
      const counts = Object.entries(l.fieldCounts);
      if (counts.length) lines.push(`      changed fields: ${counts.map(([k, n]) => `${k} ×${n}`).join(', ')} (of ${l.entries.b} entries)`);
      for (const f of l.files.slice(0, maxFiles)) lines.push(...fileLines(f));
      if (l.files.length > maxFiles) lines.push(`      ... and ${l.files.length - maxFiles} more file(s)`);
      if (l.order) {
        lines.push(`      order: the same entries in another order; first at entry ${l.order.position + 1}: a has ${l.order.a}, b has ${l.order.b} (${l.order.displaced} entries displaced)`);
      }
      for (const n of l.notes) lines.push(`      note: ${n}`);
      return lines;
    }
  }
}

function fileLines(f: FileDiff): string[] {
  if (f.change === 'added') return [`      + ${f.path} (${entryDesc(f.b)})`];
  if (f.change === 'removed') return [`      - ${f.path} (${entryDesc(f.a)})`];
  return [`      ~ ${f.path}: ${f.fields.map((c) => fieldLine(c)).join('; ')}`];
}

function entryDesc(e: EntrySummary): string {
  const parts = [e.type, octal(e.mode)];
  if (e.sha256 !== undefined) parts.push(`${e.size} B`);
  if (e.linkname !== undefined) parts.push(`→ ${e.linkname}`);
  return parts.join(', ');
}

function fieldLine(c: FieldChange): string {
  if (!('b' in c)) return `${c.path}: ${value(c.path, c.a)} (only in a)`;
  if (!('a' in c)) return `${c.path}: ${value(c.path, c.b)} (only in b)`;
  return `${c.path}: ${value(c.path, c.a)} → ${value(c.path, c.b)}`;
}

function value(path: string, v: unknown): string {
  if (path === 'mode' && typeof v === 'number') return octal(v);
  if (path === 'mtime' && typeof v === 'number') return `${v} (${new Date(v * 1000).toISOString().replace('.000Z', 'Z')})`;
  if (path === 'content' && typeof v === 'string') return `sha256:${v.slice(0, 12)}…`;
  if (path === 'header bytes' && typeof v === 'string') return `${v.slice(0, 19)}…`;
  return JSON.stringify(v) ?? 'undefined';
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

function pos(a: LayerInfo, b: LayerInfo): string {
  return a.index === b.index ? `${a.index + 1}` : `${a.index + 1} → ${b.index + 1}`;
}

function layerDesc(l: LayerInfo): string {
  return `${l.digest} (${l.size} B, diff_id ${short(l.diffId)})`;
}

function short(d: string | undefined): string {
  return d ? `${d.slice(0, 19)}…` : '-';
}
