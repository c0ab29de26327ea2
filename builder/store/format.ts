import type { ClosureGraph } from '../../layering/types.js';

/** `1234` → `1.2 KiB`, bytes below 1 KiB as `N B`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/**
 * The closure as a table for `imgbuild closure`: one row per path (roots marked `*`), its NAR
 * size, and its references by base name (`self` for a self-reference); a total line at the end.
 */
export function formatClosure(graph: ClosureGraph): string {
  const roots = new Set(graph.roots);
  const prefix = graph.storeDir === '/' ? '/' : `${graph.storeDir}/`;
  const short = (p: string): string => (p.startsWith(prefix) ? p.slice(prefix.length) : p);
  const rows = graph.paths.map((p) => [
    `${p.path}${roots.has(p.path) ? ' *' : ''}`,
    formatBytes(p.narSize),
    p.references.map((r) => (r === p.path ? 'self' : short(r))).join(', ') || '-',
  ]);
  const header = ['PATH', 'NAR SIZE', 'REFERENCES'];
  const w0 = Math.max(header[0]!.length, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(header[1]!.length, ...rows.map((r) => r[1]!.length));
  const line = (r: string[]): string => `${r[0]!.padEnd(w0)}  ${r[1]!.padStart(w1)}  ${r[2]!}`.trimEnd();
  const total = graph.paths.reduce((s, p) => s + p.narSize, 0);
  return [
    line(header),
    ...rows.map(line),
    `${graph.paths.length} path${graph.paths.length === 1 ? '' : 's'}, ${formatBytes(total)} (${total} bytes) of NAR; * = root`,
    '',
  ].join('\n');
}
