/**
 * Reference-scanning throughput of the directory store source on a generated store of ~1 GB,
 * next to `cat` of the same files (the baseline: what reading costs) measured in the same run,
 * and a plain Node read loop (what reading costs in Node, without scanning).
 *
 * The store is made of the installed Debian packages, one store path per package holding its
 * real files, with references planted: some files get another path's store path appended, so the scan has something to find and its result can be checked against
 * what was planted. It lives in /var/tmp/imgbuild-bench-scan (kept between runs; delete to
 * regenerate). Each figure is the best of 3 runs. The page cache is warmed first, so the figures are warm-cache ones (cold-cache
 * figures need root's drop_caches, which this machine forbids).
 *
 * Run: node dist/bench/scan.js [sizeMB]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { appendFile, copyFile, lstat, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { nixBase32Encode } from '../builder/store/nix-base32.js';
import { RefScanner } from '../builder/store/ref-scanner.js';

const sizeMB = Number(process.argv[2] ?? 1024);
const base = '/var/tmp/imgbuild-bench-scan';
const store = join(base, `store-${sizeMB}`);
const plantedFile = join(base, `planted-${sizeMB}.json`);
const SD = '/nix/store';

async function* walk(dir: string): AsyncGenerator<{ path: string; size: number }> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(dir, n);
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory()) yield* walk(p);
    else if (st.isFile()) yield { path: p, size: st.size };
  }
}

/**
 * Builds the store: each installed Debian package (from /var/lib/dpkg/info/*.list) becomes a store
 * path holding its regular files, until the size budget is reached; path i references up to three
 * paths j < i (appended to its first file), so there are no cycles.
 */
async function generate(): Promise<Record<string, string[]>> {
  await rm(store, { recursive: true, force: true });
  const budget = sizeMB * 1024 * 1024;
  const info = '/var/lib/dpkg/info';
  const lists = (await readdir(info)).filter((f) => f.endsWith('.list')).sort();
  const pkgs: Array<{ name: string; files: string[] }> = [];
  let total = 0;
  for (const l of lists) {
    if (total >= budget) break;
    const files: string[] = [];
    for (const f of (await readFile(join(info, l), 'utf8')).split('\n')) {
      const st = f ? await lstat(f).catch(() => undefined) : undefined;
      if (st?.isFile() && total + st.size <= budget * 1.05) {
        files.push(f);
        total += st.size;
      }
    }
    if (files.length > 0) pkgs.push({ name: l.slice(0, -'.list'.length).replace(/:.*$/, ''), files });
  }
  const name = (i: number): string =>
    `${nixBase32Encode(createHash('sha1').update(`path${i}`).digest())}-${pkgs[i]!.name}`;
  const planted: Record<string, string[]> = {};
  for (let i = 0; i < pkgs.length; i++) {
    const dir = join(store, name(i));
    for (const f of pkgs[i]!.files) {
      const dest = join(dir, relative('/', f));
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(f, dest);
    }
    const refs = [...new Set([i - 1, Math.floor(i / 2), Math.floor(i / 7)])].filter((j) => j >= 0 && j < i);
    planted[`${SD}/${name(i)}`] = refs.map((j) => `${SD}/${name(j)}`).sort();
    const target = join(dir, relative('/', pkgs[i]!.files[0]!));
    if (refs.length > 0) await appendFile(target, refs.map((j) => `\n${SD}/${name(j)}/lib\n`).join(''));
  }
  await writeFile(plantedFile, JSON.stringify(planted));
  return planted;
}

function catAll(): void {
  // find | xargs cat: the same files, read by the most plain reader there is.
  const r = spawnSync('sh', ['-c', `find '${store}' -type f -print0 | xargs -0 cat > /dev/null`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('cat failed');
}

/** Node reading the same files with the same calls as the scanner (sync lstat/readdir/read, 1 MiB buffer), scanning nothing. */
function nodeReadAll(): number {
  const buf = Buffer.allocUnsafe(1 << 20);
  let n = 0;
  const walkSync = (p: string): void => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const c of readdirSync(p).sort()) walkSync(join(p, c));
    else if (st.isFile()) {
      const fd = openSync(p, 'r');
      try {
        let r: number;
        while ((r = readSync(fd, buf, 0, buf.length, null)) > 0) n += r;
      } finally {
        closeSync(fd);
      }
    }
  };
  walkSync(store);
  return n;
}

/** Best of `n` runs: the machine is shared, so the minimum is the least disturbed figure. */
async function best<T>(n: number, f: () => Promise<T> | T): Promise<[T, number]> {
  let out: [T, number] | undefined;
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const r = await f();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (!out || s < out[1]) out = [r, s];
  }
  return out!;
}

async function main(): Promise<void> {
  const planted = existsSync(plantedFile) && existsSync(store)
    ? (JSON.parse(readFileSync(plantedFile, 'utf8')) as Record<string, string[]>)
    : await generate();
  const roots = Object.keys(planted).sort();
  let bytes = 0;
  let count = 0;
  for await (const f of walk(store)) {
    bytes += f.size;
    count++;
  }
  const mb = bytes / (1024 * 1024);
  console.log(`store: ${store}: ${roots.length} store paths, ${count} files, ${mb.toFixed(0)} MiB`);

  catAll(); // warm the page cache
  const [, catS] = await best(3, catAll);
  const [, readS] = await best(3, nodeReadAll);
  const cacheDir = join(base, 'scan-cache');
  // A cold scan cache each time; removing it is not timed.
  let scanS = Infinity;
  let graph: Awaited<ReturnType<DirectoryStoreSource['closure']>> | undefined;
  for (let i = 0; i < 3; i++) {
    await rm(cacheDir, { recursive: true, force: true });
    const [g, s] = await best(1, () => new DirectoryStoreSource(store, SD, { cacheDir }).closure(roots));
    graph = g;
    scanS = Math.min(scanS, s);
  }
  const [, cachedS] = await best(3, () => new DirectoryStoreSource(store, SD, { cacheDir }).closure(roots));
  const [, noCacheS] = await best(3, () => new DirectoryStoreSource(store, SD, { cacheDir: false }).closure(roots));

  // The scan must find exactly the planted references (a real file could embed a hash by chance; none does here).
  const found = Object.fromEntries(graph!.paths.map((p) => [p.path, p.references]));
  const exact = roots.every((r) => JSON.stringify(found[r]) === JSON.stringify(planted[r]));
  const row = (what: string, s: number): string =>
    `${what.padEnd(44)} ${s.toFixed(2).padStart(7)} s ${(mb / s).toFixed(0).padStart(7)} MiB/s   x${(catS / s).toFixed(2)} of cat`;
  console.log(row('cat (find | xargs cat > /dev/null), baseline', catS));
  console.log(row('node read loop (same fs calls), no scan', readS));
  console.log(row('DirectoryStoreSource.closure, scan + cache write', scanS));
  console.log(row('DirectoryStoreSource.closure, no cache', noCacheS));
  console.log(row('DirectoryStoreSource.closure, cache hit', cachedS));
  // The scanner alone on the first 256 MiB of the files, already in memory: its CPU cost per byte.
  const mem = Buffer.allocUnsafe(Math.min(bytes, 256 * 1024 * 1024));
  let filled = 0;
  const fill = (p: string): void => {
    if (filled >= mem.length) return;
    const st = lstatSync(p);
    if (st.isDirectory()) for (const c of readdirSync(p).sort()) fill(join(p, c));
    else if (st.isFile()) {
      const fd = openSync(p, 'r');
      try {
        filled += readSync(fd, mem, filled, Math.min(st.size, mem.length - filled), null);
      } finally {
        closeSync(fd);
      }
    }
  };
  fill(store);
  const targets = new Set(roots.map((r) => r.slice(SD.length + 1, SD.length + 33)));
  const [, memS] = await best(3, () => {
    const sc = new RefScanner(targets);
    for (let i = 0; i < filled; i += 1 << 20) sc.push(mem.subarray(i, Math.min(filled, i + (1 << 20))));
    return sc.found.size;
  });
  const memMb = filled / (1024 * 1024);
  console.log(`${'RefScanner alone, in memory'.padEnd(44)} ${memS.toFixed(2).padStart(7)} s ${(memMb / memS).toFixed(0).padStart(7)} MiB/s   (${memMb.toFixed(0)} MiB)`);
  console.log(`references found = planted: ${exact ? 'yes' : 'NO'} (${graph!.paths.length} paths in the closure)`);
}

await main();
