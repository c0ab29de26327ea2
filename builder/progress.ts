import type { Build } from './build/build-image.js';
import type { IndexBuild } from './build/build-index.js';
import type { PushImageOptions } from './transports/registry.js';
import type { BuiltEvent, ProgressEvent } from './progress/events.js';
import { plainLines } from './progress/plain.js';
import { lineText, renderFrame } from './progress/render.js';
import { addLog, applyEvent, initialState } from './progress/state.js';
import { monotonicMs } from './throttle.js';
import { timerDelay } from '../registry-client/timer.js';

export type { BuiltEvent, ProgressEvent, PushEvent } from './progress/events.js';

/**
 * Progress on stderr (stdout stays free for the digest, `--json` and `--stream`). On a terminal:
 * the lines that are final (closure, plan, each layer and blob done, the summary) printed once,
 * and below them a block redrawn in place at most 10 times a second — the store's paths read, a
 * bar per layer being made and per blob being uploaded (bytes, rate, time left), an overall line.
 * Elsewhere (a CI log, a file, or `tty: false`): one plain line per event.
 */
export interface Progress {
  onEvent(event: ProgressEvent): void;
  /** A line from elsewhere (a warning), printed above the block, in order with the rest. */
  log(text: string): void;
  /** Draws the final state and leaves the cursor on a fresh line; later events are dropped. Safe to call twice. */
  close(): void;
}

export interface ProgressOptions {
  stream: NodeJS.WritableStream & { columns?: number; rows?: number };
  /** Redraw bars in place (a terminal) rather than one line per event. */
  tty: boolean;
  /** ANSI colours (terminal mode only). */
  color: boolean;
  /** Milliseconds, any origin; default monotonicMs (throttle.ts). */
  clock?: () => number;
  /** Terminal mode: least time between two redraws (ms); default 100. */
  redrawMs?: number;
  /** Plain mode: least time between two lines about one layer, blob or scan under way (ms); default 10 s. */
  repeatMs?: number;
}

/**
 * How the CLI shows progress on `stream`, from the environment it is given (the library reads
 * none): bars when the stream is a terminal, unless `CI` is set (to anything but `false` or `0`)
 * or `TERM=dumb`; colour on bars unless `NO_COLOR` is set to anything (https://no-color.org).
 */
export function progressMode(isTTY: boolean | undefined, env: Readonly<Record<string, string | undefined>>): { tty: boolean; color: boolean } {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI.toLowerCase() !== 'false' && env.CI !== '0';
  const tty = isTTY === true && !ci && env.TERM !== 'dumb';
  return { tty, color: tty && (env.NO_COLOR === undefined || env.NO_COLOR === '') };
}

export function createProgress(options: ProgressOptions): Progress {
  return options.tty ? terminalProgress(options) : plainProgress(options);
}

function plainProgress({ stream, clock = monotonicMs, repeatMs }: ProgressOptions): Progress {
  const state = initialState(clock());
  const said = new Map<string, number>();
  let closed = false;
  return {
    onEvent(event) {
      if (closed) return;
      const now = clock();
      applyEvent(state, event, now);
      for (const line of plainLines(state, event, now, said, repeatMs)) stream.write(`${line}\n`);
    },
    log(text) {
      stream.write(`${text}\n`);
    },
    close() {
      closed = true;
    },
  };
}

function terminalProgress({ stream, color, clock = monotonicMs, redrawMs = 100 }: ProgressOptions): Progress {
  const state = initialState(clock());
  let printed = 0; // final lines already on the screen
  let liveLines = 0; // lines of the block on the screen, the cursor at the end of its last
  let lastDraw = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const draw = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const now = clock();
    lastDraw = now;
    const width = stream.columns ? stream.columns - 1 : undefined;
    const frame = renderFrame(state, now, { finishedFrom: printed, ...(stream.rows ? { rows: stream.rows } : {}) });
    // Back to the block's first line and clear to the end of the screen, then the new lines.
    let out = liveLines > 0 ? `\r${liveLines > 1 ? `\x1b[${liveLines - 1}A` : ''}\x1b[J` : '';
    // Final lines may wrap (they are never redrawn); the block's lines are cut to the width.
    for (const line of frame.finished) out += `${lineText(line, { color })}\n`;
    printed += frame.finished.length;
    out += frame.live.map((line) => lineText(line, { color, ...(width ? { width } : {}) })).join('\n');
    liveLines = frame.live.length;
    if (out) stream.write(out);
  };
  // Events change the state at once; the screen follows at most every `redrawMs`, never later.
  const schedule = () => {
    if (timer) return;
    const wait = redrawMs - (clock() - lastDraw);
    if (wait <= 0) draw();
    else timer = setTimeout(draw, timerDelay(wait)).unref();
  };
  return {
    onEvent(event) {
      if (closed) return;
      applyEvent(state, event, clock());
      schedule();
    },
    log(text) {
      if (closed) {
        stream.write(`${text}\n`);
        return;
      }
      addLog(state, text);
      draw();
    },
    close() {
      if (closed) return;
      closed = true;
      draw();
      // A block still on the screen (a failed build's last state) stays; the cursor goes below it.
      if (liveLines > 0) stream.write('\n');
      liveLines = 0;
    },
  };
}

/** The push options that report a push's progress as events (blob by blob, bytes as they are sent). */
export function pushProgress(progress: Progress, target: string): Pick<PushImageOptions, 'onStart' | 'onBlob' | 'onBlobProgress'> {
  return {
    onStart: (e) => progress.onEvent({ phase: 'push-start', target, ...e }),
    onBlobProgress: (e) => progress.onEvent({ phase: 'blob-progress', ...e }),
    onBlob: (e) => progress.onEvent({ phase: 'blob-done', ...e }),
  };
}

/** The summary event of a build: its image (or index), its layers and their bytes. */
export function builtEvent(built: Build | IndexBuild): BuiltEvent {
  const images = 'index' in built ? built.builds.map((b) => b.image) : [built.image];
  const layers = images.flatMap((i) => i.layers);
  const digest = 'index' in built ? built.index.descriptor.digest : built.image.descriptor.digest;
  return { phase: 'built', digest, layers: layers.length, size: layers.reduce((n, l) => n + l.size, 0), ...('index' in built ? { platforms: built.builds.length } : {}) };
}
