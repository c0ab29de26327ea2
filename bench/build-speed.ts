/**
 * Build speed on a generated ~1 GB directory store of Debian packages (bench/debian-store.ts),
 * each imgbuild run a separate `imgbuild build` process (as in CI) whose wall time and peak RSS
 * are measured, next to the limit pipelines measured in the same run on the same bytes:
 *
 *   cold gzip build → OCI layout        vs  tar -c --sort=name <paths> | pigz -p<cores> -6 -n | sha256sum
 *   cold zstd build → OCI layout        vs  tar -c --sort=name <paths> | zstd -T<cores> -3 | sha256sum
 *   cold uncompressed build (none)      vs  tar -c --sort=name <paths> | openssl sha256, and
 *                                           tar ... | tee <file> | openssl sha256 (the bytes also
 *                                           written to a file, as the build writes its layers)
 *   warm rebuild, nothing changed       vs  the cold gzip build (target < 5%)
 *   warm rebuild, one top-level path edited in place
 *   warm rebuild from a fresh checkout of the store (a copy elsewhere, new file times), as CI
 *   with a restored cache sees it
 *
 * "Cold" means an empty cache dir (no layer cache, no scan cache); the page cache is warm (the
 * store is read once first), and every timed run starts with no dirty pages (`sync`). A directory store must be read twice on a cold build: once to scan
 * for references, once to write the layers; the "closure known" rows show the build when the
 * references are already known (scan cache filled by `imgbuild closure`, as with a Nix store or
 * a closure file, where nothing is scanned), which is what the pipelines compare with. Each figure is the median of `runs` runs. Results are printed as a
 * table, never asserted.
 *
 * Run: node dist/bench/build-speed.js [runs=3] [budgetMB=1024] [rows=all|zstd]
 * (`zstd`: only the zstd rows — the pipeline, the cold build, the closure-known build.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateStore } from './debian-store.js';

const runs = Number(process.argv[2] ?? 3);
const budgetMB = Number(process.argv[3] ?? 1024);
/** `zstd`: only the zstd rows. */
const rowsWanted = process.argv[4] ?? 'all';
const cores = availableParallelism();
const cli = resolve(fileURLToPath(import.meta.url), '../../builder/imgbuild.js');
const work = '/var/tmp/imgbuild-bench-build';

export interface Measured {
  seconds: number;
  /** Peak RSS in MiB (imgbuild runs only). */
  rssMiB?: number;
  /** CPU time (user + system) of every thread of the process, or of the pipeline's processes, when measured. */
  cpuSeconds?: number;
  stdout: string;
}

/** Prints maxRSS (KiB) on stderr as the process exits: preloaded into the measured CLI. */
const RSS_HOOK = `data:text/javascript,process.on('exit',()=>{const r=process.resourceUsage();process.stderr.write('\\nmaxrss-kib '+r.maxRSS+' cpu-us '+(r.userCPUTime+r.systemCPUTime)+'\\n')})`;

/**
 * Flushes dirty pages before a timed run: a build writes its layers (1 GB here), and the kernel's
 * write-back of one run's output would otherwise land, as CPU time on two cores, in the next.
 */
function settle(): void {
  spawnSync('sync');
}

/** Runs the imgbuild CLI as a child process; wall time and peak RSS. */
export function imgbuild(args: string[], env: NodeJS.ProcessEnv): Promise<Measured> {
  settle();
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--import', RSS_HOOK, cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`imgbuild ${args.join(' ')} exited ${code}:\n${err}`));
      const m = /maxrss-kib (\d+) cpu-us (\d+)/.exec(err);
      resolvePromise({ seconds, rssMiB: m ? Number(m[1]) / 1024 : undefined, cpuSeconds: m ? Number(m[2]) / 1e6 : undefined, stdout: out });
    });
  });
}

export function shell(cmd: string, cwd: string): Measured {
  settle();
  const t0 = process.hrtime.bigint();
  // bash's `time` of the whole pipeline: the CPU time of all its processes.
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', `TIMEFORMAT='cpu-s %3U %3S'; time ( ${cmd} )`], { cwd, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const m = /cpu-s ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, ...(m ? { cpuSeconds: Number(m[1]) + Number(m[2]) } : {}), stdout: r.stdout };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

async function main(): Promise<void> {
  const store = generateStore(budgetMB, (m) => process.stderr.write(`${m}\n`));
  const paths = store.graph.paths.map((p) => p.path.slice(store.storeDir.length + 1));
  process.stderr.write(`store: ${paths.length} paths, ${(store.fileBytes / 1e9).toFixed(2)} GB, ${store.roots.length} roots; ${runs} run(s) each; ${cores} cores\n`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const list = join(work, 'paths.txt');
  writeFileSync(list, `${paths.join('\n')}\n`);
  const specIn = (storeDir: string, compressor: string) => {
    const file = join(work, `image-${compressor}${storeDir === store.dir ? '' : '-checkout'}.json`);
    writeFileSync(file, JSON.stringify({ name: 'bench/debian', tag: 'v1', store: { dir: storeDir, storeDir: store.storeDir }, contents: store.roots, maxLayers: 100, compressor }));
    return file;
  };
  const spec = (compressor: string) => specIn(store.dir, compressor);
  const gzipSpec = spec('gzip');
  const noneSpec = spec('none');
  const tarCmd = `tar -c --sort=name -T ${list}`;
  // Warm the page cache (and check the tar is what we think).
  const tarBytes = Number(shell(`${tarCmd} | wc -c`, store.dir).stdout.trim());

  const results: Record<string, Measured[]> = {};
  const add = (name: string, m: Measured) => (results[name] ??= []).push(m);
  // One top-level path's largest file, edited in place (one byte flipped, size kept) and restored.
  const top = store.roots.map((r) => join(store.dir, r.slice(store.storeDir.length + 1))).find((r) => largestFile(r) !== undefined)!;
  const edited = largestFile(top)!;

  const zstdSpec = spec('zstd');
  for (let i = 0; i < runs; i++) {
    // zstd: the pipeline, a cold build, and one with the closure known (scan cache filled, untimed).
    add('pipeline zstd', shell(`${tarCmd} | zstd -T${cores} -3 -q | sha256sum`, store.dir));
    const zstdCache = join(work, `cache-zstd-${i}`);
    add('cold zstd', await imgbuild(['build', zstdSpec, '-o', join(work, `zstd-${i}.oci`)], { ...process.env, IMGBUILD_CACHE_DIR: zstdCache }));
    rmSync(join(zstdCache, 'layers'), { recursive: true, force: true });
    rmSync(join(work, `zstd-${i}.oci`), { recursive: true, force: true });
    add('known zstd', await imgbuild(['build', zstdSpec, '-o', join(work, `zstd-known-${i}.oci`)], { ...process.env, IMGBUILD_CACHE_DIR: zstdCache }));
    rmSync(zstdCache, { recursive: true, force: true });
    rmSync(join(work, `zstd-known-${i}.oci`), { recursive: true, force: true });
    if (rowsWanted === 'zstd') continue;
    add('pipeline gzip', shell(`${tarCmd} | pigz -p${cores} -6 -n | sha256sum`, store.dir));
    const cache = join(work, `cache-${i}`);
    const env = { ...process.env, IMGBUILD_CACHE_DIR: cache };
    add('cold gzip', await imgbuild(['build', gzipSpec, '-o', join(work, `cold-${i}.oci`)], env));
    // Closure known: the scan cache of a separate cache dir is filled first (not timed).
    const known = join(work, `known-${i}`);
    const knownEnv = { ...process.env, IMGBUILD_CACHE_DIR: known };
    await imgbuild(['closure', gzipSpec], knownEnv);
    add('known gzip', await imgbuild(['build', gzipSpec, '-o', join(work, `known-${i}.oci`)], knownEnv));
    rmSync(join(known, 'layers'), { recursive: true, force: true });
    add('known none', await imgbuild(['build', noneSpec, '-o', join(work, `known-none-${i}.oci`)], knownEnv));
    add('warm unchanged', await imgbuild(['build', gzipSpec, '-o', join(work, `warm-${i}.oci`)], env));
    const original = readFileSync(edited);
    const changed = Buffer.from(original);
    const mid = changed.length >> 1;
    changed.writeUInt8(changed.readUInt8(mid) ^ 0xff, mid);
    writeFileSync(edited, changed);
    try {
      add('warm top-level edit', await imgbuild(['build', gzipSpec, '-o', join(work, `edit-${i}.oci`)], env));
    } finally {
      writeFileSync(edited, original);
    }
    add('pipeline none', shell(`${tarCmd} | openssl sha256`, store.dir));
    // The same, with the tar also written to a file, as any build to disk must write its layers.
    const limitTar = join(work, 'limit.tar');
    add('pipeline none+file', shell(`${tarCmd} | tee ${limitTar} | openssl sha256`, store.dir));
    rmSync(limitTar, { force: true });
    const cacheNone = join(work, `cache-none-${i}`);
    add('cold none', await imgbuild(['build', noneSpec, '-o', join(work, `none-${i}.oci`)], { ...process.env, IMGBUILD_CACHE_DIR: cacheNone }));
    // Last, as its 1 GB copy disturbs the page cache for what follows: a fresh checkout of the
    // same store (another directory, new file times and inodes) built with the cache kept, as CI
    // restores it. The scan reads every path; no layer is written.
    const checkout = join(work, `checkout-${i}`);
    spawnSync('cp', ['-r', '--preserve=mode', store.dir, checkout]); // modes kept (setuid bits too), times new
    add('fresh checkout', await imgbuild(['build', specIn(checkout, 'gzip'), '-o', join(work, `checkout-${i}.oci`)], env));
    rmSync(checkout, { recursive: true, force: true });
    for (const d of [cache, cacheNone, known]) rmSync(d, { recursive: true, force: true });
    for (const o of ['cold', 'warm', 'edit', 'checkout', 'none', 'known', 'known-none']) rmSync(join(work, `${o}-${i}.oci`), { recursive: true, force: true });
  }

  const sec = (k: string) => median(results[k]!.map((m) => m.seconds));
  const rss = (k: string) => {
    const xs = results[k]!.map((m) => m.rssMiB).filter((x): x is number => x !== undefined);
    return xs.length ? `${Math.max(...xs).toFixed(0)} MiB` : '';
  };
  const mbps = (k: string) => `${(tarBytes / 1e6 / sec(k)).toFixed(0)} MB/s`;
  const cpu = (k: string) => median(results[k]!.map((m) => m.cpuSeconds ?? NaN));
  const zstdRows = [
    ['limit: tar | zstd -T' + cores + ' -3 | sha256sum', `${sec('pipeline zstd').toFixed(2)} s`, mbps('pipeline zstd'), '', '', '', ''],
    ['imgbuild cold, zstd, OCI layout', `${sec('cold zstd').toFixed(2)} s`, mbps('cold zstd'), rss('cold zstd'), 'tar|zstd', (sec('cold zstd') / sec('pipeline zstd')).toFixed(2), '≤ 1.20'],
    ['imgbuild zstd, closure known', `${sec('known zstd').toFixed(2)} s`, mbps('known zstd'), rss('known zstd'), 'tar|zstd', (sec('known zstd') / sec('pipeline zstd')).toFixed(2), '≤ 1.20'],
    // CPU time (all threads, all processes of the pipeline): the steadier measure on a shared machine.
    ['CPU: tar | zstd -T' + cores + ' -3 | sha256sum', `${cpu('pipeline zstd').toFixed(2)} s`, '', '', '', '', ''],
    ['CPU: imgbuild cold, zstd', `${cpu('cold zstd').toFixed(2)} s`, '', '', 'CPU tar|zstd', (cpu('cold zstd') / cpu('pipeline zstd')).toFixed(2), ''],
    ['CPU: imgbuild zstd, closure known', `${cpu('known zstd').toFixed(2)} s`, '', '', 'CPU tar|zstd', (cpu('known zstd') / cpu('pipeline zstd')).toFixed(2), ''],
  ];
  const header = ['run', 'median wall', 'tar MB/s', 'peak RSS (max)', 'vs', 'ratio', 'target'];
  if (rowsWanted === 'zstd') {
    process.stdout.write(`\nbuild speed (zstd): ${paths.length} store paths, tar ${(tarBytes / 1e9).toFixed(2)} GB, ${cores} cores, median of ${runs}, Node ${process.version}\n\n${table([header, ...zstdRows])}\n`);
    return;
  }
  const rows = [
    header,
    ['limit: tar | pigz -p' + cores + ' -6 -n | sha256sum', `${sec('pipeline gzip').toFixed(2)} s`, mbps('pipeline gzip'), '', '', '', ''],
    ['imgbuild cold, gzip, OCI layout', `${sec('cold gzip').toFixed(2)} s`, mbps('cold gzip'), rss('cold gzip'), 'tar|pigz', (sec('cold gzip') / sec('pipeline gzip')).toFixed(2), '≤ 0.90'],
    ['imgbuild gzip, closure known', `${sec('known gzip').toFixed(2)} s`, mbps('known gzip'), rss('known gzip'), 'tar|pigz', (sec('known gzip') / sec('pipeline gzip')).toFixed(2), '≤ 0.90'],
    ['limit: tar | openssl sha256', `${sec('pipeline none').toFixed(2)} s`, mbps('pipeline none'), '', '', '', ''],
    ['imgbuild cold, none, OCI layout', `${sec('cold none').toFixed(2)} s`, mbps('cold none'), rss('cold none'), 'tar|openssl', (sec('cold none') / sec('pipeline none')).toFixed(2), '≤ 2.00'],
    ['imgbuild none, closure known', `${sec('known none').toFixed(2)} s`, mbps('known none'), rss('known none'), 'tar|openssl', (sec('known none') / sec('pipeline none')).toFixed(2), '≤ 2.00'],
    ['limit: tar | tee file | openssl sha256', `${sec('pipeline none+file').toFixed(2)} s`, mbps('pipeline none+file'), '', '', '', ''],
    ['imgbuild cold, none, OCI layout', `${sec('cold none').toFixed(2)} s`, mbps('cold none'), rss('cold none'), 'tar|tee|openssl', (sec('cold none') / sec('pipeline none+file')).toFixed(2), ''],
    ['imgbuild none, closure known', `${sec('known none').toFixed(2)} s`, mbps('known none'), rss('known none'), 'tar|tee|openssl', (sec('known none') / sec('pipeline none+file')).toFixed(2), ''],
    ['imgbuild warm, nothing changed', `${sec('warm unchanged').toFixed(2)} s`, '', rss('warm unchanged'), 'cold gzip', (sec('warm unchanged') / sec('cold gzip')).toFixed(3), '< 0.05'],
    ['imgbuild warm, one top-level path edited', `${sec('warm top-level edit').toFixed(2)} s`, '', rss('warm top-level edit'), 'cold gzip', (sec('warm top-level edit') / sec('cold gzip')).toFixed(3), ''],
    ['imgbuild warm, fresh checkout of the store', `${sec('fresh checkout').toFixed(2)} s`, mbps('fresh checkout'), rss('fresh checkout'), 'cold gzip', (sec('fresh checkout') / sec('cold gzip')).toFixed(3), ''],
    ...zstdRows,
  ];
  process.stdout.write(`\nbuild speed: ${paths.length} store paths, tar ${(tarBytes / 1e9).toFixed(2)} GB, ${cores} cores, median of ${runs}; edited ${edited.slice(store.dir.length + 1)}\n\n${table(rows)}\n`);
}

/** The largest regular file under `dir` (by a `find`), or undefined. */
function largestFile(dir: string): string | undefined {
  const r = spawnSync('find', [dir, '-type', 'f', '-printf', '%s %p\\n'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  let best: { size: number; path: string } | undefined;
  for (const line of r.stdout.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp < 0) continue;
    const size = Number(line.slice(0, sp));
    if (size > 0 && (!best || size > best.size)) best = { size, path: line.slice(sp + 1) };
  }
  return best && statSync(best.path).isFile() ? best.path : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
