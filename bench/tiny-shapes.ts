/**
 * Per-path and per-file costs (issue 19): builds of generated stores of tiny things
 * (bench/tiny-store.ts), each imgbuild run a separate `imgbuild build` process (as in CI), next to
 * the pipelines measured in the same run on the same files:
 *
 *   cold gzip build → OCI layout   vs  tar -c --sort=name -T <paths> | pigz -p<cores> -6 -n | sha256sum
 *   cold uncompressed (none)       vs  tar -c --sort=name -T <paths> | openssl sha256
 *   warm rebuild, nothing changed  (target ≤ 1 s at 50,000 paths)
 *
 * Shapes: `paths-<n>` (n tiny store paths with references, one root) and `files-<n>` (one store
 * path of n tiny files). "Cold" is an empty cache dir (the directory store is scanned for
 * references too); the page cache is warm (the files are tarred once first), and every timed run
 * starts with no dirty pages (`sync`, as in build-speed.ts): a warm build timed while the cold
 * build's writes are still being flushed measured the flush too. Each figure is the median of
 * `runs`; peak RSS is the median over runs of each run's largest build, with the largest of all. The cost per path (or per file) is the cold gzip
 * wall time divided by n: flat from 1k to 50k paths is the target.
 *
 * Run: node dist/bench/tiny-shapes.js [runs=1] [shapes=paths-1000,paths-10000,paths-50000,files-200000]
 */
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, table } from './build-speed.js';
import { TINY_ROOT, tinyFilesStore, tinyPathsStore, type TinyStore } from './tiny-store.js';

const runs = Number(process.argv[2] ?? 1);
const shapes = (process.argv[3] ?? 'paths-1000,paths-10000,paths-50000,files-200000').split(',');
const cores = availableParallelism();
const work = join(TINY_ROOT, 'work');
const cli = resolve(fileURLToPath(import.meta.url), '../../builder/imgbuild.js');

interface Measured {
  seconds: number;
  /** user + system CPU seconds of the process and everything it waited for (GNU time). */
  cpu: number;
  rssMiB: number;
}

/**
 * Runs a command under GNU time: wall, CPU (the steadier figure on a shared machine: other jobs
 * stretch wall time, not the work done) and peak RSS (of the largest process, for a pipeline).
 */
function timed(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  spawnSync('sync');
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'bench-time %U %S %M', ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`${args.join(' ')} exited ${code}:\n${err}`));
      const m = /bench-time ([\d.]+) ([\d.]+) (\d+)/.exec(err)!;
      resolvePromise({ seconds, cpu: Number(m[1]) + Number(m[2]), rssMiB: Number(m[3]) / 1024 });
    });
  });
}

const shell = (cmd: string, cwd: string) => timed(['bash', '-o', 'pipefail', '-c', cmd], cwd);
const imgbuild = (args: string[], env: NodeJS.ProcessEnv) => timed([process.execPath, cli, ...args], work, env);

async function main(): Promise<void> {
  const rows = [['shape', `tar|pigz -p${cores} -6`, 'imgbuild cold gzip', 'ratio (CPU ratio)', `tar|openssl`, 'imgbuild cold none', 'ratio (CPU ratio)', 'imgbuild warm', 'peak RSS (median, max)', 'per unit, cold gzip: wall, CPU']];
  for (const shape of shapes) {
    const [kind, count] = shape.split('-') as [string, string];
    const n = Number(count);
    process.stderr.write(`${shape}: generating (cached in ${TINY_ROOT})\n`);
    const store: TinyStore = kind === 'files' ? tinyFilesStore(n) : tinyPathsStore(n);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    const list = join(work, 'paths.txt');
    writeFileSync(list, `${store.names.join('\n')}\n`);
    const spec = (compressor: string) => {
      const file = join(work, `image-${compressor}.json`);
      writeFileSync(file, JSON.stringify({ name: 'bench/tiny', tag: 'v1', store: { dir: store.dir, storeDir: store.storeDir }, contents: store.roots, architecture: 'amd64', compressor }));
      return file;
    };
    const gzipSpec = spec('gzip');
    const noneSpec = spec('none');
    const tarCmd = `tar -c --sort=name -T ${list}`;
    await shell(`${tarCmd} | wc -c`, store.dir); // warms the page cache
    const results: Record<string, Measured[]> = {};
    const add = (name: string, m: Measured) => (results[name] ??= []).push(m);
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`${shape}: run ${i + 1} of ${runs}\n`);
      add('pigz', await shell(`${tarCmd} | pigz -p${cores} -6 -n | sha256sum`, store.dir));
      const cache = join(work, `cache-${i}`);
      const env = { ...process.env, IMGBUILD_CACHE_DIR: cache };
      add('cold gzip', await imgbuild(['build', gzipSpec, '-o', join(work, `cold-${i}.oci`)], env));
      add('warm', await imgbuild(['build', gzipSpec, '-o', join(work, `warm-${i}.oci`)], env));
      add('openssl', await shell(`${tarCmd} | openssl sha256`, store.dir));
      const cacheNone = join(work, `cache-none-${i}`);
      add('cold none', await imgbuild(['build', noneSpec, '-o', join(work, `none-${i}.oci`)], { ...process.env, IMGBUILD_CACHE_DIR: cacheNone }));
      for (const d of [cache, cacheNone, join(work, `cold-${i}.oci`), join(work, `warm-${i}.oci`), join(work, `none-${i}.oci`)]) rmSync(d, { recursive: true, force: true });
    }
    const sec = (k: string) => median(results[k]!.map((m) => m.seconds));
    const cpu = (k: string) => median(results[k]!.map((m) => m.cpu));
    const builds = ['cold gzip', 'cold none', 'warm'];
    const runPeaks = results['warm']!.map((_, i) => Math.max(...builds.map((k) => results[k]![i]!.rssMiB)));
    const unit = kind === 'files' ? 'file' : 'path';
    rows.push([
      `${n.toLocaleString('en')} tiny ${kind === 'files' ? 'files in one path' : 'store paths'}`,
      `${sec('pigz').toFixed(2)} s`,
      `${sec('cold gzip').toFixed(2)} s`,
      `${(sec('cold gzip') / sec('pigz')).toFixed(2)}× (${(cpu('cold gzip') / cpu('pigz')).toFixed(2)}×)`,
      `${sec('openssl').toFixed(2)} s`,
      `${sec('cold none').toFixed(2)} s`,
      `${(sec('cold none') / sec('openssl')).toFixed(2)}× (${(cpu('cold none') / cpu('openssl')).toFixed(2)}×)`,
      `${sec('warm').toFixed(2)} s (${cpu('warm').toFixed(2)} s CPU)`,
      `${median(runPeaks).toFixed(0)} MiB (max ${Math.max(...runPeaks).toFixed(0)})`,
      `${((sec('cold gzip') / n) * 1e6).toFixed(0)} µs, ${((cpu('cold gzip') / n) * 1e6).toFixed(0)} µs CPU /${unit}`,
    ]);
    process.stderr.write(`${rows.at(-1)!.join(' | ')}\n`);
  }
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(`\ntiny shapes: ${cores} cores, median of ${runs}, Node ${process.version}\n\n${table(rows)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
