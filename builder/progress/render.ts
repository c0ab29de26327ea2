import { formatDuration, formatEta, formatPair, formatRate, formatSize, rateOf, shortDigest } from './format.js';
import { isMade, type BlobState, type Finished, type LayerState, type ProgressState } from './state.js';

/** A piece of a line, plain or in a style (a colour, or dim/bold). */
export type Style = 'green' | 'yellow' | 'cyan' | 'red' | 'dim' | 'bold';
export type Segment = string | readonly [Style, string];
export type Line = readonly Segment[];

/** A frame: the lines that are final (printed once, in order) and the block redrawn below them. */
export interface Frame {
  finished: Line[];
  live: Line[];
}

export interface FrameOptions {
  /** Terminal rows: the live block keeps below this many lines (its last line is the overall one). */
  rows?: number;
  /** Final lines from this one on (those before are on the screen already); default all. */
  finishedFrom?: number;
}

const BAR_WIDTH = 24;

/** `[=========>          ]`: `fraction` of the bar filled. */
export function bar(fraction: number, width: number = BAR_WIDTH): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.floor(f * width);
  if (full >= width) return `[${'='.repeat(width)}]`;
  return `[${'='.repeat(full)}>${' '.repeat(width - full - 1)}]`;
}

const label = (platform: string | undefined, text: string) => (platform ? `[${platform}] ${text}` : text);
/** Columns: names, then sizes, padded so that a layer's or blob's lines line up. */
const NAME_WIDTH = 26;
const SIZE_WIDTH = 9;
const layerName = (l: LayerState) => label(l.platform, `layer ${l.index + 1}/${l.total} ${l.reason}`).padEnd(NAME_WIDTH);
const blobName = (digest: string) => `blob ${shortDigest(digest)}`.padEnd(NAME_WIDTH);
/** A rate worth showing: of at least 1 MiB over at least 0.2 s (a tiny layer's rate says nothing). */
const rateNote = (bytes: number, ms: number): Segment[] => (bytes >= 1024 * 1024 && ms >= 200 ? [['dim', ` (${formatRate(rateOf(bytes, ms))})`]] : []);

/**
 * Bytes done of an estimated total, with a bar, the rate and the time left. `total` is an
 * estimate (a layer's NAR size): while more is done, the bar stays short of full and no ETA is given.
 */
function progressSegments(done: number, total: number, ms: number): Segment[] {
  const rate = rateOf(done, ms);
  const out: Segment[] = [];
  if (total > 0) {
    const shown = Math.max(total, done);
    out.push(['cyan', bar(done >= total ? 0.99 : done / total)], ' ', formatPair(done, shown));
  } else out.push(formatSize(done));
  if (rate > 0) out.push('  ', formatRate(rate));
  if (rate > 0 && total > done) out.push('  ', ['dim', `ETA ${formatEta(((total - done) / rate) * 1000)}`]);
  return out;
}

/** A final line (a layer done, a blob pushed, the summary), as the terminal shows it. */
export function finishedLine(f: Finished): Line {
  switch (f.kind) {
    case 'closure':
      return [label(f.platform, `closure: ${f.paths} store paths, ${formatSize(f.narSize)}`), ...(f.scanned ? [['dim', ` (${f.scanned.done} read in ${formatDuration(f.scanned.ms)})`] as const] : [])];
    case 'plan':
      return [label(f.platform, `plan: ${f.layers} layers`)];
    case 'layer': {
      const l = f.layer;
      const ms = (l.finished ?? l.started) - l.started;
      const how: Segment[] =
        l.action === 'cached'
          ? [['yellow', 'cached']]
          : l.action === 'record'
            ? [['yellow', 'cached record'], ['dim', ' (made from the store if an output needs its bytes)']]
            : [['green', l.action === 'measuring' ? 'measured' : 'written'], ` in ${formatDuration(ms)}`, ...rateNote(l.bytes, ms)];
      return [['green', '✓ '], layerName(l), ' ', ['dim', shortDigest(l.digest ?? '')], ' ', formatSize(l.size ?? 0).padStart(SIZE_WIDTH), '  ', ...how];
    }
    case 'push-start':
      return [`push to ${f.target}: ${f.blobs} blobs, ${formatSize(f.bytes)}`, ...(f.alreadyThere ? [['dim', ' (the registry holds the image already)'] as const] : [])];
    case 'blob': {
      const b = f.blob;
      const ms = (b.finished ?? b.started) - b.started;
      const how: Segment[] =
        b.how === 'uploaded'
          ? [['green', 'uploaded'], ` in ${formatDuration(ms)}`, ...rateNote(b.size, ms)]
          : [['yellow', b.how === 'mounted' ? 'mounted' : 'already there']];
      return [['green', '✓ '], blobName(b.digest), ' ', formatSize(b.size).padStart(SIZE_WIDTH), '  ', ...how];
    }
    case 'built': {
      const { event: e, counts: c } = f;
      const ours = c.cached + c.record + c.written + c.measured;
      const base = e.layers - ours;
      const parts = [`${c.cached + c.record} reused`, `${c.written + c.measured} written`, ...(base > 0 ? [`${base} from the base image`] : [])];
      return [['bold', 'built '], e.digest, ` · ${e.platforms ? `${e.platforms} platforms, ` : ''}${e.layers} layers, ${formatSize(e.size)} · ${parts.join(', ')} · ${formatDuration(f.ms)}`];
    }
    case 'pushed': {
      const e = f.event;
      const rate = rateOf(e.bytesSent, f.ms);
      return [
        ['bold', 'push done'],
        `: ${e.uploaded} blobs uploaded (${formatSize(e.bytesSent)}${rate > 0 && e.uploaded > 0 ? ` at ${formatRate(rate)}` : ''}), ${e.mounted} mounted, ${e.skipped} already there · ${formatDuration(f.ms)}`,
      ];
    }
    case 'log':
      return [f.text];
  }
}

function layerLine(l: LayerState, now: number): Line {
  return ['  ', layerName(l), ' ', ...progressSegments(l.bytes, l.narSize, now - l.started)];
}

function blobLine(b: BlobState, now: number): Line {
  return ['  ', blobName(b.digest), ' ', ...progressSegments(b.sent, b.size, now - b.started)];
}

/** The overall line of the layers: how many are done and how, what is under way, the bytes of all. */
function layersOverall(s: ProgressState, active: LayerState[], now: number): Line {
  const c = s.counts;
  const making = active.filter((l) => isMade(l.action));
  const waiting = Math.max(0, s.planned - s.layersDone - active.length);
  const bytes = s.madeBytes + making.reduce((n, l) => n + l.bytes, 0);
  // Making the rest reads about the closure less the layers taken from the cache.
  const total = Math.max(bytes, s.closureBytes - s.skippedBytes);
  const doneHow = [c.cached + c.record > 0 ? `${c.cached + c.record} cached` : '', c.written + c.measured > 0 ? `${c.written + c.measured} written` : ''].filter(Boolean).join(', ');
  const out: Segment[] = [['bold', 'layers'], ` ${s.layersDone}/${s.planned} done${doneHow ? ` (${doneHow})` : ''}`];
  if (making.length > 0) out.push(`, ${making.length} ${making.some((l) => l.action === 'writing') ? 'writing' : 'measuring'}`);
  if (waiting > 0) out.push(`, ${waiting} waiting`);
  if (bytes > 0 && s.makingSince !== undefined) out.push(' · ', ...progressSegments(bytes, total, now - s.makingSince));
  return out;
}

function pushOverall(p: NonNullable<ProgressState['push']>, now: number): Line {
  const active = [...p.active.values()];
  const sentNow = active.reduce((n, b) => n + b.sent, 0);
  const moved = p.doneBytes + sentNow;
  const rate = rateOf(p.uploadedBytes + sentNow, now - p.started);
  const out: Segment[] = [['bold', 'push'], ` ${p.done}/${p.blobs} blobs`, ' · ', formatPair(moved, Math.max(p.bytes, moved))];
  if (rate > 0) out.push('  ', formatRate(rate));
  if (rate > 0 && p.bytes > moved) out.push('  ', ['dim', `ETA ${formatEta(((p.bytes - moved) / rate) * 1000)}`]);
  return out;
}

/**
 * The frame for `state` at `now`: every final line, and below them the live block — the scan
 * counter, a bar per layer being made and per blob being uploaded, and an overall line. The
 * block is empty when nothing is under way. A pure function: a test gives events and times and
 * compares lines.
 */
export function renderFrame(s: ProgressState, now: number, options: FrameOptions = {}): Frame {
  const finished = s.finished.slice(options.finishedFrom ?? 0).map(finishedLine);
  const live: Line[] = [];
  let overall: Line | undefined;
  if (s.scan) {
    const sc = s.scan;
    live.push([label(sc.platform, 'reading the store: '), `${sc.done} paths read, ${sc.found} found`, ['dim', ` · ${formatDuration(now - sc.started)}`]]);
  }
  if (s.build && !s.build.done && s.layersDone < s.planned) {
    const active = [...s.layers.values()].sort((a, b) => (a.platform ?? '').localeCompare(b.platform ?? '') || a.index - b.index);
    for (const l of active) if (isMade(l.action)) live.push(layerLine(l, now));
    overall = layersOverall(s, active, now);
  }
  if (s.push && s.push.done < s.push.blobs && !s.finished.some((f) => f.kind === 'pushed')) {
    for (const b of [...s.push.active.values()].sort((x, y) => x.started - y.started)) live.push(blobLine(b, now));
    overall = pushOverall(s.push, now);
  }
  // Keep the block within the terminal, the overall line last: cursor moves cannot reach above the screen.
  const room = Math.max(1, (options.rows ?? Infinity) - 2 - (overall ? 1 : 0));
  if (live.length > room) {
    const more = live.length - (room - 1);
    live.splice(room - 1, live.length, [['dim', `  … and ${more} more`]]);
  }
  if (overall) live.push(overall);
  return { finished, live };
}

const SGR: Record<Style, [string, string]> = {
  green: ['\x1b[32m', '\x1b[39m'],
  yellow: ['\x1b[33m', '\x1b[39m'],
  cyan: ['\x1b[36m', '\x1b[39m'],
  red: ['\x1b[31m', '\x1b[39m'],
  dim: ['\x1b[2m', '\x1b[22m'],
  bold: ['\x1b[1m', '\x1b[22m'],
};

/**
 * A line as text: in colour or not, cut to `width` characters (a line wider than the terminal
 * would wrap, and the redraw would miscount its lines).
 */
export function lineText(line: Line, options: { color: boolean; width?: number }): string {
  let room = options.width ?? Infinity;
  let out = '';
  for (const seg of line) {
    if (room <= 0) break;
    const [style, text] = typeof seg === 'string' ? [undefined, seg] : seg;
    const chars = [...text];
    const cut = chars.length > room ? `${chars.slice(0, Math.max(0, room - 1)).join('')}…` : text;
    room -= Math.min(chars.length, room);
    out += style && options.color ? `${SGR[style][0]}${cut}${SGR[style][1]}` : cut;
  }
  return out;
}
