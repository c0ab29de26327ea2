/**
 * Warm rebuilds of n tiny store paths (issue 19: ≤ 1 s and ≤ 200 MiB at 50,000 paths; cost per
 * path flat): the same spec built again with the same IMGBUILD_CACHE_DIR to a fresh OCI layout,
 * nothing changed in the store, each build a separate `imgbuild build` process (as in CI).
 *
 * Per shape (bench/tiny-store.ts, cached in /var/tmp/imgbuild-bench-tiny): one cold build fills
 * the cache, then `runs` warm builds; with a baseline (another build of imgbuild, e.g. a copy of
 * an older dist/), its warm builds are interleaved with these (each with its own cache), and the
 * image digests must be equal. Printed: medians of wall and CPU (user + sys, the steadier figure
 * on a shared machine), the largest peak RSS, CPU per path, and the marginal CPU per path from
 * one shape to the next (what grows with n, without the fixed cost of a process).
 *
 * Run: node dist/bench/tiny-warm.js [runs=3] [paths=1000,10000,50000] [baseline dist dir]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, table } from './build-speed.js';
import { tinyPathsStore } from './tiny-store.js';

const runs = Number(process.argv[2] ?? 3);
const sizes = (process.argv[3] ?? '1000,10000,50000').split(',').map(Number);
const baseline = process.argv[4] ? resolve(process.argv[4]) : undefined;
// Not under TINY_ROOT: the stores there are shared (and only read here once made).
const work = join(tmpdir(), `imgbuild-tiny-warm-${process.pid}`);
const ours = resolve(fileURLToPath(import.meta.url), '../../builder/imgbuild.js');

interface Measured {
  seconds: number;
  cpu: number;
  rssMiB: number;
  digest: string;
}

/** One `imgbuild build` under GNU time: wall, CPU, peak RSS, and the digest it prints. */
function build(cli: string, spec: string, out: string, cache: string): Promise<Measured> {
  return new Promise((done, reject) => {
    rmSync(out, { recursive: true, force: true });
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'bench-time %U %S %M', process.execPath, cli, 'build', spec, '-o', out], {
      env: { ...process.env, IMGBUILD_CACHE_DIR: cache },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`${cli} build exited ${code}:\n${stderr}`));
      const m = /bench-time ([\d.]+) ([\d.]+) (\d+)/.exec(stderr)!;
      done({ seconds, cpu: Number(m[1]) + Number(m[2]), rssMiB: Number(m[3]) / 1024, digest: stdout.trim().split('\n').at(-1)! });
    });
  });
}

async function main(): Promise<void> {
  const clis: Array<[name: string, cli: string]> = [['imgbuild', ours], ...(baseline ? [['baseline', join(baseline, 'builder/imgbuild.js')] as [string, string]] : [])];
  const header = ['paths', ...clis.flatMap(([name]) => [`${name} warm (CPU)`, 'peak RSS', 'CPU / path', 'marginal CPU / path'])];
  if (baseline) header.push('CPU ratio');
  const rows = [header];
  const previous = new Map<string, { n: number; cpu: number }>();
  for (const n of sizes) {
    const store = tinyPathsStore(n);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    const spec = join(work, 'image.json');
    writeFileSync(spec, JSON.stringify({ name: 'bench/tiny', tag: 'v1', store: { dir: store.dir, storeDir: store.storeDir }, contents: store.roots, architecture: 'amd64', compressor: 'gzip' }));
    const results = new Map<string, Measured[]>(clis.map(([name]) => [name, []]));
    for (const [name, cli] of clis) {
      process.stderr.write(`${n} paths: cold build (${name})\n`);
      await build(cli, spec, join(work, `${name}.oci`), join(work, `cache-${name}`));
    }
    for (let i = 0; i < runs; i++) {
      for (const [name, cli] of clis) {
        const m = await build(cli, spec, join(work, `${name}.oci`), join(work, `cache-${name}`));
        process.stderr.write(`${n} paths, ${name}: ${m.seconds.toFixed(2)} s, ${m.cpu.toFixed(2)} s CPU, ${m.rssMiB.toFixed(0)} MiB, ${m.digest}\n`);
        results.get(name)!.push(m);
      }
    }
    const digests = new Set([...results.values()].flat().map((m) => m.digest));
    if (digests.size !== 1) throw new Error(`${n} paths: the builds gave different images: ${[...digests].join(' ')}`);
    const row = [n.toLocaleString('en')];
    const cpuOf = (name: string) => median(results.get(name)!.map((m) => m.cpu));
    for (const [name] of clis) {
      const ms = results.get(name)!;
      const cpu = cpuOf(name);
      const prev = previous.get(name);
      row.push(
        `${median(ms.map((m) => m.seconds)).toFixed(2)} s (${cpu.toFixed(2)} s)`,
        `${Math.max(...ms.map((m) => m.rssMiB)).toFixed(0)} MiB`,
        `${((cpu / n) * 1e6).toFixed(1)} µs`,
        prev ? `${(((cpu - prev.cpu) / (n - prev.n)) * 1e6).toFixed(1)} µs` : '',
      );
      previous.set(name, { n, cpu });
    }
    if (baseline) row.push(`${(cpuOf('imgbuild') / cpuOf('baseline')).toFixed(2)}×`);
    rows.push(row);
    process.stderr.write(`image ${[...digests][0]}\n`);
  }
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(`\ntiny paths, warm rebuild: median of ${runs}, Node ${process.version}${baseline ? `, baseline ${baseline}` : ''}\n\n${table(rows)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
