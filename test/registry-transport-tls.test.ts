// TLS of the node:http transport against a real HTTPS server on 127.0.0.1 (certificate from a
// throwaway CA made with openssl): a loopback host gets one unverified handshake first (is it TLS
// at all?) with nothing sent over it, then verified requests; an unknown certificate stays an
// error; a host named insecure is not probed. RegistryClient's ping asks a loopback host in plain
// HTTP first: a TLS server cuts that attempt, and the client goes on to verified HTTPS.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { RegistryClient } from '../registry-client/client.js';
import { RegistryTlsError } from '../registry-client/errors.js';
import { Transport } from '../registry-client/transport.js';
import { makeTestCa, type TestCa } from './helpers/registry.js';
import { needTool } from './helpers/tools.js';
import { tempDir } from './helpers/tmp.js';

let ca: TestCa | undefined;
let server: Server;
let origin: string;
let connections = 0;
let requests = 0;
const sockets = new Set<Socket>();

before(async () => {
  // needTool is asked in each test (it needs the test's context); the CA is made once here.
  try {
    ca = makeTestCa(await tempDir('imgbuild-transport-tls-'));
  } catch {
    return;
  }
  server = createServer({ cert: readFileSync(ca.certPath), key: readFileSync(ca.keyPath) }, (_req, res) => {
    requests++;
    res.end('{}');
  });
  // Connections, not completed handshakes: the probe closes as soon as its own side is done.
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => {
  if (!server) return r();
  for (const s of sockets) s.destroy();
  server.close(() => r());
}));

function reset(): void {
  connections = 0;
  requests = 0;
}

test('a loopback HTTPS registry: one unverified handshake that sends nothing, then verified requests on one kept connection (2 connections in all)', async (t) => {
  if (!needTool(t, 'openssl')) return;
  reset();
  const transport = new Transport({ ca: ca!.caCert });
  try {
    for (let i = 0; i < 3; i++) {
      const res = await transport.send({ method: 'GET', url: new URL('/v2/', origin) });
      await res.body.dump();
      assert.equal(res.status, 200);
    }
  } finally {
    await transport.close();
  }
  assert.deepEqual({ connections, requests }, { connections: 2, requests: 3 });
});

test('a loopback HTTPS registry with a certificate no CA vouches for is a TLS error, and gets no request', async (t) => {
  if (!needTool(t, 'openssl')) return;
  reset();
  const transport = new Transport({});
  try {
    await assert.rejects(transport.send({ method: 'GET', url: new URL('/v2/', origin) }), (e: unknown) => e instanceof RegistryTlsError);
  } finally {
    await transport.close();
  }
  assert.equal(requests, 0);
});

test('a host named insecure is not probed: one connection, unverified', async (t) => {
  if (!needTool(t, 'openssl')) return;
  reset();
  const transport = new Transport({ insecureRegistries: [new URL(origin).host] });
  try {
    const res = await transport.send({ method: 'GET', url: new URL('/v2/', origin) });
    await res.body.dump();
    assert.equal(res.status, 200);
  } finally {
    await transport.close();
  }
  assert.deepEqual({ connections, requests }, { connections: 1, requests: 1 });
});

const noRetry = { retries: 0, baseDelayMs: 1, maxDelayMs: 1 };

test('RegistryClient: a loopback HTTPS registry is asked in plain HTTP first, then over verified HTTPS (the plain attempt gets no request)', async (t) => {
  if (!needTool(t, 'openssl')) return;
  reset();
  const client = new RegistryClient({ ca: ca!.caCert, retry: noRetry, credentials: async () => undefined });
  try {
    assert.equal(await client.origin(new URL(origin).host), origin);
  } finally {
    await client.close();
  }
  // The plain attempt (cut by the TLS server), the unverified probe, the verified ping.
  assert.deepEqual({ connections, requests }, { connections: 3, requests: 1 });
});

test('RegistryClient: a loopback HTTPS registry whose certificate no CA vouches for is still a TLS error after the plain attempt', async (t) => {
  if (!needTool(t, 'openssl')) return;
  reset();
  const client = new RegistryClient({ retry: noRetry, credentials: async () => undefined });
  try {
    await assert.rejects(client.origin(new URL(origin).host), (e: unknown) => e instanceof RegistryTlsError && /--ca-file/.test(e.hint ?? ''));
  } finally {
    await client.close();
  }
  assert.equal(requests, 0);
});
