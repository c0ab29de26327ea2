// Registries on the loopback may be plain HTTP with no flag (as docker and crane allow);
// IMGBUILD_INSECURE_REGISTRIES names more for every command; a name that does not resolve is a
// network error with a hint, never a crash. A registry played by a Node HTTP server on 127.0.0.1:
// no system tool.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { MockAgent } from 'undici';
import { NotARegistryError, RegistryClient, RegistryNetworkError, RegistryTlsError, isLoopbackRegistry } from '../registry-client/index.js';
import { insecureRegistries } from '../builder/commands/registry-flags.js';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const fast = { retries: 2, baseDelayMs: 1, maxDelayMs: 5 };

test('loopback registries: localhost, *.localhost, 127.0.0.0/8 and [::1], with or without a port; nothing else', () => {
  for (const yes of ['localhost', 'localhost:5000', 'registry.localhost:443', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]', '[::1]:5000', '[0:0:0:0:0:0:0:1]:5000', '[::0:1]', 'LOCALHOST:5000']) {
    assert.equal(isLoopbackRegistry(yes), true, yes);
  }
  for (const no of ['ghcr.io', 'docker.io', 'localhost.example.com', 'mylocalhost:5000', '128.0.0.1:5000', '10.0.0.1:5000', '192.168.1.2', '127.0.0.1.nip.io', '[::2]:5000', '[::ffff:127.0.0.1]', '[::1', '127.0.0.1:http', '']) {
    assert.equal(isLoopbackRegistry(no), false, no);
  }
});

test('IMGBUILD_INSECURE_REGISTRIES adds to --insecure-registry: comma-separated, blanks ignored, once each', () => {
  assert.deepEqual(insecureRegistries({ insecureRegistry: ['a:5000'] }, { IMGBUILD_INSECURE_REGISTRIES: ' b.lan:5000, ,a:5000,c ' }), ['a:5000', 'b.lan:5000', 'c']);
  assert.deepEqual(insecureRegistries({}, {}), []);
});

/**
 * A registry of one repository, `x/app`, whose 5 tags come 2 a page (Link: rel="next"), over plain HTTP;
 * `/v2/` answers `v2Status`. A TLS handshake sent to it is counted (Node's http server sees a client error).
 */
function fakeRegistry(v2Status = 200): Promise<{ server: Server; host: string; requests: string[]; tlsAttempts: () => number }> {
  const tags = ['1.0', '1.1', '2.0', 'latest', 'zeta'];
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (url.pathname === '/v2/') return void res.writeHead(v2Status, { 'content-type': 'application/json' }).end('{}');
    if (url.pathname === '/v2/x/app/tags/list') {
      const last = url.searchParams.get('last');
      const start = last ? tags.indexOf(last) + 1 : 0;
      const page = tags.slice(start, start + 2);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (start + 2 < tags.length) headers.link = `</v2/x/app/tags/list?n=2&last=${page[page.length - 1]}>; rel="next"`;
      return void res.writeHead(200, headers).end(JSON.stringify({ name: 'x/app', tags: page }));
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }));
  });
  let tlsAttempts = 0;
  server.on('clientError', (_e, socket) => {
    tlsAttempts++;
    // What Node's server does with no listener: a client speaking TLS reads this as "not TLS".
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    resolve({ server, host: `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, requests, tlsAttempts: () => tlsAttempts });
  }));
}

describe('a plain-HTTP server on 127.0.0.1 whose /v2/ is not a registry\'s answer (404)', () => {
  let reg: Awaited<ReturnType<typeof fakeRegistry>>;
  before(async () => {
    reg = await fakeRegistry(404);
  });
  after(() => new Promise<void>((r) => reg.server.close(() => r())));

  test('is tried over HTTPS next, then in plain HTTP again, and refused: not an OCI registry (nothing more is sent)', async () => {
    const client = new RegistryClient({ retry: fast, credentials: async () => undefined });
    try {
      await assert.rejects(client.origin(reg.host), (e: unknown) => e instanceof NotARegistryError && e.code === 'not-registry'
        && e.message === `connect to ${reg.host}: not an OCI registry: GET http://${reg.host}/v2/ answered 404 Not Found`);
    } finally {
      await client.close();
    }
    assert.equal(reg.tlsAttempts(), 1);
    assert.deepEqual(reg.requests, ['GET /v2/', 'GET /v2/']);
  });
});

describe('a plain-HTTP registry on 127.0.0.1', () => {
  let reg: Awaited<ReturnType<typeof fakeRegistry>>;
  before(async () => {
    reg = await fakeRegistry();
  });
  after(() => new Promise<void>((r) => reg.server.close(() => r())));

  test('is reached over plain HTTP with no flag, asked first, with no TLS attempt; every page of tags is read', async () => {
    const client = new RegistryClient({ retry: fast, credentials: async () => undefined });
    const tls = reg.tlsAttempts();
    reg.requests.length = 0;
    try {
      assert.deepEqual(await client.listTags({ registry: reg.host, repository: 'x/app' }), ['1.0', '1.1', '2.0', 'latest', 'zeta']);
      assert.equal(await client.origin(reg.host), `http://${reg.host}`);
    } finally {
      await client.close();
    }
    assert.equal(reg.tlsAttempts() - tls, 0);
    assert.deepEqual(reg.requests, ['GET /v2/', 'GET /v2/x/app/tags/list', 'GET /v2/x/app/tags/list?n=2&last=1.1', 'GET /v2/x/app/tags/list?n=2&last=latest']);
  });

  test('named insecure, it is asked in plain HTTP first too, with no TLS attempt', async () => {
    const client = new RegistryClient({ retry: fast, credentials: async () => undefined, insecureRegistries: [reg.host] });
    const tls = reg.tlsAttempts();
    try {
      assert.equal(await client.origin(reg.host), `http://${reg.host}`);
    } finally {
      await client.close();
    }
    assert.equal(reg.tlsAttempts() - tls, 0);
  });

  test('with loopbackPlainHttp: false it is an HTTPS registry like any other (a TLS error: it does not speak TLS)', async () => {
    const client = new RegistryClient({ retry: fast, credentials: async () => undefined, loopbackPlainHttp: false });
    try {
      reg.requests.length = 0;
      await assert.rejects(client.listTags({ registry: reg.host, repository: 'x/app' }), (e: unknown) => e instanceof RegistryTlsError && e.code === 'tls'
        && e.message.startsWith(`${reg.host} did not answer in TLS (is this a registry's port, or one serving plain HTTP?): `)
        && e.hint === `check the port in the reference; a registry serving plain HTTP must be named in insecureRegistries (imgbuild --insecure-registry ${reg.host})`);
      // No plain-HTTP attempt: the only connection was the TLS one.
      assert.deepEqual(reg.requests, []);
    } finally {
      await client.close();
    }
  });

  test('imgbuild ls lists every tag with no flag, one a line; --json is one document', async () => {
    const r = await runCli(['ls', `${reg.host}/x/app`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), '1.0\n1.1\n2.0\nlatest\nzeta\n');
    const j = await runCli(['ls', `docker://${reg.host}/x/app`, '--json']);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout.toString()), { schemaVersion: 1, repository: `${reg.host}/x/app`, tags: ['1.0', '1.1', '2.0', 'latest', 'zeta'] });
    const bad = await runCli(['ls', `${reg.host}/x/app:1.0`]);
    assert.equal(bad.code, 2, 'a usage error');
    assert.match(bad.stderr, /^error\[usage\]: ls takes a repository, not an image/);
  });

  test('an unknown repository is the registry\'s error, said as such', async () => {
    const r = await runCli(['ls', `${reg.host}/x/nothing`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error\[registry-http\]: .*404.*NAME_UNKNOWN/);
  });
});

describe('a host name that does not resolve', () => {
  test('ENOTFOUND is a RegistryNetworkError with a hint at once (no retry); EAI_AGAIN after the retries', async () => {
    for (const [code, attempts] of [['ENOTFOUND', 1], ['EAI_AGAIN', 3]] as const) {
      const agent = new MockAgent();
      agent.disableNetConnect();
      // Five one-shot answers: those left unused tell how many attempts were made.
      for (let i = 0; i < 5; i++) {
        agent.get('https://registry.invalid').intercept({ method: 'GET', path: '/v2/' }).replyWithError(Object.assign(new Error(`getaddrinfo ${code} registry.invalid`), { code }));
      }
      const client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
      try {
        await assert.rejects(client.getManifest({ registry: 'registry.invalid', repository: 'x' }, '1'), (e: unknown) => {
          assert.ok(e instanceof RegistryNetworkError, String(e));
          assert.equal(e.code, 'network');
          assert.match(e.message, /the name registry\.invalid does not resolve/);
          assert.match(e.hint ?? '', /registry name/);
          return true;
        });
        assert.equal(5 - agent.pendingInterceptors().length, attempts, code);
      } finally {
        await client.close();
        await agent.close();
      }
    }
  });

  test('imgbuild push to registry.invalid exits 1 with error[network] and a hint, no stack', async () => {
    const dir = await tempDir('imgbuild-dns-');
    const built = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', join(dir, 'hello.oci')]);
    assert.equal(built.code, 0, built.stderr);
    const r = await runCli(['push', `oci:${join(dir, 'hello.oci')}`, 'registry.invalid/acme/hello:1']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error\[network\]: .*registry\.invalid/);
    assert.match(r.stderr, /\nhint: /);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  });
});
