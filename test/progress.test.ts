import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { BlobStore } from '../builder/blobs/blob-store.js';
import type { BuildEvent } from '../builder/build/context.js';
import { buildImage } from '../builder/build/build-image.js';
import { measureLayer, writeLayer } from '../builder/layer/write-layer.js';
import type { LayerEntry, LayerWriteOptions } from '../builder/layer/types.js';
import { createProgress, progressMode, pushProgress, type ProgressEvent } from '../builder/progress.js';
import { plainLines } from '../builder/progress/plain.js';
import { lineText, renderFrame } from '../builder/progress/render.js';
import { applyEvent, initialState } from '../builder/progress/state.js';
import { resolveSpec } from '../builder/spec/resolve.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { throttle } from '../builder/throttle.js';
import { BuildWorkerPool } from '../builder/workers/pool.js';
import { RegistryClient, parseReference, pushImage } from '../registry-client/index.js';
import { runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const MiB = 1024 * 1024;
const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;

/** Events with their times (ms), fed to a state; the frame at `now` as plain text lines. */
function frameAt(events: [number, ProgressEvent][], now: number, rows?: number): { finished: string[]; live: string[] } {
  const state = initialState();
  for (const [t, e] of events) applyEvent(state, e, t);
  const f = renderFrame(state, now, rows ? { rows } : {});
  const text = (l: Parameters<typeof lineText>[0]) => lineText(l, { color: false });
  return { finished: f.finished.map(text), live: f.live.map(text) };
}

const buildEvents: [number, ProgressEvent][] = [
  [0, { phase: 'scan', done: 1, found: 3 }],
  [500, { phase: 'scan', done: 2, found: 4 }],
  [1000, { phase: 'closure', paths: 4, narSize: 300 * MiB }],
  [1000, { phase: 'plan', layers: 4 }],
  [1000, { phase: 'layer-start', index: 0, total: 4, reason: 'popularity', paths: 1, narSize: 50 * MiB, action: 'cached' }],
  [1000, { phase: 'layer-done', index: 0, total: 4, reason: 'popularity', digest: DIGEST('a'), size: 20 * MiB, origin: 'cached' }],
  [1000, { phase: 'layer-start', index: 2, total: 4, reason: 'popularity', paths: 2, narSize: 200 * MiB, action: 'writing' }],
  [1000, { phase: 'layer-start', index: 1, total: 4, reason: 'popularity', paths: 1, narSize: 50 * MiB, action: 'writing' }],
  [3000, { phase: 'layer-progress', index: 2, total: 4, bytes: 100 * MiB, narSize: 200 * MiB }],
  [3000, { phase: 'layer-progress', index: 1, total: 4, bytes: 40 * MiB, narSize: 50 * MiB }],
];

test('the frames of a build: the scan counter, then final lines above a bar per layer made and an overall line', () => {
  assert.deepEqual(frameAt(buildEvents.slice(0, 2), 700), {
    finished: [],
    live: ['reading the store: 2 paths read, 4 found · 0.7 s'],
  });
  assert.deepEqual(frameAt(buildEvents, 3000), {
    finished: [
      'closure: 4 store paths, 300.0 MiB (2 read in 1.0 s)',
      'plan: 4 layers',
      '✓ layer 1/4 popularity       sha256:aaaaaaaaaaaa  20.0 MiB  cached',
    ],
    live: [
      '  layer 2/4 popularity       [===================>    ] 40.0/50.0 MiB  20.0 MiB/s  ETA 1s',
      '  layer 3/4 popularity       [============>           ] 100.0/200.0 MiB  50.0 MiB/s  ETA 2s',
      // 250 MiB left to make: the closure less the cached layer; 140 MiB made in 2 s.
      'layers 1/4 done (1 cached), 2 writing, 1 waiting · [=============>          ] 140.0/250.0 MiB  70.0 MiB/s  ETA 2s',
    ],
  });
  const done: [number, ProgressEvent][] = [
    ...buildEvents,
    [3500, { phase: 'layer-done', index: 1, total: 4, reason: 'popularity', digest: DIGEST('b'), size: 48 * MiB, origin: 'written' }],
    [5000, { phase: 'layer-progress', index: 2, total: 4, bytes: 201 * MiB, narSize: 200 * MiB }],
    [5000, { phase: 'layer-done', index: 2, total: 4, reason: 'popularity', digest: DIGEST('c'), size: 190 * MiB, origin: 'written' }],
    [5000, { phase: 'layer-start', index: 3, total: 4, reason: 'customisation', paths: 0, narSize: 0, action: 'record' }],
    [5000, { phase: 'layer-done', index: 3, total: 4, reason: 'customisation', digest: DIGEST('d'), size: 300, origin: 'deferred' }],
    [5000, { phase: 'built', digest: DIGEST('e'), layers: 5, size: 260 * MiB }],
  ];
  // A layer's bar while its tar outgrows the NAR size: full width never, no ETA.
  assert.deepEqual(frameAt(done.slice(0, 12), 5000).live[0], '  layer 3/4 popularity       [=======================>] 201.0/201.0 MiB  50.3 MiB/s');
  assert.deepEqual(frameAt(done, 5000), {
    finished: [
      'closure: 4 store paths, 300.0 MiB (2 read in 1.0 s)',
      'plan: 4 layers',
      '✓ layer 1/4 popularity       sha256:aaaaaaaaaaaa  20.0 MiB  cached',
      '✓ layer 2/4 popularity       sha256:bbbbbbbbbbbb  48.0 MiB  written in 2.5 s (16.0 MiB/s)',
      '✓ layer 3/4 popularity       sha256:cccccccccccc 190.0 MiB  written in 4.0 s (50.3 MiB/s)',
      '✓ layer 4/4 customisation    sha256:dddddddddddd     300 B  cached record (made from the store if an output needs its bytes)',
      `built ${DIGEST('e')} · 5 layers, 260.0 MiB · 2 reused, 2 written, 1 from the base image · 5.0 s`,
    ],
    live: [],
  });
});

test('the frames of a push: a bar per blob being uploaded, the blobs done above, and the summary', () => {
  const events: [number, ProgressEvent][] = [
    [0, { phase: 'push-start', target: 'localhost:5000/app:1', blobs: 3, bytes: 110 * MiB, alreadyThere: false }],
    [100, { phase: 'blob-done', digest: DIGEST('1'), size: 10 * MiB, how: 'skipped' }],
    [100, { phase: 'blob-progress', digest: DIGEST('2'), size: 100 * MiB, sent: 0 }],
    [1100, { phase: 'blob-progress', digest: DIGEST('2'), size: 100 * MiB, sent: 25 * MiB }],
  ];
  assert.deepEqual(frameAt(events, 1100), {
    finished: ['push to localhost:5000/app:1: 3 blobs, 110.0 MiB', '✓ blob sha256:111111111111    10.0 MiB  already there'],
    live: ['  blob sha256:222222222222   [======>                 ] 25.0/100.0 MiB  25.0 MiB/s  ETA 3s', 'push 1/3 blobs · 35.0/110.0 MiB  22.7 MiB/s  ETA 4s'],
  });
  events.push(
    [4100, { phase: 'blob-done', digest: DIGEST('2'), size: 100 * MiB, how: 'uploaded' }],
    [4100, { phase: 'blob-done', digest: DIGEST('3'), size: 1024, how: 'mounted' }],
    [4200, { phase: 'pushed', reference: 'localhost:5000/app@sha256:x', uploaded: 1, mounted: 1, skipped: 1, bytesSent: 100 * MiB, alreadyThere: false }],
  );
  assert.deepEqual(frameAt(events, 4200), {
    finished: [
      'push to localhost:5000/app:1: 3 blobs, 110.0 MiB',
      '✓ blob sha256:111111111111    10.0 MiB  already there',
      '✓ blob sha256:222222222222   100.0 MiB  uploaded in 4.0 s (25.0 MiB/s)',
      '✓ blob sha256:333333333333     1.0 KiB  mounted',
      'push done: 1 blobs uploaded (100.0 MiB at 23.8 MiB/s), 1 mounted, 1 already there · 4.2 s',
    ],
    live: [],
  });
});

test('the live block stays within the terminal: more bars than rows are counted, the overall line stays last', () => {
  const events: [number, ProgressEvent][] = [[0, { phase: 'plan', layers: 8 }]];
  for (let i = 0; i < 8; i++) events.push([0, { phase: 'layer-start', index: i, total: 8, reason: 'auto', paths: 1, narSize: MiB, action: 'writing' }]);
  const { live } = frameAt(events, 1000, 6);
  assert.equal(live.length, 4);
  assert.match(live[0]!, /layer 1\/8/);
  assert.match(live[1]!, /layer 2\/8/);
  assert.equal(live[2], '  … and 6 more');
  assert.match(live[3]!, /^layers 0\/8 done, 8 writing$/);
});

test('a line is cut to the terminal width, and coloured only when asked', () => {
  const line = [['green', '✓ '], 'layer 1/2 auto', ['dim', ' sha256:abc']] as const;
  assert.equal(lineText(line, { color: false }), '✓ layer 1/2 auto sha256:abc');
  assert.equal(lineText(line, { color: false, width: 10 }), '✓ layer 1…');
  assert.equal(lineText(line, { color: true }), '\x1b[32m✓ \x1b[39mlayer 1/2 auto\x1b[2m sha256:abc\x1b[22m');
});

test('plain mode: one line per event that starts or ends something; progress at most every 10 s per layer, blob or scan', () => {
  const state = initialState();
  const said = new Map<string, number>();
  const out: string[] = [];
  const feed = (t: number, e: ProgressEvent) => {
    applyEvent(state, e, t);
    out.push(...plainLines(state, e, t, said));
  };
  feed(0, { phase: 'scan', done: 1, found: 5 });
  feed(9_000, { phase: 'scan', done: 2, found: 5 });
  feed(10_000, { phase: 'scan', done: 3, found: 5 });
  feed(11_000, { phase: 'closure', paths: 5, narSize: 2 * MiB });
  feed(11_000, { phase: 'plan', layers: 3 });
  feed(11_000, { phase: 'layer-start', index: 0, total: 3, reason: 'auto', paths: 2, narSize: MiB, action: 'cached' });
  feed(11_000, { phase: 'layer-done', index: 0, total: 3, reason: 'auto', digest: DIGEST('a'), size: 1000, origin: 'cached' });
  feed(11_000, { phase: 'layer-start', index: 1, total: 3, reason: 'auto', paths: 3, narSize: MiB, action: 'writing' });
  feed(12_000, { phase: 'layer-progress', index: 1, total: 3, bytes: MiB / 8, narSize: MiB });
  feed(21_000, { phase: 'layer-progress', index: 1, total: 3, bytes: MiB / 2, narSize: MiB });
  feed(22_000, { phase: 'layer-progress', index: 1, total: 3, bytes: MiB, narSize: MiB });
  feed(22_000, { phase: 'layer-done', index: 1, total: 3, reason: 'auto', digest: DIGEST('b'), size: 2048, origin: 'written' });
  feed(22_000, { phase: 'layer-start', index: 2, total: 3, reason: 'customisation', paths: 0, narSize: 0, action: 'record' });
  feed(22_000, { phase: 'layer-done', index: 2, total: 3, reason: 'customisation', digest: DIGEST('c'), size: 100, origin: 'deferred' });
  feed(22_000, { phase: 'built', digest: DIGEST('d'), layers: 3, size: 3148 });
  feed(23_000, { phase: 'push-start', target: 'localhost:5000/x:1', blobs: 2, bytes: 3 * MiB, alreadyThere: false });
  feed(23_000, { phase: 'blob-done', digest: DIGEST('e'), size: MiB, how: 'skipped' });
  feed(23_000, { phase: 'blob-progress', digest: DIGEST('f'), size: 2 * MiB, sent: 0 });
  feed(24_000, { phase: 'blob-progress', digest: DIGEST('f'), size: 2 * MiB, sent: MiB / 2 });
  feed(33_000, { phase: 'blob-progress', digest: DIGEST('f'), size: 2 * MiB, sent: MiB });
  feed(35_000, { phase: 'blob-done', digest: DIGEST('f'), size: 2 * MiB, how: 'uploaded' });
  feed(35_000, { phase: 'pushed', reference: 'localhost:5000/x@sha256:0', uploaded: 1, mounted: 0, skipped: 1, bytesSent: 2 * MiB, alreadyThere: false });
  assert.deepEqual(out, [
    'reading the store: 3 paths read, 5 found',
    'closure: 5 store paths, 2.0 MiB',
    'plan: 3 layers',
    'layer 1/3 (auto, 2 paths, 1.0 MiB): cached',
    `layer 1/3 (auto): ${DIGEST('a')} 1000 B (cached)`,
    'layer 2/3 (auto, 3 paths, 1.0 MiB): writing',
    'layer 2/3 (auto): 0.5/1.0 MiB, 51.2 KiB/s',
    `layer 2/3 (auto): ${DIGEST('b')} 2.0 KiB (written in 11.0 s)`,
    'layer 3/3 (customisation, 0 paths, 0 B): cached record',
    `layer 3/3 (customisation): ${DIGEST('c')} 100 B (cached record; made from the store if an output needs its bytes)`,
    `built ${DIGEST('d')} · 3 layers, 3.1 KiB · 2 reused, 1 written · 22.0 s`,
    'push to localhost:5000/x:1: 2 blobs, 3.0 MiB',
    'blob sha256:eeeeeeeeeeee (1.0 MiB): already there',
    'blob sha256:ffffffffffff (2.0 MiB): uploading',
    'blob sha256:ffffffffffff: 1.0/2.0 MiB sent, 102.4 KiB/s',
    'blob sha256:ffffffffffff (2.0 MiB): uploaded in 12.0 s',
    'push done: 1 blobs uploaded (2.0 MiB at 170.7 KiB/s), 0 mounted, 1 already there · 12.0 s',
  ]);
});

test('plain mode names the platform of a multi-platform build, and a measured layer (no cache) says so', () => {
  const state = initialState();
  const said = new Map<string, number>();
  const lines = (t: number, e: ProgressEvent) => plainLines(applyEvent(state, e, t), e, t, said);
  assert.deepEqual(lines(0, { phase: 'layer-start', index: 0, total: 2, reason: 'auto', paths: 1, narSize: 10, action: 'measuring', platform: 'linux/arm64' }), ['[linux/arm64] layer 1/2 (auto, 1 paths, 10 B): measuring']);
  assert.deepEqual(lines(1500, { phase: 'layer-done', index: 0, total: 2, reason: 'auto', digest: DIGEST('a'), size: 10, origin: 'deferred', platform: 'linux/arm64' }), [
    `[linux/arm64] layer 1/2 (auto): ${DIGEST('a')} 10 B (measured in 1.5 s; made again if an output needs its bytes)`,
  ]);
});

test('CI set forces plain lines even on a terminal; NO_COLOR turns colour off; not a terminal is plain', () => {
  assert.deepEqual(progressMode(true, {}), { tty: true, color: true });
  assert.deepEqual(progressMode(true, { CI: 'true' }), { tty: false, color: false });
  assert.deepEqual(progressMode(true, { CI: '1' }), { tty: false, color: false });
  assert.deepEqual(progressMode(true, { CI: 'false' }), { tty: true, color: true });
  assert.deepEqual(progressMode(true, { NO_COLOR: '1' }), { tty: true, color: false });
  assert.deepEqual(progressMode(true, { NO_COLOR: '' }), { tty: true, color: true });
  assert.deepEqual(progressMode(true, { TERM: 'dumb' }), { tty: false, color: false });
  assert.deepEqual(progressMode(false, {}), { tty: false, color: false });
  assert.deepEqual(progressMode(undefined, {}), { tty: false, color: false });
});

/** A terminal-like stream that keeps what is written. */
function fakeTerminal(columns = 100, rows = 20): Writable & { text: string; columns: number; rows: number; isTTY: boolean } {
  const s = new Writable({
    write(chunk: Buffer, _enc, done) {
      s.text += chunk.toString();
      done();
    },
  }) as Writable & { text: string; columns: number; rows: number; isTTY: boolean };
  s.text = '';
  s.columns = columns;
  s.rows = rows;
  s.isTTY = true;
  return s;
}

/** The screen a terminal would show after `text` (enough of ANSI for our output: \r, \n, cursor up, clear below, SGR). */
function screen(text: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  let col = 0;
  for (let i = 0; i < text.length; ) {
    const esc = /^\x1b\[(\d*)([AJm])/.exec(text.slice(i, i + 8));
    if (esc) {
      if (esc[2] === 'A') row = Math.max(0, row - Number(esc[1] || 1));
      if (esc[2] === 'J') {
        lines[row] = lines[row]!.slice(0, col);
        lines.length = row + 1;
      }
      i += esc[0].length;
      continue;
    }
    const ch = text[i++]!;
    if (ch === '\r') col = 0;
    else if (ch === '\n') {
      row++;
      col = 0;
      lines[row] ??= '';
    } else {
      const l = lines[row]!;
      lines[row] = l.slice(0, col) + ch + l.slice(col + 1);
      col++;
    }
  }
  return lines;
}

test('on a terminal: redraws at most every interval, never drops the final state, and leaves the screen clean', () => {
  let now = 0;
  const term = fakeTerminal();
  const p = createProgress({ stream: term, tty: true, color: false, clock: () => now, redrawMs: 1_000_000 });
  p.onEvent({ phase: 'plan', layers: 2 }); // drawn at once (the first draw)
  p.onEvent({ phase: 'layer-start', index: 0, total: 2, reason: 'auto', paths: 1, narSize: MiB, action: 'writing' });
  const first = term.text;
  now = 50;
  for (let b = 1; b <= 8; b++) p.onEvent({ phase: 'layer-progress', index: 0, total: 2, bytes: (b * MiB) / 8, narSize: MiB });
  assert.equal(term.text, first, 'held back within the interval');
  p.onEvent({ phase: 'layer-done', index: 0, total: 2, reason: 'auto', digest: DIGEST('a'), size: 99, origin: 'written' });
  p.onEvent({ phase: 'layer-start', index: 1, total: 2, reason: 'customisation', paths: 0, narSize: 0, action: 'cached' });
  p.onEvent({ phase: 'layer-done', index: 1, total: 2, reason: 'customisation', digest: DIGEST('b'), size: 9, origin: 'cached' });
  p.onEvent({ phase: 'built', digest: DIGEST('c'), layers: 2, size: 108 });
  p.close();
  p.onEvent({ phase: 'plan', layers: 9 }); // after close: dropped
  assert.doesNotMatch(term.text, /\x1b\[\d*m/, 'no colour');
  assert.deepEqual(screen(term.text), [
    'plan: 2 layers',
    '✓ layer 1/2 auto             sha256:aaaaaaaaaaaa      99 B  written in 0.1 s',
    '✓ layer 2/2 customisation    sha256:bbbbbbbbbbbb       9 B  cached',
    `built ${DIGEST('c')} · 2 layers, 108 B · 1 reused, 1 written · 0.1 s`,
    '',
  ]);
});

test('on a terminal: the block is redrawn in place, a log line goes above it, and colour follows the option', () => {
  let now = 0;
  const term = fakeTerminal(60, 20);
  const p = createProgress({ stream: term, tty: true, color: true, clock: () => now, redrawMs: 0 });
  p.onEvent({ phase: 'plan', layers: 2 });
  p.onEvent({ phase: 'layer-start', index: 0, total: 2, reason: 'auto', paths: 1, narSize: 10 * MiB, action: 'writing' });
  now = 1000;
  p.onEvent({ phase: 'layer-progress', index: 0, total: 2, bytes: 5 * MiB, narSize: 10 * MiB });
  p.log('warning: something');
  assert.match(term.text, /\x1b\[36m\[/, 'a coloured bar');
  const shown = screen(term.text.replace(/\x1b\[\d+m/g, ''));
  assert.deepEqual(shown.slice(0, 2), ['plan: 2 layers', 'warning: something']);
  // Cut to the width: a wrapped line would throw the redraw off by a line.
  assert.match(shown[2]!, /^ {2}layer 1\/2 auto {13}\[=+> *\] 5\.…$/);
  assert.match(shown[3]!, /^layers 0\/2 done, 1 writing, 1 waiting/);
  assert.ok(shown.every((l) => [...l].length < 60), 'every line within the width');
  p.close();
  // A failed build's last state stays on the screen, the cursor below it.
  assert.ok(term.text.endsWith('\n'));
});

test('throttle: the first value at once, then at most one per interval, and flush delivers the last', () => {
  let now = 0;
  const got: number[] = [];
  const t = throttle((v: number) => got.push(v), 100, () => now);
  t(1);
  now = 10;
  t(2);
  now = 50;
  t(3);
  assert.deepEqual(got, [1]);
  now = 120;
  t(4);
  assert.deepEqual(got, [1, 4]);
  now = 130;
  t(5);
  t.flush();
  t.flush();
  assert.deepEqual(got, [1, 4, 5], 'the final value, once');
});

const options: LayerWriteOptions = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'gzip' };
const entries = (): LayerEntry[] => [
  { kind: 'directory', path: 'data', mode: 0o755 },
  ...Array.from({ length: 6 }, (_, i): LayerEntry => ({ kind: 'file', path: `data/f${i}`, mode: 0o444, content: { from: 'bytes', data: Buffer.alloc(700_000, i) } })),
];

test('a layer written with a progress callback has the same bytes, and its last report is the whole tar', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'imgbuild-progress-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const reports: number[] = [];
  const withProgress = await writeLayer(entries(), { ...options, onProgress: (n) => reports.push(n) }, new BlobStore(join(dir, 'a')));
  const without = await writeLayer(entries(), options, new BlobStore(join(dir, 'b')));
  assert.deepEqual(withProgress, without);
  assert.ok(reports.length >= 1);
  assert.equal(reports.at(-1), without.uncompressedSize);
  assert.deepEqual([...reports].sort((x, y) => x - y), reports, 'never backwards');
  const measured: number[] = [];
  assert.deepEqual(await measureLayer(entries(), { ...options, onProgress: (n) => measured.push(n) }), without);
  assert.equal(measured.at(-1), without.uncompressedSize);
});

/** A directory store of three paths (a references b), each with `size` bytes in one file. */
async function makeStore(root: string, size: number): Promise<{ dir: string; paths: string[] }> {
  const dir = join(root, 'store');
  const names = ['a0000000000000000000000000000000-a', 'b0000000000000000000000000000000-b', 'c0000000000000000000000000000000-c'].map((n) => n.replace(/0/g, '1'));
  for (const [i, name] of names.entries()) {
    await mkdir(join(dir, name), { recursive: true });
    const ref = i === 0 ? `/nix/store/${names[1]}` : '';
    await writeFile(join(dir, name, 'file'), Buffer.concat([Buffer.from(ref), Buffer.alloc(size, i + 1)]));
  }
  return { dir, paths: names.map((n) => `/nix/store/${n}`) };
}

test('a directory store reports each path it reads; a worker reports a layer\'s bytes as it writes', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'imgbuild-progress-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const { dir, paths } = await makeStore(root, 10);
  const seen: { done: number; found: number }[] = [];
  const graph = await new DirectoryStoreSource(dir).closure([paths[0]!], { onProgress: (p) => seen.push(p) });
  assert.equal(graph.paths.length, 2);
  assert.deepEqual(seen.at(-1), { done: 2, found: 2 });

  const pool = new BuildWorkerPool(1);
  t.after(() => pool.close());
  const big = join(root, 'big');
  await mkdir(big);
  await writeFile(join(big, 'file'), Buffer.alloc(3 * MiB, 7));
  const reports: number[] = [];
  const blob = await pool.writeStoreLayer({ paths: ['/nix/store/big'], fsPaths: [big], storeDir: '/nix/store', header: options.header, compressor: 'gzip', blobRoot: join(root, 'blobs') }, undefined, (n) => reports.push(n));
  assert.equal(reports.at(-1), blob.uncompressedSize);
});

test('a build reports the scan, what each layer is (writing, then cached), and its bytes; the image is the same with or without events', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'imgbuild-progress-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const { dir, paths } = await makeStore(root, 2 * MiB);
  const spec = resolveSpec({ name: 'p', tag: '1', architecture: 'amd64', contents: [paths[0]!, paths[2]!] }, { file: join(root, 'image.json'), env: {} });
  const build = async (cacheDir: string, events?: BuildEvent[]) =>
    buildImage(spec, { store: new DirectoryStoreSource(dir, '/nix/store', { cacheDir: join(cacheDir, 'scan') }), cacheDir, workers: false, ...(events ? { onEvent: (e) => events.push(e) } : {}) });
  const quiet = await build(join(root, 'quiet'));
  const events: BuildEvent[] = [];
  const first = await build(join(root, 'cache'), events);
  assert.equal(first.image.descriptor.digest, quiet.image.descriptor.digest);
  assert.deepEqual(events.filter((e) => e.phase === 'scan').at(-1), { phase: 'scan', done: 3, found: 3 });
  const starts = events.filter((e) => e.phase === 'layer-start');
  assert.deepEqual(new Set(starts.map((e) => e.action)), new Set(['writing']));
  // Each store layer's last report comes before its end and is at least its NAR size (the tar has headers too).
  for (const s of starts.filter((e) => e.narSize > 0)) {
    const last = events.filter((e): e is Extract<BuildEvent, { phase: 'layer-progress' }> => e.phase === 'layer-progress' && e.index === s.index).at(-1);
    assert.ok(last && last.bytes >= s.narSize, `layer ${s.index}: ${last?.bytes} of ${s.narSize}`);
    assert.ok(events.indexOf(last) < events.findIndex((e) => e.phase === 'layer-done' && e.index === s.index));
  }
  const again: BuildEvent[] = [];
  await build(join(root, 'cache'), again);
  assert.deepEqual(new Set(again.filter((e) => e.phase === 'layer-start').map((e) => e.action)), new Set(['cached']));
  assert.deepEqual(again.filter((e) => e.phase === 'layer-progress'), []);
});

/** Just enough of a registry for a push: no blob or manifest is there; uploads are taken whole or in chunks. */
async function tinyRegistry(t: { after: (fn: () => Promise<void>) => void }): Promise<{ host: string; blobs: Map<string, Buffer> }> {
  const blobs = new Map<string, Buffer>();
  const partial = new Map<string, Buffer[]>();
  let next = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      const body = Buffer.concat(chunks);
      const end = (status: number, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-length': '0', ...headers });
        res.end();
      };
      if (url.pathname === '/v2/') return end(200);
      if (req.method === 'HEAD') return end(404);
      if (req.method === 'POST' && url.pathname.endsWith('/blobs/uploads/')) {
        const id = String(next++);
        partial.set(id, []);
        return end(202, { location: `/upload/${id}` });
      }
      if (url.pathname.startsWith('/upload/')) {
        const id = url.pathname.slice('/upload/'.length);
        partial.get(id)!.push(body);
        const held = Buffer.concat(partial.get(id)!);
        if (req.method === 'PATCH') return end(202, { location: `/upload/${id}`, range: `0-${held.length - 1}` });
        const digest = url.searchParams.get('digest')!;
        assert.equal(`sha256:${createHash('sha256').update(held).digest('hex')}`, digest);
        blobs.set(digest, held);
        return end(201, { 'docker-content-digest': digest });
      }
      // As registries do: the digest of what was stored (a push reads back a manifest answered without it).
      if (req.method === 'PUT' && url.pathname.includes('/manifests/')) return end(201, { 'docker-content-digest': `sha256:${createHash('sha256').update(body).digest('hex')}` });
      end(404);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, blobs };
}

for (const chunkSize of [0, 1024 * 1024]) {
  test(`a push reports its blobs, and each upload's bytes as they are sent (${chunkSize ? 'in chunks' : 'one PUT'})`, async (t) => {
    const { host, blobs } = await tinyRegistry(t);
    const client = new RegistryClient({ insecureRegistries: [host], credentials: async () => undefined });
    t.after(() => client.close());
    const big = Buffer.alloc(3 * MiB + 5, 3);
    const config = Buffer.from('{}');
    const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as const;
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: sha(config), size: 2 }, layers: [{ digest: sha(big), size: big.length }] }));
    const events: ProgressEvent[] = [];
    const progress = { onEvent: (e: ProgressEvent) => events.push(e), log: () => {}, close: () => {} };
    const { Readable } = await import('node:stream');
    // A slow source: the bytes come over more than a progress interval.
    const slow = () => Readable.from((async function* () {
      for (let o = 0; o < big.length; o += 256 * 1024) {
        await new Promise((r) => setTimeout(r, 15));
        yield big.subarray(o, o + 256 * 1024);
      }
    })());
    await pushImage(client, parseReference(`${host}/p/x:1`), {
      manifest: { bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
      blobs: [{ digest: sha(config), size: 2, open: () => Readable.from([config]) }, { digest: sha(big), size: big.length, open: slow }],
    }, { chunkSize, concurrency: 1, ...pushProgress(progress, `${host}/p/x:1`) });
    assert.equal(blobs.get(sha(big))?.length, big.length);
    assert.deepEqual(events[0], { phase: 'push-start', target: `${host}/p/x:1`, blobs: 2, bytes: big.length + 2, alreadyThere: false });
    const sent = events.flatMap((e) => (e.phase === 'blob-progress' && e.digest === sha(big) ? [e.sent] : []));
    assert.equal(sent[0], 0);
    assert.equal(sent.at(-1), big.length, 'the last report is the whole blob');
    assert.ok(sent.length >= 3, `reports while the bytes go: ${sent.join(', ')}`);
    const done = events.filter((e) => e.phase === 'blob-done');
    assert.deepEqual(done.map((e) => e.phase === 'blob-done' && e.how), ['uploaded', 'uploaded']);
    assert.ok(events.findIndex((e) => e.phase === 'blob-done' && e.digest === sha(big)) > events.lastIndexOf(events.find((e) => e.phase === 'blob-progress' && e.sent === big.length)!));
  });
}

/** `imgbuild build examples/hello` with stderr on a terminal (a pty from `script`, in Debian's Essential set): what the terminal got. */
async function buildOnTerminal(env: Record<string, string>): Promise<string> {
  const dir = await tempDir('imgbuild-progress-tty-');
  const command = [process.execPath, cliPath, 'build', join(repoRoot, 'examples/hello'), '-o', join(dir, 'out.oci')].map((a) => `'${a}'`).join(' ');
  const { CI: _ci, NO_COLOR: _nc, ...rest } = process.env;
  const r = await runCommand('script', ['-qec', command, '/dev/null'], { env: { ...rest, TERM: 'xterm', IMGBUILD_CACHE_DIR: join(dir, 'cache'), ...env } });
  assert.equal(r.code, 0, r.stdout.toString());
  return r.stdout.toString();
}

test('the CLI on a terminal draws bars in colour; CI=true gives plain lines there; NO_COLOR drops the colour', async () => {
  const bars = await buildOnTerminal({});
  assert.match(bars, /✓ \x1b\[39mlayer 1\/5 auto/);
  assert.match(bars, /\x1b\[32m/);
  assert.doesNotMatch(bars, /^layer 1\/5 \(auto, /m);

  const plain = await buildOnTerminal({ CI: 'true' });
  assert.match(plain, /^layer 1\/5 \(auto, 1 paths, 528 B\): writing\r?$/m);
  assert.match(plain, /^layer 1\/5 \(auto\): sha256:[0-9a-f]{64} 279 B \(written in [\d.]+ s\)\r?$/m);
  assert.doesNotMatch(plain, /\x1b\[/, 'no escape sequence at all');

  const noColour = await buildOnTerminal({ NO_COLOR: '1' });
  assert.match(noColour, /✓ layer 1\/5 auto/);
  assert.doesNotMatch(noColour, /\x1b\[[\d;]*m/, 'no colour');
});
