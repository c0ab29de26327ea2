/**
 * A cold build from a Nix binary cache over HTTP next to a cold build of the same closure from
 * the local Nix store, in the same run: wall time and peak RSS of each `imgbuild build` process.
 *
 * The closure: three store paths added to an isolated Nix 2.8 store (`nix-store --add`) from this
 * machine's largest shared libraries — one of a single 117 MB file (libLLVM-15), one of another
 * (libLLVM-14), one of ten more (~120 MB) — 350 MB of NAR, compressible about 4:1 like real
 * binaries. `nix copy --to file://…?compression=zstd` and `…xz` make the caches, served by a
 * static HTTP server in this process on 127.0.0.1. Every build starts with an empty imgbuild
 * cache and writes an OCI layout; the local-store build reads the store with `--nix`; the cache
 * builds run with the store's variables unset (no Nix needed). Each figure is the median of
 * `runs` runs (peak RSS: the maximum). Prepared once in /var/tmp/imgbuild-bench-bc (delete it to
 * start over). Printed, never asserted.
 *
 * Run: node dist/bench/binary-cache.js [runs=3]
 */
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const runs = Number(process.argv[2] ?? 3);
const cli = resolve(fileURLToPath(import.meta.url), '../../builder/imgbuild.js');
const work = '/var/tmp/imgbuild-bench-bc';
const LIB = '/usr/lib/x86_64-linux-gnu';
const GROUPS: Record<string, string[]> = {
  'llvm-15': ['libLLVM-15.so.1'],
  'llvm-14': ['libLLVM-14.so.1'],
  'libs': ['libicudata.so.72.1', 'libz3.so.4', 'libx265.so.199', 'librsvg-2.so.2.48.0', 'libasan.so.8.0.0', 'libtsan.so.2.0.0', 'libpython3.11.so.1.0', 'libSvtAv1Enc.so.1.4.1', 'libaom.so.3.6.0', 'libcrypto.so.3'],
};

const nixEnv: NodeJS.ProcessEnv = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: work,
  NIX_STORE_DIR: join(work, 'store'),
  NIX_STATE_DIR: join(work, 'state'),
  NIX_LOG_DIR: join(work, 'log'),
  NIX_CONF_DIR: join(work, 'conf'),
  NIX_REMOTE: '',
};

const nix = (cmd: string, args: string[]) => execFileSync(cmd, args, { env: nixEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();

/** The store paths, the caches and the spec, made once. */
function prepare(): { paths: string[]; spec: string } {
  const done = join(work, 'paths.json');
  if (existsSync(done)) return JSON.parse(readFileSync(done, 'utf8')) as { paths: string[]; spec: string };
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'conf'), { recursive: true });
  writeFileSync(join(work, 'conf', 'nix.conf'), 'sandbox = false\nbuild-users-group =\nsubstituters =\nexperimental-features = nix-command\n');
  const paths: string[] = [];
  for (const [name, files] of Object.entries(GROUPS)) {
    const src = join(work, 'src', name);
    mkdirSync(join(src, 'lib'), { recursive: true });
    for (const f of files) execFileSync('cp', ['-L', join(LIB, f), join(src, 'lib', f)]);
    paths.push(nix('nix-store', ['--add', src]));
  }
  nix('nix-store', ['--generate-binary-cache-key', 'bench-1', join(work, 'sk'), join(work, 'pk')]);
  for (const c of ['zstd', 'xz']) {
    process.stderr.write(`nix copy --to file://${work}/cache-${c}?compression=${c} …\n`);
    nix('nix', ['copy', '--to', `file://${work}/cache-${c}?compression=${c}&secret-key=${join(work, 'sk')}`, ...paths]);
  }
  const spec = join(work, 'image.json');
  writeFileSync(spec, JSON.stringify({ name: 'bench/binary-cache', tag: 'v1', architecture: 'amd64', store: { storeDir: nixEnv.NIX_STORE_DIR }, contents: paths }));
  writeFileSync(done, JSON.stringify({ paths, spec }));
  return { paths, spec };
}

const RSS_HOOK = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\nmaxrss-kib '+process.resourceUsage().maxRSS+'\\n'))`;

async function build(args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number; rssMiB: number; digest: string }> {
  const cache = join(work, 'imgbuild-cache');
  const out = join(work, 'out.oci');
  rmSync(cache, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
  execFileSync('sync');
  const start = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', RSS_HOOK, cli, ...args, '-o', out], { env: { ...env, IMGBUILD_CACHE_DIR: cache }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      const seconds = (performance.now() - start) / 1000;
      if (code !== 0) return reject(new Error(`imgbuild ${args.join(' ')} failed:\n${stderr}`));
      const m = /maxrss-kib (\d+)/.exec(stderr);
      resolvePromise({ seconds, rssMiB: m ? Number(m[1]) / 1024 : NaN, digest: stdout.trim() });
    });
  });
}

async function main(): Promise<void> {
  const { paths, spec } = prepare();
  const narBytes = paths.reduce((s, p) => s + Number(nix('nix-store', ['--query', '--size', p])), 0);
  const fileBytes = (c: string) => Number(execFileSync('du', ['-sb', join(work, `cache-${c}`, 'nar')], { encoding: 'utf8' }).split('\t')[0]);
  const server = createServer((req, res) => {
    const file = join(work, normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!)));
    if (!file.startsWith(`${work}/cache-`) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': String(statSync(file).size) });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const key = readFileSync(join(work, 'pk'), 'utf8').trim();
  const bare: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin', HOME: work };
  const cases: Array<[string, string[], NodeJS.ProcessEnv]> = [
    ['local Nix store (--nix)', ['build', spec, '--nix'], nixEnv],
    ['binary cache over HTTP, zstd', ['build', spec, '--substituter', `${url}/cache-zstd`, '--trusted-public-key', key], bare],
    ['binary cache over HTTP, xz', ['build', spec, '--substituter', `${url}/cache-xz`, '--trusted-public-key', key], bare],
  ];
  const results = new Map<string, { seconds: number[]; rss: number[]; digest: string }>();
  // Interleaved, so that a busy moment of the shared machine does not land on one case only.
  for (let i = 0; i < runs; i++) {
    for (const [name, args, env] of cases) {
      const r = await build(args, env);
      const acc = results.get(name) ?? { seconds: [], rss: [], digest: r.digest };
      if (acc.digest !== r.digest) throw new Error(`${name}: digest ${r.digest}, earlier ${acc.digest}`);
      acc.seconds.push(r.seconds);
      acc.rss.push(r.rssMiB);
      results.set(name, acc);
    }
  }
  server.close();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const base = median(results.get(cases[0]![0])!.seconds);
  const digests = new Set([...results.values()].map((r) => r.digest));
  console.log(`closure: ${paths.length} paths, ${(narBytes / 1e6).toFixed(0)} MB of NAR; cache files: zstd ${(fileBytes('zstd') / 1e6).toFixed(0)} MB, xz ${(fileBytes('xz') / 1e6).toFixed(0)} MB; ${runs} runs each; same manifest digest: ${digests.size === 1 ? 'yes' : 'NO'} (${[...digests].join(', ')})`);
  const rows = [['build (cold, gzip, OCI layout)', 'median wall', 'NAR MB/s', 'peak RSS (max)', 'vs local store']];
  for (const [name] of cases) {
    const r = results.get(name)!;
    const s = median(r.seconds);
    rows.push([name, `${s.toFixed(2)} s`, `${(narBytes / 1e6 / s).toFixed(0)}`, `${Math.max(...r.rss).toFixed(0)} MiB`, (s / base).toFixed(2)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(`| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`);
}

await main();
