/**
 * Per-invocation cost of a push (issue 19), next to `skopeo copy` of the same image to the same
 * local Debian `docker-registry` (started here on 127.0.0.1, stopped at the end), in the same run:
 *
 *   no-op re-push   the registry already holds the image: `imgbuild push oci:<dir> <ref>` vs
 *                   `skopeo copy oci:<dir> docker://<ref>` (each run once first, untimed), median
 *                   of `runs` processes, alternating
 *   20 at once      20 pushes started together, each to its own new repository (blobs uploaded):
 *                   wall time until the last ends, and the sum of the 20 processes' peak RSS
 *
 * The image: a small one built from bench/tiny-store.ts's 1,000-path store with maxLayers 6
 * (5 store layers and the customisation layer, ~0.5 MiB).
 *
 * Run: node dist/bench/push-shapes.js [runs=7] [concurrent=20]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/helpers/registry.js';
import { median, table } from './build-speed.js';
import { TINY_ROOT, tinyPathsStore } from './tiny-store.js';

const runs = Number(process.argv[2] ?? 7);
const concurrent = Number(process.argv[3] ?? 20);
const cli = resolve(fileURLToPath(import.meta.url), '../../builder/imgbuild.js');
const work = join(TINY_ROOT, 'push-work');

interface Run {
  seconds: number;
  rssMiB: number;
}

/** Runs a command under GNU time for its peak RSS; rejects on a non-zero exit. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'maxrss-kib %M', cmd, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${err}`));
      const m = /maxrss-kib (\d+)/.exec(err);
      resolvePromise({ seconds, rssMiB: m ? Number(m[1]) / 1024 : 0 });
    });
  });
}

async function main(): Promise<void> {
  const store = tinyPathsStore(1000);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const spec = join(work, 'image.json');
  writeFileSync(spec, JSON.stringify({ name: 'bench/small', tag: 'v1', store: { dir: store.dir, storeDir: store.storeDir }, contents: store.roots, architecture: 'amd64', maxLayers: 6 }));
  const layout = join(work, 'small.oci');
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  await timed(process.execPath, [cli, 'build', spec, '-o', layout], env);
  const registry = await startRegistry();
  try {
    const host = registry.host;
    const imgbuild = (ref: string) => timed(process.execPath, [cli, 'push', `oci:${layout}`, `${host}/${ref}`, '--insecure-registry', host], env);
    const skopeo = (ref: string) => timed('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}`, `docker://${host}/${ref}`]);
    await imgbuild('bench/small-imgbuild:v1');
    await skopeo('bench/small-skopeo:v1');
    const noop: Record<string, Run[]> = { imgbuild: [], skopeo: [] };
    for (let i = 0; i < runs; i++) {
      noop.skopeo!.push(await skopeo('bench/small-skopeo:v1'));
      noop.imgbuild!.push(await imgbuild('bench/small-imgbuild:v1'));
    }
    const many = async (push: (ref: string) => Promise<Run>, name: string) => {
      const t0 = process.hrtime.bigint();
      const all = await Promise.all(Array.from({ length: concurrent }, (_, i) => push(`bench/many-${name}-${i}:v1`)));
      return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, rssMiB: all.reduce((s, r) => s + r.rssMiB, 0) };
    };
    const manySkopeo = await many(skopeo, 'skopeo');
    const manyImgbuild = await many(imgbuild, 'imgbuild');
    const sec = (xs: Run[]) => median(xs.map((r) => r.seconds));
    const rss = (xs: Run[]) => Math.max(...xs.map((r) => r.rssMiB));
    const rows = [
      ['step', 'skopeo copy', 'imgbuild push', 'ratio', 'target', 'peak RSS (skopeo / imgbuild)'],
      [`no-op re-push, median of ${runs}`, `${(sec(noop.skopeo!) * 1000).toFixed(0)} ms`, `${(sec(noop.imgbuild!) * 1000).toFixed(0)} ms`, `${(sec(noop.imgbuild!) / sec(noop.skopeo!)).toFixed(2)}×`, '≤ 2.5×', `${rss(noop.skopeo!).toFixed(0)} / ${rss(noop.imgbuild!).toFixed(0)} MiB`],
      [`${concurrent} pushes at once (wall; RSS summed)`, `${manySkopeo.seconds.toFixed(2)} s`, `${manyImgbuild.seconds.toFixed(2)} s`, `${(manyImgbuild.seconds / manySkopeo.seconds).toFixed(2)}×`, '≤ 1.5×', `${manySkopeo.rssMiB.toFixed(0)} / ${manyImgbuild.rssMiB.toFixed(0)} MiB`],
    ];
    process.stdout.write(`\npush shapes: docker-registry on ${host}, a 6-layer image of 1,000 tiny paths, ${availableParallelism()} cores, Node ${process.version}\n\n${table(rows)}\n`);
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
