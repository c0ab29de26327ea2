const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** `512 B`, `12.5 KiB`, `300.0 MiB`, `1.25 GiB`. */
export function formatSize(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= KiB) return `${(bytes / KiB).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** `done/total` in the unit of the larger, e.g. `120.3/300.0 MiB`. */
export function formatPair(done: number, total: number): string {
  const [div, unit, digits] = total >= GiB ? [GiB, 'GiB', 2] : total >= MiB ? [MiB, 'MiB', 1] : total >= KiB ? [KiB, 'KiB', 1] : [1, 'B', 0];
  return `${(done / div).toFixed(digits)}/${(total / div).toFixed(digits)} ${unit}`;
}

/** `45.1 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatSize(Math.round(bytesPerSecond))}/s`;
}

/** `0.4 s`, `12.3 s`, `2m05s`, `1h02m`. */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

/** An ETA: `4s`, `2m05s`, `1h02m`. */
export function formatEta(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms / 1000));
  if (whole < 60) return `${whole}s`;
  return formatDuration(whole * 1000);
}

/** `sha256:1a2b3c4d5e6f` (12 hex digits: enough to tell a build's blobs apart). */
export function shortDigest(digest: string): string {
  const i = digest.indexOf(':');
  return digest.slice(0, i + 1 + 12);
}

/** Bytes per second of `bytes` done in `ms`; 0 before there is anything to measure. */
export function rateOf(bytes: number, ms: number): number {
  return ms > 0 && bytes > 0 ? (bytes * 1000) / ms : 0;
}
