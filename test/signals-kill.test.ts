// SIGKILL in every phase of a build (scanning the store, writing layers into the cache, pushing,
// pulling a base image), then the same build again: the right digest, and after `cache prune`
// no temp file is left in the cache (nor beside the output). A killed process cannot clean up:
// what it leaves must be recognisable (its pid is in the name) and removed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, tool } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { noise, startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { needTool } from './helpers/tools.js';
import { tempBlobs } from './helpers/interrupt.js';

let work: string;
let spec: string;
/** The digest of the spec's image, built once with a cache of its own. */
let expected: string;
let registry: RunningRegistry | undefined;

const BIG = 24 * 1024 * 1024;

before(async () => {
  work = await tempDir('imgbuild-kill-');
  // A directory store with a small path and a big one: scanning and writing the big one take long enough to be caught mid-way.
  const store = join(work, 'store');
  const small = `${'1'.repeat(32)}-small-1.0`;
  const big = `${'2'.repeat(32)}-big-1.0`;
  await mkdir(join(store, small), { recursive: true });
  await writeFile(join(store, small, 'note'), 'small\n');
  await mkdir(join(store, big), { recursive: true });
  await writeFile(join(store, big, 'data'), noise(BIG, 'kill'));
  spec = join(work, 'image.json');
  await writeFile(spec, JSON.stringify({ name: 'kill/app', tag: '1', architecture: 'amd64', store: { dir: store }, contents: [`/nix/store/${small}`, `/nix/store/${big}`] }));
  const r = await runCli(['build', spec, '-o', join(work, 'reference.oci')]);
  assert.equal(r.code, 0, r.stderr);
  expected = r.stdout.toString().trim();
});

after(async () => {
  await registry?.stop();
});

/** The CLI as a child process, its stderr collected. */
function startCli(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; stderr: () => string; exited: Promise<void> } {
  const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout!.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, stderr: () => err, exited };
}

/** Wait until `ready()` holds, freeze the process (SIGSTOP), check `still()` while nothing can move, then SIGKILL it. */
async function killWhen(run: ReturnType<typeof startCli>, ready: () => Promise<boolean>, still: () => Promise<string | undefined>): Promise<void> {
  const { child } = run;
  while (!(await ready())) {
    if (child.exitCode !== null) throw new Error(`the build exited (${child.exitCode}) before the phase to kill it in:\n${run.stderr()}`);
    await sleep(5);
  }
  child.kill('SIGSTOP');
  await sleep(50);
  const wrong = await still();
  child.kill('SIGKILL');
  await run.exited;
  if (wrong) throw new Error(`not killed in the phase meant: ${wrong}`);
  assert.equal(child.signalCode, 'SIGKILL');
}

/** Bytes the process has read (all threads), from /proc. */
async function bytesRead(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
  return Number(/^rchar: (\d+)/m.exec(io)?.[1] ?? 0);
}

/** Every temp file under `dir` (the names imgbuild's writers and the registry client's pulls give them), recursively. */
async function tempFilesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (/\.tmp-\d+-|^\.tmp-|\.tmp$/.test(e.name)) out.push(p);
    else if (e.isDirectory()) out.push(...(await tempFilesUnder(p)));
  }
  return out;
}

/** Age every temp file by two minutes: prune leaves a dead process's temp file alone for a minute after its last write (a writer in another pid namespace). */
async function age(files: string[]): Promise<void> {
  const then = new Date(Date.now() - 120_000);
  for (const f of files) await utimes(f, then, then);
}

/** Rerun to the right digest, then prune: no temp file left in the cache. */
async function rerunAndPrune(args: string[], env: NodeJS.ProcessEnv, cache: string, want: string): Promise<void> {
  const r = await runCli(args, { env });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.toString().includes(want), `expected ${want} in ${r.stdout}`);
  await age(await tempFilesUnder(cache));
  const p = await runCli(['cache', 'prune', '--json'], { env });
  assert.equal(p.code, 0, p.stderr);
  assert.deepEqual(await tempFilesUnder(cache), []);
}

async function cacheEnv(): Promise<{ cache: string; env: NodeJS.ProcessEnv }> {
  const cache = await tempDir('imgbuild-kill-cache-');
  return { cache, env: { ...process.env, IMGBUILD_CACHE_DIR: cache, DOCKER_CONFIG: join(work, 'docker') } };
}

test('SIGKILL while the store is scanned, then a rerun: the right digest; after cache prune no temp file', async () => {
  const { cache, env } = await cacheEnv();
  const out = join(work, 'scan.oci');
  const run = startCli(['build', spec, '-o', out], env);
  await killWhen(
    run,
    async () => (await bytesRead(run.child.pid!)) > BIG / 3,
    async () => {
      if (run.stderr().includes('closure:')) return `the closure was done:\n${run.stderr()}`;
      const blobs = await readdir(join(cache, 'blobs', 'sha256')).catch(() => []);
      return blobs.length > 0 ? `layers were being written: ${blobs.join(', ')}` : undefined;
    },
  );
  await rerunAndPrune(['build', spec, '-o', out], env, cache, expected);
  assert.deepEqual((await readdir(work)).filter((n) => n.startsWith('.scan.oci.')), []);
});

test('SIGKILL while a layer is written into the cache, then a rerun: the right digest; after cache prune no temp file', async () => {
  const { cache, env } = await cacheEnv();
  const out = join(work, 'write.tar');
  const run = startCli(['build', spec, '-f', 'docker-archive', '-o', out], env);
  const blobRoot = join(cache, 'blobs');
  await killWhen(
    run,
    async () => (await tempBlobs(blobRoot)).some((b) => b.size >= 1024 * 1024),
    async () => ((await tempBlobs(blobRoot)).some((b) => b.size >= 1024 * 1024) ? undefined : 'no part-written layer'),
  );
  assert.ok((await tempBlobs(blobRoot)).length > 0, 'the kill left a temp blob (what prune must remove)');
  await rerunAndPrune(['build', spec, '-f', 'docker-archive', '-o', out], env, cache, expected);
  assert.deepEqual((await readdir(work)).filter((n) => n.startsWith('.write.tar.')), []);
});

/**
 * A proxy in front of the registry that SIGKILLs `victim()` once a matching request has sent
 * (or been answered with) `bytes` body bytes, then cuts the connection: the kill lands in the
 * middle of an upload or a download.
 */
interface KillRule {
  match: (method: string, path: string) => boolean;
  direction: 'request' | 'response';
  bytes: number;
  victim: () => ChildProcess | undefined;
  /** Instead of killing: stop forwarding the response there (the client waits, mid-download), for the test to kill it when it sees fit. */
  stall?: boolean;
}

async function killingProxy(upstream: number): Promise<{ host: string; arm(rule: KillRule | undefined): void; close(): Promise<void> }> {
  let armed: KillRule | undefined;
  const server: Server = createServer((req, res) => {
    const hit = armed && armed.match(req.method ?? '', (req.url ?? '').split('?')[0]!) ? armed : undefined;
    const kill = () => {
      if (!hit || armed !== hit) return;
      armed = undefined;
      hit.victim()?.kill('SIGKILL');
      req.socket.destroy();
    };
    const up = httpRequest({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      let sent = 0;
      ur.on('data', (c: Buffer) => {
        sent += c.length;
        if (hit?.direction !== 'response' || sent < hit.bytes || armed !== hit) return;
        if (!hit.stall) return kill();
        armed = undefined;
        ur.unpipe(res);
        ur.pause();
      });
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    let got = 0;
    req.on('data', (c: Buffer) => {
      got += c.length;
      if (hit?.direction === 'request' && got >= hit.bytes) kill();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    arm: (r) => {
      armed = r;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test('SIGKILL in the middle of a blob upload (build --push), then a rerun: the pushed digest is right; after cache prune no temp file', async (t) => {
  if (!needTool(t, 'docker-registry', 'skopeo')) return;
  registry ??= await startRegistry();
  const proxy = await killingProxy(registry.port);
  try {
    const { cache, env } = await cacheEnv();
    const ref = `${proxy.host}/kill/push:1`;
    const digestFile = join(work, 'push.digest');
    const args = ['build', spec, '--push', ref, '--insecure-registry', proxy.host, '--digest-file', digestFile];
    let run: ReturnType<typeof startCli> | undefined;
    proxy.arm({ match: (m, p) => (m === 'PATCH' || m === 'PUT') && p.includes('/blobs/uploads/'), direction: 'request', bytes: 1024 * 1024, victim: () => run?.child });
    run = startCli(args, env);
    await run.exited;
    assert.equal(run.child.signalCode, 'SIGKILL', `killed mid-upload:\n${run.stderr()}`);
    await assert.rejects(stat(digestFile), { code: 'ENOENT' });
    proxy.arm(undefined);
    await rerunAndPrune(args, env, cache, expected);
    assert.equal((await readFile(digestFile, 'utf8')).trim(), expected);
    const info = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/kill/push:1`]));
    assert.equal(info.Digest, expected);
  } finally {
    await proxy.close();
  }
});

test('SIGKILL while a base image is pulled (fromImage from the registry, and the registry client pulling into the cache), then a rerun: right digest; after cache prune no temp file', async (t) => {
  if (!needTool(t, 'docker-registry', 'skopeo')) return;
  registry ??= await startRegistry();
  const proxy = await killingProxy(registry.port);
  try {
    const { cache, env } = await cacheEnv();
    // The big image as a base on the registry, and a spec on top of it.
    const baseRef = `${registry.host}/kill/base:1`;
    await tool('skopeo', ['copy', '--dest-tls-verify=false', `oci:${join(work, 'reference.oci')}`, `docker://${baseRef}`]);
    const onTop = join(work, 'on-base.json');
    await writeFile(onTop, JSON.stringify({ name: 'kill/on-base', tag: '1', architecture: 'amd64', fromImage: `${proxy.host}/kill/base:1`, files: [{ path: '/etc/motd', content: 'on a base\n' }] }));
    const reference = await runCli(['build', onTop, '-o', join(work, 'on-base-reference.oci'), '--insecure-registry', proxy.host], { env: { ...env, IMGBUILD_CACHE_DIR: await tempDir('imgbuild-kill-ref-') } });
    assert.equal(reference.code, 0, reference.stderr);
    const want = reference.stdout.toString().trim();

    // 1. The build, killed while it streams the base's big layer from the registry into its output.
    const out = join(work, 'pulled.oci');
    const args = ['build', onTop, '-o', out, '--insecure-registry', proxy.host];
    let run: ReturnType<typeof startCli> | undefined;
    const bigBlob = (m: string, p: string) => m === 'GET' && /\/blobs\/sha256:/.test(p);
    proxy.arm({ match: bigBlob, direction: 'response', bytes: 1024 * 1024, victim: () => run?.child });
    run = startCli(args, env);
    await run.exited;
    assert.equal(run.child.signalCode, 'SIGKILL', `killed mid-download:\n${run.stderr()}`);
    proxy.arm(undefined);
    await rerunAndPrune(args, env, cache, want);
    assert.deepEqual((await readdir(work)).filter((n) => n.startsWith('.pulled.oci.')), [], 'the killed build\'s temp output is removed by the rerun');

    // 2. The registry client's pull (the library's pullImage) into the cache's blob store, killed mid-download: it leaves `<hex>.tmp-<pid>-*`.
    const script = join(work, 'pull.mjs');
    await writeFile(
      script,
      `import { RegistryClient, pullImage, parseReference } from ${JSON.stringify(join(repoRoot, 'dist/registry-client/index.js'))};
const client = new RegistryClient({ insecureRegistries: [${JSON.stringify(proxy.host)}], credentials: async () => undefined });
await pullImage(client, parseReference(${JSON.stringify(`${proxy.host}/kill/base:1`)}), { blobDir: ${JSON.stringify(join(cache, 'blobs'))}, platform: { os: 'linux', architecture: 'amd64' } });
`,
    );
    // The big layer's response stalls after 1 MiB; once the pull's temp file holds bytes, SIGKILL.
    proxy.arm({ match: bigBlob, direction: 'response', bytes: 1024 * 1024, victim: () => undefined, stall: true });
    const pull = spawn(process.execPath, [script], { stdio: 'ignore' });
    const pulled = new Promise<void>((resolve) => pull.once('exit', () => resolve()));
    // The big layer's temp file, not any: a small blob's can be seen part-written and then be
    // renamed into place before the kill, leaving nothing to find.
    const big = await biggestLayerHex(join(work, 'reference.oci'));
    const partial = async () => {
      const dir = join(cache, 'blobs', 'sha256');
      for (const n of await readdir(dir).catch(() => [] as string[])) {
        if (n.startsWith(`${big}.tmp-`) && ((await stat(join(dir, n)).catch(() => undefined))?.size ?? 0) > 0) return true;
      }
      return false;
    };
    while (!(await partial())) {
      if (pull.exitCode !== null) throw new Error(`the pull ended (${pull.exitCode}) before it was part-written`);
      await sleep(5);
    }
    pull.kill('SIGKILL');
    await pulled;
    assert.equal(pull.signalCode, 'SIGKILL');
    const left = (await readdir(join(cache, 'blobs', 'sha256'))).filter((n) => /^[0-9a-f]{64}\.tmp-\d+-/.test(n));
    assert.ok(left.length > 0, 'the killed pull left a <hex>.tmp-<pid>-* file');
    await age(left.map((n) => join(cache, 'blobs', 'sha256', n)));
    const p = await runCli(['cache', 'prune', '--json'], { env });
    assert.equal(p.code, 0, p.stderr);
    assert.ok(JSON.parse(p.stdout.toString()).removed.tempFiles.stale.count >= left.length);
    assert.deepEqual(await tempFilesUnder(cache), []);
  } finally {
    await proxy.close();
  }
});

/** The hex digest of the biggest layer of the single image in the OCI layout at `dir`. */
async function biggestLayerHex(dir: string): Promise<string> {
  const blob = async (digest: string) => JSON.parse(await readFile(join(dir, 'blobs', ...digest.split(':')), 'utf8'));
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  const manifest = await blob(index.manifests[0].digest);
  const layers = manifest.layers as Array<{ digest: string; size: number }>;
  return layers.reduce((a, b) => (b.size > a.size ? b : a)).digest.split(':')[1]!;
}
