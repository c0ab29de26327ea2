/**
 * What the progress display costs a cold build: the same build, in this process, with an empty
 * cache each time, (a) without `onEvent` (no progress event is made: the layer writer, the
 * workers and the scan report nothing), (b) with the terminal display (bars redrawn up to 10
 * times a second, into a stream that drops the bytes) and (c) with plain lines. The modes take
 * turns, each first, second and third in turn, so that drift of the machine spreads over all three. Median of `runs`,
 * wall time and CPU time (all threads of the process: the main thread, the workers, the
 * thread pool's deflate), the latter less disturbed by other jobs on a shared machine.
 *
 * Run: node dist/bench/progress-overhead.js [runs=5] [spec.json | budgetMB=1024]
 * (a spec file: build it; else the Debian store of debian-store.ts, 100 layers)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buildImage } from '../builder/build/build-image.js';
import type { BuildEvent } from '../builder/build/context.js';
import { createProgress, type Progress } from '../builder/progress.js';
import { loadSpec } from '../builder/spec/load.js';
import { generateStore } from './debian-store.js';

const runs = Number(process.argv[2] ?? 5);
const arg = process.argv[3];
const work = '/var/tmp/imgbuild-bench-progress';

function specFile(): string {
  if (arg && !/^\d+$/.test(arg)) return arg;
  const store = generateStore(Number(arg ?? 1024), (m) => process.stderr.write(`${m}\n`));
  const file = join(work, 'image.json');
  writeFileSync(file, JSON.stringify({ name: 'bench/debian', tag: 'v1', store: { dir: store.dir, storeDir: store.storeDir }, contents: store.roots, maxLayers: 100 }));
  return file;
}

/** A stream that counts what it is given and keeps none of it; a terminal of 160×40 when `tty`. */
function sink(tty: boolean): Writable & { bytes: number } {
  const s = new Writable({
    write(chunk: Buffer, _e, done) {
      s.bytes += chunk.length;
      done();
    },
  }) as Writable & { bytes: number; columns?: number; rows?: number; isTTY?: boolean };
  s.bytes = 0;
  if (tty) Object.assign(s, { columns: 160, rows: 40, isTTY: true });
  return s;
}

type Mode = 'no events' | 'terminal bars' | 'plain lines';
const modes: Mode[] = ['no events', 'terminal bars', 'plain lines'];

async function main(): Promise<void> {
  mkdirSync(work, { recursive: true });
  const file = specFile();
  const spec = await loadSpec(file, {});
  const times: Record<Mode, number[]> = { 'no events': [], 'terminal bars': [], 'plain lines': [] };
  const cpu: Record<Mode, number[]> = { 'no events': [], 'terminal bars': [], 'plain lines': [] };
  const counts: Record<Mode, { events: number; bytes: number }> = { 'no events': { events: 0, bytes: 0 }, 'terminal bars': { events: 0, bytes: 0 }, 'plain lines': { events: 0, bytes: 0 } };
  for (let i = 0; i < runs; i++) {
    // Each mode takes each place in the order in turn (first, second, third).
    for (const mode of [...modes.slice(i % 3), ...modes.slice(0, i % 3)]) {
      const cacheDir = join(work, `cache-${mode.replace(' ', '-')}`);
      rmSync(cacheDir, { recursive: true, force: true });
      spawnSync('sync');
      const out = sink(mode === 'terminal bars');
      const progress: Progress | undefined = mode === 'no events' ? undefined : createProgress({ stream: out, tty: mode === 'terminal bars', color: true });
      let events = 0;
      const onEvent = progress ? (e: BuildEvent) => (events++, progress.onEvent(e)) : undefined;
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      await buildImage(spec, { cacheDir, ...(onEvent ? { onEvent } : {}) });
      progress?.close();
      const c = process.cpuUsage(c0);
      times[mode].push((performance.now() - t0) / 1000);
      cpu[mode].push((c.user + c.system) / 1e6);
      counts[mode] = { events, bytes: out.bytes };
      rmSync(cacheDir, { recursive: true, force: true });
    }
    process.stderr.write(`run ${i + 1}/${runs}: ${modes.map((m) => `${m} ${times[m].at(-1)!.toFixed(2)} s (CPU ${cpu[m].at(-1)!.toFixed(2)} s)`).join(', ')}\n`);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(times['no events']);
  const cpuBase = median(cpu['no events']);
  const vs = (m: Mode, x: number, b: number) => (m === 'no events' ? '—' : `${x >= b ? '+' : ''}${(((x - b) / b) * 100).toFixed(1)}%`);
  console.log(`| mode | wall, median (s) | wall, runs (s) | vs no events | CPU, median (s) | CPU, runs (s) | vs no events | events | bytes on stderr |`);
  console.log(`|---|---|---|---|---|---|---|---|---|`);
  for (const m of modes) {
    const w = median(times[m]);
    const c = median(cpu[m]);
    console.log(`| ${m} | ${w.toFixed(2)} | ${times[m].map((t) => t.toFixed(2)).join(' ')} | ${vs(m, w, base)} | ${c.toFixed(2)} | ${cpu[m].map((t) => t.toFixed(2)).join(' ')} | ${vs(m, c, cpuBase)} | ${counts[m].events} | ${counts[m].bytes} |`);
  }
}

await main();
