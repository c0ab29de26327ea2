/**
 * Per-invocation cost of a push (issue 19), next to `skopeo copy` of the same image to the same
 * local Debian `docker-registry` (started here on 127.0.0.1, stopped at the end), in the same run:
 *
 *   no-op re-push   the registry already holds the image: `imgbuild push oci:<dir> <ref>` vs
 *                   `skopeo copy oci:<dir> docker://<ref>` (each run once first, untimed: it also
 *                   fills Node's compile cache), median of `runs` processes, alternating; with it
 *                   `node -e 0` and `imgbuild --version`, wall and CPU (user + system)
 *   20 at once      20 pushes started together, each to its own new repository (blobs uploaded):
 *                   wall time until the last ends, the sum of the 20 processes' CPU and of their
 *                   peak RSS; median of `rounds` rounds, alternating which tool goes first, with
 *                   each Node
 *
 * Each in two conditions, for imgbuild and skopeo alike: the environment as given, and with
 * NODE_EXTRA_CA_CERTS unset. Node 20 reads that bundle (and its own roots) when it starts, before
 * any of imgbuild's code runs (~90 ms of CPU where it names the system's ca-certificates.crt):
 * the second condition shows what is imgbuild's own. The no-op rows are repeated with the Node
 * 22 and 24 of `scripts/install-nodes.sh` when they are installed (nothing is downloaded here).
 *
 * The image: a small one built from bench/tiny-store.ts's 1,000-path store with maxLayers 6
 * (5 store layers and the customisation layer, ~0.5 MiB).
 *
 * Run: node dist/bench/push-shapes.js [runs=7] [concurrent=20] [rounds=3]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/helpers/registry.js';
import { median, table } from './build-speed.js';
import { TINY_ROOT, tinyPathsStore } from './tiny-store.js';

const runs = Number(process.argv[2] ?? 7);
const concurrent = Number(process.argv[3] ?? 20);
const rounds = Number(process.argv[4] ?? 3);
const here = fileURLToPath(import.meta.url);
// The package's bin, what `imgbuild` runs (dist/builder/imgbuild.cjs).
const cli = resolve(here, '../../..', (JSON.parse(readFileSync(resolve(here, '../../../package.json'), 'utf8')) as { bin: { imgbuild: string } }).bin.imgbuild);
const work = join(TINY_ROOT, 'push-work');

interface Run {
  seconds: number;
  cpu: number;
  rssMiB: number;
}

/** Runs a command under GNU time for its CPU time and peak RSS; rejects on a non-zero exit. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'maxrss-kib %M cpu %U %S', cmd, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${err}`));
      const m = /maxrss-kib (\d+) cpu ([\d.]+) ([\d.]+)/.exec(err);
      resolvePromise({ seconds, cpu: m ? Number(m[2]) + Number(m[3]) : 0, rssMiB: m ? Number(m[1]) / 1024 : 0 });
    });
  });
}

/** The Node binaries to time the no-op with: this one, then 22 and 24 if install-nodes.sh put them here. */
function nodes(): { name: string; bin: string }[] {
  const out = [{ name: `Node ${process.versions.node.split('.')[0]}`, bin: process.execPath }];
  for (const major of ['22', '24']) {
    const bin = resolve(here, `../../../node_modules/.cache/imgbuild-test/nodes/${major}/node_modules/node-linux-${process.arch}/bin/node`);
    if (existsSync(bin) && !process.version.startsWith(`v${major}.`)) out.push({ name: `Node ${major}`, bin });
  }
  return out;
}

const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
const sec = (xs: Run[]) => median(xs.map((r) => r.seconds));
const cpu = (xs: Run[]) => median(xs.map((r) => r.cpu));
const rss = (xs: Run[]) => Math.max(...xs.map((r) => r.rssMiB));

async function main(): Promise<void> {
  const store = tinyPathsStore(1000);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const spec = join(work, 'image.json');
  writeFileSync(spec, JSON.stringify({ name: 'bench/small', tag: 'v1', store: { dir: store.dir, storeDir: store.storeDir }, contents: store.roots, architecture: 'amd64', maxLayers: 6 }));
  const layout = join(work, 'small.oci');
  const given: NodeJS.ProcessEnv = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  const { NODE_EXTRA_CA_CERTS: _extraCa, ...withoutCa } = given;
  const conditions = [
    { name: process.env.NODE_EXTRA_CA_CERTS ? `NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS}` : 'environment as given (no NODE_EXTRA_CA_CERTS)', env: given },
    ...(process.env.NODE_EXTRA_CA_CERTS ? [{ name: 'NODE_EXTRA_CA_CERTS unset', env: withoutCa }] : []),
  ];
  await timed(process.execPath, [cli, 'build', spec, '-o', layout], given);
  const registry = await startRegistry();
  const rows = [['condition', 'step', 'skopeo copy', 'imgbuild push', 'ratio', 'CPU: skopeo / imgbuild (ratio)', 'target', 'peak RSS (skopeo / imgbuild)']];
  try {
    const host = registry.host;
    for (const cond of conditions) {
      const skopeo = (ref: string) => timed('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}`, `docker://${host}/${ref}`], cond.env);
      for (const node of nodes()) {
        const imgbuild = (ref: string) => timed(node.bin, [cli, 'push', `oci:${layout}`, `${host}/${ref}`, '--insecure-registry', host], cond.env);
        await imgbuild('bench/small-imgbuild:v1');
        await skopeo('bench/small-skopeo:v1');
        const noop: Record<'imgbuild' | 'skopeo' | 'node' | 'version', Run[]> = { imgbuild: [], skopeo: [], node: [], version: [] };
        for (let i = 0; i < runs; i++) {
          noop.skopeo.push(await skopeo('bench/small-skopeo:v1'));
          noop.imgbuild.push(await imgbuild('bench/small-imgbuild:v1'));
          noop.node.push(await timed(node.bin, ['-e', '0'], cond.env));
          noop.version.push(await timed(node.bin, [cli, '--version'], cond.env));
        }
        rows.push(
          [cond.name, `${node.name}: no-op re-push, median of ${runs}`, ms(sec(noop.skopeo)), ms(sec(noop.imgbuild)), `${(sec(noop.imgbuild) / sec(noop.skopeo)).toFixed(2)}×`,
            `${ms(cpu(noop.skopeo))} / ${ms(cpu(noop.imgbuild))} (${(cpu(noop.imgbuild) / cpu(noop.skopeo)).toFixed(2)}×)`, '≤ 2.5×', `${rss(noop.skopeo).toFixed(0)} / ${rss(noop.imgbuild).toFixed(0)} MiB`],
          [cond.name, `${node.name}: \`node -e 0\` / \`imgbuild --version\``, '', `${ms(sec(noop.node))} / ${ms(sec(noop.version))}`, `${(sec(noop.version) / sec(noop.node)).toFixed(2)}×`,
            `${ms(cpu(noop.node))} / ${ms(cpu(noop.version))}`, 'near 1×', `${rss(noop.node).toFixed(0)} / ${rss(noop.version).toFixed(0)} MiB`],
        );
      }
      const tag = cond === conditions[0] ? 'a' : 'b';
      // The 20 at once with each Node too: Node 20 reads NODE_EXTRA_CA_CERTS in every process
      // before any of our code runs, where 22 and 24 read it only when TLS is used. Rounds
      // alternate which tool goes first; the row gives medians.
      for (const node of nodes()) {
        const imgbuild = (ref: string) => timed(node.bin, [cli, 'push', `oci:${layout}`, `${host}/${ref}`, '--insecure-registry', host], cond.env);
        const many = async (push: (ref: string) => Promise<Run>, name: string, round: number) => {
          const t0 = process.hrtime.bigint();
          const all = await Promise.all(Array.from({ length: concurrent }, (_, i) => push(`bench/many-${name}-${tag}-${node.name.replace(/\W/g, '').toLowerCase()}-${round}-${i}:v1`)));
          return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpu: all.reduce((s, r) => s + r.cpu, 0), rssMiB: all.reduce((s, r) => s + r.rssMiB, 0) };
        };
        const manySkopeo: Run[] = [];
        const manyImgbuild: Run[] = [];
        for (let round = 0; round < rounds; round++) {
          if (round % 2 === 0) {
            manySkopeo.push(await many(skopeo, 'skopeo', round));
            manyImgbuild.push(await many(imgbuild, 'imgbuild', round));
          } else {
            manyImgbuild.push(await many(imgbuild, 'imgbuild', round));
            manySkopeo.push(await many(skopeo, 'skopeo', round));
          }
        }
        rows.push([cond.name, `${node.name}: ${concurrent} pushes at once, median of ${rounds} (wall; CPU and RSS summed)`, `${sec(manySkopeo).toFixed(2)} s`, `${sec(manyImgbuild).toFixed(2)} s`,
          `${(sec(manyImgbuild) / sec(manySkopeo)).toFixed(2)}×`, `${cpu(manySkopeo).toFixed(2)} s / ${cpu(manyImgbuild).toFixed(2)} s (${(cpu(manyImgbuild) / cpu(manySkopeo)).toFixed(2)}×)`, '≤ 1.5×',
          `${rss(manySkopeo).toFixed(0)} / ${rss(manyImgbuild).toFixed(0)} MiB`]);
      }
    }
    process.stdout.write(`\npush shapes: docker-registry on ${host}, a 6-layer image of 1,000 tiny paths, ${availableParallelism()} cores, bench run by Node ${process.version}\n\n${table(rows)}\n`);
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
