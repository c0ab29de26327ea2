import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import tar from 'tar-stream';
import { RegistryClient } from '../../registry-client/client.js';
import type { RetryOptions } from '../../registry-client/retry.js';
import { after } from 'node:test';
import { startFaultProxy, uploadsByDigest, type FaultProxy } from './fault-proxy.js';
import { toolFixture, type ToolFixture } from './tools.js';

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A throwaway CA and a server certificate for 127.0.0.1 signed by it (made with openssl: callers ask for it with needTool). */
export interface TestCa {
  caCert: string;
  caCertPath: string;
  certPath: string;
  keyPath: string;
}

export function makeTestCa(dir: string): TestCa {
  const p = (f: string) => join(dir, f);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=imgbuild test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1');
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ${p('ext.cnf')}`]);
  ssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('ext.cnf'));
  return { caCert: execFileSync('cat', [p('ca.crt')]).toString(), caCertPath: p('ca.crt'), certPath: p('server.crt'), keyPath: p('server.key') };
}

export interface RegistryOptions {
  /** Users for htpasswd (bcrypt) auth. */
  htpasswd?: Record<string, string>;
  /** Serve TLS with this CA's server certificate. */
  tls?: TestCa;
  /** Token auth: the token server's realm, service, issuer and signing certificate bundle. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

export interface RunningRegistry {
  /** `127.0.0.1:<port>` — the registry part of references. */
  host: string;
  port: number;
  url: string;
  dir: string;
  /** The registry's log so far (stderr; includes its access log). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Start Debian's docker-registry (distribution 2.8) on 127.0.0.1 with storage in a temp dir and
 * a generated config, and wait until `/v2/` answers. Stop it with `stop()` (in `after`).
 * Callers ask for docker-registry (and htpasswd with `htpasswd`) with needTool or a toolFixture.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningRegistry> {
  // The free port can be taken by another test between our probe and the registry's bind: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRegistryOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !/address already in use/.test(String((e as Error).message))) throw e;
    }
  }
}

async function startRegistryOnce(opts: RegistryOptions): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'imgbuild-registry-'));
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: imgbuild-test-secret',
  ];
  if (opts.tls) lines.push('  tls:', `    certificate: ${opts.tls.certPath}`, `    key: ${opts.tls.keyPath}`);
  if (opts.htpasswd) {
    const entries = Object.entries(opts.htpasswd).map(([u, p]) => execFileSync('htpasswd', ['-Bbn', u, p]).toString().trim());
    await writeFile(join(dir, 'htpasswd'), `${entries.join('\n')}\n`);
    lines.push('auth:', '  htpasswd:', '    realm: imgbuild-test', `    path: ${join(dir, 'htpasswd')}`);
  } else if (opts.token) {
    lines.push('auth:', '  token:', `    realm: ${opts.token.realm}`, `    service: ${opts.token.service}`, `    issuer: ${opts.token.issuer}`,
      `    rootcertbundle: ${opts.token.rootCertBundle}`);
  }
  await mkdir(join(dir, 'data'), { recursive: true });
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, `${lines.join('\n')}\n`);

  let log = '';
  const child: ChildProcess = spawn('docker-registry', ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));

  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const { Agent } = await import('undici');
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    for (let i = 0; ; i++) {
      if (exited) throw new Error(`docker-registry exited during start-up:\n${log}`);
      try {
        const res = await request(`${url}/v2/`, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401) break;
      } catch {
        // not listening yet
      }
      if (i > 200) throw new Error(`docker-registry did not answer on ${url} within 10 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  } finally {
    await agent.close();
  }

  return {
    host: `127.0.0.1:${port}`,
    port,
    url,
    dir,
    log: () => log,
    async stop() {
      if (!exited) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await done;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The requests in docker-registry's access log (the Apache-style lines of `RunningRegistry.log()`),
 * in the fault proxy's terms: method, path, percent-decoded query and status.
 */
export function registryAccessLog(log: string): { method: string; path: string; query: string; status: number }[] {
  const out: { method: string; path: string; query: string; status: number }[] = [];
  for (const line of log.split('\n')) {
    const m = /^\S+ - \S+ \[[^\]]*\] "([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) /.exec(line);
    if (!m) continue;
    const [path = '', rawQuery = ''] = m[2]!.split('?');
    let query = rawQuery;
    try {
      query = decodeURIComponent(rawQuery);
    } catch {
      // keep it as logged
    }
    out.push({ method: m[1]!, path, query, status: Number(m[3]) });
  }
  return out;
}

/**
 * Blob uploads by digest as docker-registry logged them (see `uploadsByDigest`): for pushes that
 * do not go through the fault proxy. Counts since the registry started; diff two counts, or start
 * a registry per test, to look at one push.
 */
export function uploadsInRegistryLog(log: string): Record<string, number> {
  return uploadsByDigest(registryAccessLog(log));
}

// ---- Small handmade images (no builder involved) ----

export interface TestBlob {
  digest: `sha256:${string}`;
  size: number;
  bytes: Buffer;
}

export function blobOf(bytes: Buffer): TestBlob {
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, bytes };
}

/** A gzip-compressed layer tarball holding `files` (path → content; mode 0755 for paths under bin/). */
export async function makeLayer(files: Record<string, string | Buffer>): Promise<TestBlob & { diffId: `sha256:${string}` }> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const buf = Buffer.isBuffer(content) ? content : Buffer.from(content);
    pack.entry({ name, size: buf.length, mode: name.startsWith('bin/') ? 0o755 : 0o644, mtime: new Date(1000), uid: 0, gid: 0 }, buf);
  }
  pack.finalize();
  await ended;
  const tarBytes = Buffer.concat(chunks);
  const gz = gzipSync(tarBytes, { level: 6 });
  return { ...blobOf(gz), diffId: `sha256:${createHash('sha256').update(tarBytes).digest('hex')}` };
}

export interface TestImage {
  config: TestBlob;
  layers: (TestBlob & { diffId: string })[];
  manifest: Buffer;
  manifestDigest: `sha256:${string}`;
  mediaType: string;
  /** Every blob (config + layers), as pushImage takes them. */
  blobs: { digest: `sha256:${string}`; size: number; open: () => import('node:stream').Readable }[];
}

/** An OCI image manifest + config over the given layers. */
export async function makeImage(layers: (TestBlob & { diffId: string })[], opts: { architecture?: string; os?: string; cmd?: string[]; env?: string[] } = {}): Promise<TestImage> {
  const { Readable } = await import('node:stream');
  const config = blobOf(Buffer.from(JSON.stringify({
    architecture: opts.architecture ?? 'amd64',
    os: opts.os ?? 'linux',
    config: { ...(opts.cmd ? { Cmd: opts.cmd } : {}), Env: opts.env ?? ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    created: '1970-01-01T00:00:01Z',
  })));
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  }));
  const all = [config, ...layers];
  return {
    config, layers, manifest, mediaType,
    manifestDigest: blobOf(manifest).digest,
    blobs: all.map((b) => ({ digest: b.digest, size: b.size, open: () => Readable.from([b.bytes]) })),
  };
}

/** `n` bytes that do not compress (sha256 in counter mode): layers of a known, real size. */
export function noise(n: number, seed = 'imgbuild'): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; off += 32, i++) {
    createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  }
  return out;
}

/** A registry behind a fault proxy, a client that talks to the proxy, and a temp dir. */
export interface ProxiedRegistry {
  reg: RunningRegistry;
  proxy: FaultProxy;
  client: RegistryClient;
  tmp: string;
}

/**
 * Start docker-registry with a fault proxy in front and a client with fast retries (from a
 * toolFixture needing docker-registry, see tools.ts).
 */
export async function startProxiedRegistry(tmpPrefix: string, retry: RetryOptions = { retries: 4, baseDelayMs: 10, maxDelayMs: 50 }): Promise<ProxiedRegistry> {
  const reg = await startRegistry();
  const proxy = await startFaultProxy(reg.port);
  const client = new RegistryClient({ insecureRegistries: [proxy.host], retry, credentials: async () => undefined });
  const tmp = await mkdtemp(join(tmpdir(), tmpPrefix));
  return { reg, proxy, client, tmp };
}

export async function stopProxiedRegistry(r: Partial<ProxiedRegistry>): Promise<void> {
  await r.client?.close();
  await r.proxy?.stop();
  await r.reg?.stop();
  if (r.tmp) await rm(r.tmp, { recursive: true, force: true });
}

/** docker-registry with a fault proxy in front: see `proxiedRegistryFixture`. */
export interface ProxiedRegistryFixture {
  /** Start them (the first test that asks), or skip/fail as needTool does without docker-registry. */
  need: ToolFixture['need'];
  /** The registry and its proxy, once a test's `need` said yes. */
  readonly registry: RunningRegistry;
  readonly proxy: FaultProxy;
}

/**
 * docker-registry with a fault proxy in front, shared by a test file's tests: started by the
 * first test that needs it, stopped after the file's tests. Call it at a test file's top level.
 */
export function proxiedRegistryFixture(): ProxiedRegistryFixture {
  let registry: RunningRegistry | undefined;
  let proxy: FaultProxy | undefined;
  const fixture = toolFixture(['docker-registry'], async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.port);
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });
  return {
    need: (t, ...more) => fixture.need(t, ...more),
    get registry() {
      if (!registry) throw new Error('the registry is not started: call need(t) first');
      return registry;
    },
    get proxy() {
      if (!proxy) throw new Error('the proxy is not started: call need(t) first');
      return proxy;
    },
  };
}
