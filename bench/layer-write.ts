/**
 * Layer writer throughput on a generated directory of ~300 MB (compressible, roughly 3:1 with
 * gzip -6), next to GNU tar piped into gzip and pigz measured in the same run. Throughput is
 * uncompressed tar bytes per second of wall time; the ratio column is against
 * `tar --sort=name | gzip -6 -n | sha256sum`. The corpus lives in /var/tmp (kept between runs;
 * delete /var/tmp/imgbuild-bench-layer to regenerate). Page cache is warmed before measuring.
 *
 * Run: node dist/bench/layer-write.js [sizeMB]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { TarChunker } from '../builder/layer/tar-chunker.js';
import { treeEntries } from '../builder/layer/tree-entries.js';
import type { LayerEntry, TarHeaderDefaults } from '../builder/layer/types.js';
import { DEFLATE_BLOCK_SIZE } from '../builder/layer/gzip.js';
import { writeLayer } from '../builder/layer/write-layer.js';

const sizeMB = Number(process.argv[2] ?? 300);
const base = '/var/tmp/imgbuild-bench-layer';
const corpus = join(base, `corpus-${sizeMB}`);
const header: TarHeaderDefaults = { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' };

/** xorshift32, seeded: the same corpus on every machine. */
function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

/**
 * Files of a store-like tree: many small ones (headers and per-file overhead matter) and a few
 * large ones (streaming throughput matters). Content: words from a small vocabulary mixed with
 * random bytes, so deflate has real work to do.
 */
async function makeCorpus(): Promise<void> {
  if (existsSync(join(corpus, '.done'))) return;
  await rm(corpus, { recursive: true, force: true });
  const next = prng(42);
  const words = Array.from({ length: 2000 }, () => Array.from({ length: 3 + (next() % 8) }, () => String.fromCharCode(97 + (next() % 26))).join(''));
  const pool = Buffer.alloc(8 << 20);
  for (let off = 0; off < pool.length; ) {
    if (next() % 40 === 0) {
      const n = Math.min(16 + (next() % 64), pool.length - off);
      for (let i = 0; i < n; i++) pool[off + i] = next() & 0xff;
      off += n;
    } else {
      off += pool.write(`${words[next() % words.length]!}${next() % 9 === 0 ? '\n' : ' '}`, off, 'latin1');
    }
  }
  const slice = (n: number): Buffer => {
    const out = Buffer.allocUnsafe(n);
    for (let o = 0; o < n; ) {
      const start = next() % (pool.length - 65536);
      const len = Math.min(n - o, 4096 + (next() % 61440));
      pool.copy(out, o, start, start + len);
      o += len;
    }
    return out;
  };
  const target = sizeMB * 1e6;
  let written = 0;
  for (let pkg = 0; written < target; pkg++) {
    const dir = join(corpus, `${pkg.toString(36).padStart(32, '0')}-pkg-${pkg}`);
    for (const sub of ['bin', 'lib', 'share/doc']) await mkdir(join(dir, sub), { recursive: true });
    const big = pkg % 10 === 0;
    const files = big ? 3 : 60;
    for (let f = 0; f < files && written < target; f++) {
      const size = big ? 8e6 + (next() % 24e6) : 200 + (next() % 40000);
      const sub = ['bin', 'lib', 'share/doc'][f % 3]!;
      await writeFile(join(dir, sub, `file-${f}`), slice(Math.min(size, target - written + 1)), { mode: f % 3 === 0 ? 0o755 : 0o644 });
      written += size;
    }
  }
  await writeFile(join(corpus, '.done'), '');
}

interface Row {
  name: string;
  seconds: number;
  tarBytes: number;
  note: string;
}

async function time(name: string, tarBytes: number, fn: () => Promise<string> | string): Promise<Row> {
  const t0 = process.hrtime.bigint();
  const note = await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { name, seconds, tarBytes, note };
}

function sh(cmd: string): string {
  const r = spawnSync('sh', ['-c', cmd], { cwd: corpus, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout.trim().split(/\s+/)[0]!;
}

/** The tar chunks of `entries` as the layer writer makes them (each valid until the next). */
function* tarOf(entries: Iterable<LayerEntry>): Generator<Buffer> {
  const tar = new TarChunker(header, DEFLATE_BLOCK_SIZE);
  for (const e of entries) yield* tar.add(e);
  yield* tar.end();
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, zlib ${process.versions.zlib}; corpus ${corpus}`);
  const t0 = Date.now();
  await makeCorpus();
  if (Date.now() - t0 > 1000) console.log(`generated corpus in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const du = execFileSync('du', ['-sb', corpus]).toString().split('\t')[0];
  const files = execFileSync('sh', ['-c', `find ${corpus} -type f | wc -l`]).toString().trim();
  console.log(`corpus: ${(Number(du) / 1e6).toFixed(0)} MB in ${files} files`);

  sh('tar -c --sort=name . > /dev/null'); // warm the page cache
  const store = new BlobStore(join(base, 'blobs'));
  await rm(store.root, { recursive: true, force: true });

  let tarBytes = 0;
  const rows: Row[] = [];
  rows.push(
    await time('imgbuild tar only', 0, async () => {
      for (const c of tarOf(treeEntries(corpus, 'c'))) tarBytes += c.length;
      return '';
    }),
  );
  rows[0]!.tarBytes = tarBytes;
  rows.push(
    await time('imgbuild tar + sha256', tarBytes, async () => {
      const h = createHash('sha256');
      for (const c of tarOf(treeEntries(corpus, 'c'))) h.update(c);
      return h.digest('hex').slice(0, 12);
    }),
  );
  rows.push(
    await time('imgbuild writeLayer none (tar + sha256 + write)', tarBytes, async () => {
      const b = await writeLayer(treeEntries(corpus, 'c'), { header, compressor: 'none' }, store);
      return b.digest.slice(7, 19);
    }),
  );
  let gzSize = 0;
  rows.push(
    await time('imgbuild writeLayer gzip (tar + gzip -6 + 2×sha256 + write)', tarBytes, async () => {
      const b = await writeLayer(treeEntries(corpus, 'c'), { header, compressor: 'gzip' }, store);
      gzSize = b.size;
      return `${b.digest.slice(7, 19)} ratio ${(b.uncompressedSize / b.size).toFixed(2)}:1`;
    }),
  );
  rows.push(await time('GNU tar | sha256sum', tarBytes, () => sh('tar -c --sort=name . | sha256sum').slice(0, 12)));
  const baseline = await time('GNU tar | gzip -6 -n | sha256sum (baseline)', tarBytes, () => sh('tar -c --sort=name . | gzip -6 -n | sha256sum').slice(0, 12));
  rows.push(baseline);
  if (spawnSync('sh', ['-c', 'command -v pigz']).status === 0) {
    rows.push(await time('GNU tar | pigz -p2 -6 -n | sha256sum', tarBytes, () => sh('tar -c --sort=name . | pigz -p2 -6 -n | sha256sum').slice(0, 12)));
  }
  await rm(store.root, { recursive: true, force: true });

  const mbps = (r: Row): number => r.tarBytes / 1e6 / r.seconds;
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`tar stream: ${(tarBytes / 1e6).toFixed(0)} MB; imgbuild gzip blob ${(gzSize / 1e6).toFixed(0)} MB`);
  console.log(`${'pipeline'.padEnd(w)}  ${'seconds'.padStart(8)}  ${'MB/s'.padStart(7)}  ${'× baseline'.padStart(10)}  note`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(w)}  ${r.seconds.toFixed(2).padStart(8)}  ${mbps(r).toFixed(0).padStart(7)}  ${(mbps(r) / mbps(baseline)).toFixed(2).padStart(10)}  ${r.note}`);
  }
  console.log(`peak RSS of this process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
}

await main();
