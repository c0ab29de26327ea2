// Servers that misbehave in ways a proxy in front of docker-registry cannot: a registry that
// never answers, one that answers 2xx to anything, one whose error bodies never end.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestImage } from './registry.js';

export interface HostileServer {
  host: string;
  port: number;
  /** Each request: method and URL (path and query), in order. */
  requests(): { method: string; url: string }[];
  stop(): Promise<void>;
}

/** A node:http server on 127.0.0.1 answering with `handle`; every connection is cut at stop(). */
export async function startHostileRegistry(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<HostileServer> {
  const log: { method: string; url: string }[] = [];
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    log.push({ method: req.method ?? '', url: req.url ?? '' });
    res.on('error', () => undefined);
    handle(req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    requests: () => log.slice(),
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** A TCP server on 127.0.0.1 that accepts every connection, reads what comes, and never sends a byte. */
export async function startSilentServer(): Promise<HostileServer & { connections(): number }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createNetServer((s) => {
    connections++;
    sockets.add(s);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    requests: () => [],
    connections: () => connections,
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Write a handmade image (registry.ts makeImage) as an OCI layout, tagged `tag`: an image argument for `imgbuild push oci:<dir>`. */
export async function writeLayout(dir: string, img: TestImage, tag = 'latest'): Promise<string> {
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  for (const b of [img.config, ...img.layers, { digest: img.manifestDigest, bytes: img.manifest }]) {
    await writeFile(join(dir, 'blobs/sha256', b.digest.slice('sha256:'.length)), b.bytes);
  }
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  return dir;
}
