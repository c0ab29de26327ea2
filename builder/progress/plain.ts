import type { ProgressEvent } from './events.js';
import { formatDuration, formatPair, formatRate, formatSize, rateOf, shortDigest } from './format.js';
import { finishedLine, lineText } from './render.js';
import type { ProgressState } from './state.js';

/** Between two lines about the same thing still under way (a layer's bytes, a scan), in plain mode. */
export const PLAIN_REPEAT_MS = 10_000;

/**
 * The plain lines (a CI log, a file) for `event`, which came at `now`, given the state after it
 * (state.ts): one line per event that starts or ends something. Progress events (bytes, paths read)
 * give a line only once per `repeatMs` for the same layer, blob or scan, so a log stays short and
 * still shows that a long layer moves. `said` keeps, per thing, when it was last reported.
 */
export function plainLines(state: ProgressState, event: ProgressEvent, now: number, said: Map<string, number>, repeatMs: number = PLAIN_REPEAT_MS): string[] {
  const at = 'platform' in event && event.platform ? `[${event.platform}] ` : '';
  // A line about something under way: `repeatMs` after it started, then every `repeatMs`.
  const due = (key: string, since: number): boolean => {
    const last = said.get(key) ?? since;
    if (now - last < repeatMs) return false;
    said.set(key, now);
    return true;
  };
  switch (event.phase) {
    case 'scan': {
      const scan = state.scan;
      return scan && due(`scan ${at}`, scan.started) ? [`${at}reading the store: ${event.done} paths read, ${event.found} found`] : [];
    }
    case 'closure':
      return [`${at}closure: ${event.paths} store paths, ${formatSize(event.narSize)}`];
    case 'plan':
      return [`${at}plan: ${event.layers} layers`];
    case 'layer-start': {
      const what = event.action === 'record' ? 'cached record' : event.action;
      return [`${at}layer ${event.index + 1}/${event.total} (${event.reason}, ${event.paths} paths, ${formatSize(event.narSize)}): ${what}`];
    }
    case 'layer-progress': {
      const layer = state.layers.get(`${event.platform ?? ''}#${event.index}`);
      if (!layer || !due(`layer ${at}${event.index}`, layer.started)) return [];
      const rate = rateOf(event.bytes, now - layer.started);
      return [`${at}layer ${event.index + 1}/${event.total} (${layer.reason}): ${formatPair(event.bytes, Math.max(event.bytes, event.narSize))}${rate > 0 ? `, ${formatRate(rate)}` : ''}`];
    }
    case 'layer-done': {
      const f = state.finished.at(-1);
      const layer = f?.kind === 'layer' ? f.layer : undefined;
      const ms = layer?.finished !== undefined ? layer.finished - layer.started : 0;
      const how =
        layer?.action === 'cached'
          ? ' (cached)'
          : layer?.action === 'record'
            ? ' (cached record; made from the store if an output needs its bytes)'
            : layer?.action === 'measuring'
              ? ` (measured in ${formatDuration(ms)}; made again if an output needs its bytes)`
              : ` (written in ${formatDuration(ms)})`;
      return [`${at}layer ${event.index + 1}/${event.total} (${event.reason}): ${event.digest} ${formatSize(event.size)}${how}`];
    }
    case 'push-start':
      return [`push to ${event.target}: ${event.blobs} blobs, ${formatSize(event.bytes)}${event.alreadyThere ? ' (the registry holds the image already)' : ''}`];
    case 'blob-progress': {
      const blob = state.push?.active.get(event.digest);
      if (!blob) return [];
      const key = `blob ${event.digest}`;
      if (!said.has(key)) {
        said.set(key, now);
        return [`blob ${shortDigest(event.digest)} (${formatSize(event.size)}): uploading`];
      }
      if (!due(key, blob.started)) return [];
      const rate = rateOf(event.sent, now - blob.started);
      return [`blob ${shortDigest(event.digest)}: ${formatPair(event.sent, event.size)} sent${rate > 0 ? `, ${formatRate(rate)}` : ''}`];
    }
    case 'blob-done': {
      const f = state.finished.at(-1);
      const ms = f?.kind === 'blob' && f.blob.finished !== undefined ? f.blob.finished - f.blob.started : 0;
      const how = event.how === 'uploaded' ? `uploaded in ${formatDuration(ms)}` : event.how === 'mounted' ? 'mounted' : 'already there';
      return [`blob ${shortDigest(event.digest)} (${formatSize(event.size)}): ${how}`];
    }
    case 'built':
    case 'pushed': {
      const f = state.finished.at(-1);
      return f ? [lineText(finishedLine(f), { color: false })] : [];
    }
  }
}
