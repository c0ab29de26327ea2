/**
 * Push speed to a local Debian `docker-registry` (started here on 127.0.0.1, stopped at the end)
 * of the image of the generated Debian store (bench/debian-store.ts), each step one
 * `imgbuild build --push` process (as a CI job runs it: no image file is written):
 *
 *   cold push      layers cached locally (a build ran before), registry empty
 *   warm re-push   nothing changed: the registry holds the manifest, so no blob is checked one by
 *                  one (target < 1 s, 0 blob bytes); median of 5
 *   records only   the cache's blobs deleted, its layer records kept, pushed to an empty
 *                  repository: every layer made again from the store while it is uploaded
 *   fresh checkout a copy of the store (new file times) pushed again with only the layer records
 *                  kept, as the next CI run of an unchanged commit: scanned, nothing sent
 *   mid-level bump one package in the middle of the graph gets a new version: it and every path
 *                  depending on it get new store paths (bytes and layers uploaded)
 *   app-only bump  one top-level package gets a new version (only its layer should go up)
 *   stable         the two bumps again with `layering.strategy: stable` and `--previous` the base
 *                  image in the registry: layers still whole are kept, so only the changed paths go up
 *
 * Wall time and peak RSS per process; bytes sent are the registry client's count of blob bytes.
 * Results are printed as a table, never asserted.
 *
 * Run: node dist/bench/push-speed.js [budgetMB=1024]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../builder/build/build-image.js';
import { pushImage } from '../builder/transports/registry.js';
import { loadSpec } from '../builder/spec/load.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { parseReference, RegistryClient } from '../registry-client/index.js';
import { startRegistry } from '../test/helpers/registry.js';
import { imgbuild, table, type Measured } from './build-speed.js';
import { bump, generateStore, midLevelPackage, type GeneratedStore } from './debian-store.js';

const budgetMB = Number(process.argv[2] ?? 1024);
const work = '/var/tmp/imgbuild-bench-push';

interface Pushed {
  uploaded: number;
  skipped: number;
  mounted: number;
  bytesSent: number;
  alreadyThere: boolean;
}

const WARM_RUNS = 5;

function specFor(store: GeneratedStore, roots: string[], name: string, strategy = 'auto', dir = store.dir): string {
  const file = join(work, `${name}.json`);
  const layering = strategy === 'auto' ? {} : { layering: { strategy } };
  writeFileSync(file, JSON.stringify({ name: 'bench/debian', tag: 'v1', store: { dir, storeDir: store.storeDir }, contents: roots, maxLayers: 100, ...layering }));
  return file;
}

/** NAR bytes of the paths a bump changed: what an ideal push would send, before compression. */
function changedMiB(bumped: { graph: { paths: { path: string; narSize: number }[] }; changed: string[] }): string {
  const changed = new Set(bumped.changed);
  return (bumped.graph.paths.filter((p) => changed.has(p.path)).reduce((n, p) => n + p.narSize, 0) / 2 ** 20).toFixed(1);
}

/** A top-level package: one no other package depends on, with files. */
function topLevelPackage(store: GeneratedStore): string {
  const used = new Set([...store.packages.packages.values()].flatMap((p) => p.deps));
  const tops = [...store.packages.packages.values()].filter((p) => !used.has(p.name) && p.narSize > 0);
  tops.sort((a, b) => b.narSize - a.narSize || (a.name < b.name ? -1 : 1));
  return tops[Math.floor(tops.length / 2)]!.name;
}

async function main(): Promise<void> {
  const store = generateStore(budgetMB, (m) => process.stderr.write(`${m}\n`));
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  const registry = await startRegistry();
  try {
    const ref = `${registry.host}/bench/debian:v1`;
    const push = async (spec: string, target = ref, extra: string[] = []): Promise<Measured & { pushed: Pushed; layers: number }> => {
      const m = await imgbuild(['build', spec, '--push', target, '--insecure-registry', registry.host, '--json', ...extra], env);
      const out = JSON.parse(m.stdout) as { pushed: Pushed; layers: unknown[] };
      return { ...m, pushed: out.pushed, layers: out.layers.length };
    };
    const base = specFor(store, store.roots, 'base');
    process.stderr.write('building (not timed) ...\n');
    await imgbuild(['build', base, '-o', join(work, 'base.oci')], env);
    rmSync(join(work, 'base.oci'), { recursive: true, force: true });

    const rows: string[][] = [['step', 'wall', 'peak RSS', 'layers', 'blobs uploaded', 'blob bytes sent', 'already there']];
    const there = (p: { skipped: number; alreadyThere: boolean }) => `${p.skipped}${p.alreadyThere ? ' (manifest held)' : ''}`;
    const row = (name: string, r: Measured & { pushed: Pushed; layers: number }) =>
      rows.push([name, `${r.seconds.toFixed(2)} s`, `${r.rssMiB?.toFixed(0) ?? '?'} MiB`, String(r.layers), String(r.pushed.uploaded), `${(r.pushed.bytesSent / 2 ** 20).toFixed(1)} MiB`, there(r.pushed)]);
    row('cold push (layers cached, registry empty)', await push(base));
    const warm: (Measured & { pushed: Pushed; layers: number })[] = [];
    for (let i = 0; i < WARM_RUNS; i++) warm.push(await push(base));
    warm.sort((a, b) => a.seconds - b.seconds);
    const all = warm.map((r) => r.seconds.toFixed(2)).join(', ');
    row(`warm rebuild + re-push, nothing changed (median of ${WARM_RUNS}: ${all} s)`, warm[Math.floor(WARM_RUNS / 2)]!);
    // The push alone, in process: a new client (ping, auth) and one HEAD per blob, then the manifest.
    const cacheDir = join(work, 'cache');
    const { image } = await buildImage(await loadSpec(base, {}), {
      store: new DirectoryStoreSource(store.dir, store.storeDir, { cacheDir: join(cacheDir, 'scan') }),
      cacheDir,
    });
    const client = new RegistryClient({ insecureRegistries: [registry.host] });
    const t0 = process.hrtime.bigint();
    const only = await pushImage(client, parseReference(ref), image);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await client.close();
    rows.push(['re-push only (in process, new client), nothing changed', `${seconds.toFixed(3)} s`, '', String(image.layers.length), String(only.uploaded), `${(only.bytesSent / 2 ** 20).toFixed(1)} MiB`, there(only)]);

    // A cache that kept its layer records but not its blobs (a CI cache of the small files),
    // pushing to a repository that holds nothing: every store layer is made again from the store
    // as it is uploaded, and none is written to disk. Compare with the cold push, which reads
    // the blobs from the cache.
    rmSync(join(cacheDir, 'blobs'), { recursive: true, force: true });
    row('records only (blobs pruned), new repository: layers made again as they are sent', await push(base, `${registry.host}/bench/debian-records-only:v1`));
    // The next CI run of an unchanged commit: a fresh checkout of the store (new file times) and a
    // cache restored with its layer records only. The scan reads the store; nothing is written or sent.
    const checkout = join(work, 'checkout');
    spawnSync('cp', ['-r', '--preserve=mode', store.dir, checkout]); // modes kept (setuid bits too), times new
    rmSync(join(cacheDir, 'scan'), { recursive: true, force: true });
    row('fresh checkout, layer records only, nothing changed', await push(specFor(store, store.roots, 'checkout', 'auto', checkout)));
    rmSync(checkout, { recursive: true, force: true });

    const mid = midLevelPackage(store);
    const midBump = bump(store, mid);
    row(`mid-level bump: ${mid} (${midBump.changed.length} paths changed, ${changedMiB(midBump)} MiB of NAR)`, await push(specFor(store, midBump.roots, 'mid')));
    const top = topLevelPackage(store);
    const topBump = bump(store, top);
    row(`app-only bump: ${top} (${topBump.changed.length} path changed, ${changedMiB(topBump)} MiB of NAR)`, await push(specFor(store, topBump.roots, 'top')));

    // The same bumps with stable layering, each from the base image (--previous: its layers are
    // read back from the registry's manifest and kept while whole).
    const stableBase = `${registry.host}/bench/debian-stable:base`;
    const stableNext = `${registry.host}/bench/debian-stable:next`;
    row('stable layering: cold push of the base image', await push(specFor(store, store.roots, 'stable-base', 'stable'), stableBase));
    const previous = ['--previous', stableBase];
    row(`stable, --previous base: mid-level bump (${changedMiB(midBump)} MiB of NAR changed)`, await push(specFor(store, midBump.roots, 'stable-mid', 'stable'), stableNext, previous));
    row(`stable, --previous base: app-only bump (${changedMiB(topBump)} MiB of NAR changed)`, await push(specFor(store, topBump.roots, 'stable-top', 'stable'), stableNext, previous));
    process.stdout.write(`\npush speed: docker-registry on ${registry.host}, ${store.graph.paths.length} store paths, ${(store.fileBytes / 1e9).toFixed(2)} GB\n\n${table(rows)}\n`);
  } finally {
    await registry.stop();
  }
}

await main();
