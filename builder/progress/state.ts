import type { LayerAction } from '../cache/layer-source.js';
import type { BuiltEvent, ProgressEvent, PushEvent } from './events.js';

/** One layer of a build, from its start: what is done to it, the tar bytes made so far, how it ended. */
export interface LayerState {
  platform?: string;
  index: number;
  total: number;
  reason: string;
  paths: number;
  narSize: number;
  action: LayerAction;
  bytes: number;
  started: number;
  /** Set when it is done. */
  finished?: number;
  digest?: string;
  size?: number;
}

/** One blob of a push, from the start of its upload (or its end, for one mounted or already there). */
export interface BlobState {
  digest: string;
  size: number;
  sent: number;
  started: number;
  finished?: number;
  how?: 'uploaded' | 'mounted' | 'skipped';
}

/** A line that is final once it exists: printed once, above the lines that still change. */
export type Finished =
  | { kind: 'closure'; platform?: string; paths: number; narSize: number; scanned?: { done: number; ms: number } }
  | { kind: 'plan'; platform?: string; layers: number }
  | { kind: 'layer'; layer: LayerState }
  | { kind: 'push-start'; target: string; blobs: number; bytes: number; alreadyThere: boolean }
  | { kind: 'blob'; blob: BlobState }
  | { kind: 'built'; event: BuiltEvent; counts: LayerCounts; ms: number }
  | { kind: 'pushed'; event: Extract<PushEvent, { phase: 'pushed' }>; ms: number }
  | { kind: 'log'; text: string };

/** How the layers that are done were had. */
export interface LayerCounts {
  cached: number;
  record: number;
  written: number;
  measured: number;
}

/**
 * Everything the display knows, built from events alone (`applyEvent`), so that a frame is a
 * function of the state and the time (render.ts) and a test can feed events with their times.
 */
export interface ProgressState {
  /** When the first event came. */
  started?: number;
  /** A store's paths being read, until the closure is known. */
  scan?: { platform?: string; done: number; found: number; started: number };
  /** Final lines, in the order they became final. */
  finished: Finished[];
  /** Layers started and not done, by platform and index. */
  layers: Map<string, LayerState>;
  /** Layers planned (every platform's so far), and how many of them are done. */
  planned: number;
  layersDone: number;
  counts: LayerCounts;
  /** The closures' NAR size (every platform's so far): about what making every layer reads. */
  closureBytes: number;
  /** NAR size of layers not made (cached, or a record): what making the rest does not read. */
  skippedBytes: number;
  /** Tar bytes of the layers made so far that are done; and when the first one was started. */
  madeBytes: number;
  makingSince?: number;
  build?: { done: boolean };
  push?: {
    target: string;
    blobs: number;
    bytes: number;
    started: number;
    /** Uploads under way, by digest. */
    active: Map<string, BlobState>;
    done: number;
    /** Bytes of the blobs done (uploaded, mounted or already there), and of those uploaded alone. */
    doneBytes: number;
    uploadedBytes: number;
  };
}

/** The state before any event; `started`: when the command began (the summary's time counts from it), else the first event. */
export function initialState(started?: number): ProgressState {
  return {
    ...(started !== undefined ? { started } : {}),
    finished: [],
    layers: new Map(),
    planned: 0,
    layersDone: 0,
    counts: { cached: 0, record: 0, written: 0, measured: 0 },
    closureBytes: 0,
    skippedBytes: 0,
    madeBytes: 0,
  };
}

const layerKey = (platform: string | undefined, index: number) => `${platform ?? ''}#${index}`;

/** Whether a layer's bytes are made now (written or measured), rather than taken from the cache. */
export const isMade = (action: LayerAction): boolean => action === 'writing' || action === 'measuring';

/** The state after `event`, which came at `now` (ms, any clock). Mutates and returns `state`. */
export function applyEvent(state: ProgressState, event: ProgressEvent, now: number): ProgressState {
  state.started ??= now;
  const platform = 'platform' in event ? event.platform : undefined;
  switch (event.phase) {
    case 'scan':
      state.scan = { ...(platform ? { platform } : {}), done: event.done, found: event.found, started: state.scan?.started ?? now };
      break;
    case 'closure': {
      const scan = state.scan;
      state.scan = undefined;
      state.closureBytes += event.narSize;
      state.finished.push({ kind: 'closure', ...(platform ? { platform } : {}), paths: event.paths, narSize: event.narSize, ...(scan ? { scanned: { done: scan.done, ms: now - scan.started } } : {}) });
      break;
    }
    case 'plan':
      state.planned += event.layers;
      state.build = { done: false };
      state.finished.push({ kind: 'plan', ...(platform ? { platform } : {}), layers: event.layers });
      break;
    case 'layer-start': {
      const layer: LayerState = { ...(platform ? { platform } : {}), index: event.index, total: event.total, reason: event.reason, paths: event.paths, narSize: event.narSize, action: event.action, bytes: 0, started: now };
      if (isMade(event.action)) state.makingSince ??= now;
      else state.skippedBytes += event.narSize;
      state.layers.set(layerKey(platform, event.index), layer);
      break;
    }
    case 'layer-progress': {
      const layer = state.layers.get(layerKey(platform, event.index));
      if (layer) layer.bytes = event.bytes;
      break;
    }
    case 'layer-done': {
      const key = layerKey(platform, event.index);
      // A layer-done without its start (a caller's own events): taken as written.
      const layer = state.layers.get(key) ?? { ...(platform ? { platform } : {}), index: event.index, total: event.total, reason: event.reason, paths: 0, narSize: 0, action: 'writing' as const, bytes: 0, started: now };
      state.layers.delete(key);
      layer.finished = now;
      layer.digest = event.digest;
      layer.size = event.size;
      if (isMade(layer.action)) state.madeBytes += layer.bytes;
      state.layersDone++;
      const c = state.counts;
      if (layer.action === 'cached') c.cached++;
      else if (layer.action === 'record') c.record++;
      else if (layer.action === 'measuring') c.measured++;
      else c.written++;
      state.finished.push({ kind: 'layer', layer });
      break;
    }
    case 'built':
      if (state.build) state.build.done = true;
      state.finished.push({ kind: 'built', event, counts: { ...state.counts }, ms: now - (state.started ?? now) });
      break;
    case 'push-start':
      state.push = { target: event.target, blobs: event.blobs, bytes: event.bytes, started: now, active: new Map(), done: 0, doneBytes: 0, uploadedBytes: 0 };
      state.finished.push({ kind: 'push-start', target: event.target, blobs: event.blobs, bytes: event.bytes, alreadyThere: event.alreadyThere });
      break;
    case 'blob-progress': {
      const push = state.push;
      if (!push) break;
      const blob = push.active.get(event.digest);
      if (blob) blob.sent = event.sent;
      else push.active.set(event.digest, { digest: event.digest, size: event.size, sent: event.sent, started: now });
      break;
    }
    case 'blob-done': {
      const push = state.push;
      if (!push) break;
      const blob = push.active.get(event.digest) ?? { digest: event.digest, size: event.size, sent: 0, started: now };
      push.active.delete(event.digest);
      blob.finished = now;
      blob.how = event.how;
      if (event.how === 'uploaded') {
        blob.sent = event.size;
        push.uploadedBytes += event.size;
      }
      push.done++;
      push.doneBytes += event.size;
      state.finished.push({ kind: 'blob', blob });
      break;
    }
    case 'pushed':
      state.finished.push({ kind: 'pushed', event, ms: now - (state.push?.started ?? now) });
      if (state.push) state.push.active.clear();
      break;
  }
  return state;
}

/** A line from elsewhere (a warning), kept in order with the final lines. */
export function addLog(state: ProgressState, text: string): ProgressState {
  state.finished.push({ kind: 'log', text });
  return state;
}
