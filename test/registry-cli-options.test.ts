// Registry options and messages of the CLI: diff takes the registry options inspect takes (and
// --creds reaches the registry of either image), a --ca-file that holds no certificate is refused,
// a token service's refusal is said in its own words (credentials never echoed), a status without
// an error body says its reason phrase, login refuses two ways of giving credentials, and index
// create names the images that share a platform. Fake servers on 127.0.0.1.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { makeImage, makeLayer, type TestImage } from './helpers/registry.js';
import { startHostileRegistry, writeLayout, type HostileServer } from './helpers/hostile-registry.js';
import { tempDir } from './helpers/tmp.js';

let work: string;
let img: TestImage;
let layout: string;
let env: NodeJS.ProcessEnv;
const servers: HostileServer[] = [];

before(async () => {
  work = await tempDir('imgbuild-cli-options-');
  img = await makeImage([await makeLayer({ 'etc/options': 'registry options\n' })]);
  layout = await writeLayout(join(work, 'image.oci'), img);
  env = { ...process.env, HOME: work, DOCKER_CONFIG: join(work, 'docker') };
});
after(() => Promise.all(servers.map((s) => s.stop())));

async function server(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<HostileServer> {
  const s = await startHostileRegistry(handle);
  servers.push(s);
  return s;
}

/** A registry with Basic auth (alice:pw) serving `img` as app:1. */
function basicRegistry(): Promise<HostileServer> {
  return server((req, res) => {
    req.resume();
    if (req.headers.authorization !== `Basic ${Buffer.from('alice:pw').toString('base64')}`) {
      return void res.writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    }
    const url = req.url ?? '';
    if (url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (url === '/v2/app/manifests/1') return void res.writeHead(200, { 'content-type': img.mediaType, 'docker-content-digest': img.manifestDigest }).end(img.manifest);
    const blob = [img.config, ...img.layers].find((b) => url === `/v2/app/blobs/${b.digest}`);
    if (blob) return void res.writeHead(200, { 'content-length': String(blob.size) }).end(blob.bytes);
    res.writeHead(404).end();
  });
}

test('diff takes --creds, for the registry of either image: the same image is "the same" (exit 0); without it, error[auth] whose hint names --creds (exit 2)', async () => {
  const reg = await basicRegistry();
  const withCreds = await runCli(['diff', `docker://${reg.host}/app:1`, `oci:${layout}`, '--creds', 'alice:pw'], { env });
  assert.equal(withCreds.code, 0, withCreds.stderr);
  const reversed = await runCli(['diff', `oci:${layout}`, `docker://${reg.host}/app:1`, '--creds', 'alice:pw', '--json'], { env });
  assert.equal(reversed.code, 0, reversed.stderr);
  assert.equal(JSON.parse(reversed.stdout.toString()).identical, true);
  const without = await runCli(['diff', `docker://${reg.host}/app:1`, `oci:${layout}`], { env });
  assert.equal(without.code, 2, without.stderr);
  assert.match(without.stderr, /^error\[auth\]: .*refused repository:app:pull \(HTTP 401: UNAUTHORIZED: authentication required\) using anonymous/m);
  assert.match(without.stderr, new RegExp(`^hint: log in first \\(imgbuild login ${reg.host}\\) or pass --creds user:password$`, 'm'));
});

test('inspect --creds reaches the image\'s registry', async () => {
  const reg = await basicRegistry();
  const r = await runCli(['inspect', `docker://${reg.host}/app:1`, '--creds', 'alice:pw', '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout.toString()).digest, img.manifestDigest);
});

test('diff --help lists the registry options inspect --help lists', async () => {
  const options = async (cmd: string) => {
    const r = await runCli([cmd, '--help']);
    assert.equal(r.code, 0, r.stderr);
    return new Set([...r.stdout.toString().matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]!));
  };
  const inspect = await options('inspect');
  const diff = await options('diff');
  const registry = [...inspect].filter((o) => !['--platform', '--json', '--help'].includes(o));
  assert.deepEqual(registry.filter((o) => !diff.has(o)), []);
  for (const o of ['--creds', '--insecure-registry', '--ca-file', '--connect-timeout', '--response-timeout', '--idle-timeout']) assert.ok(diff.has(o), o);
});

test('a --ca-file that holds no PEM certificate (plain text, a private key) is a usage error, before anything is sent', async () => {
  const text = join(work, 'notes.txt');
  const key = join(work, 'key.pem');
  await writeFile(text, 'this is not a certificate\n');
  await writeFile(key, '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n');
  for (const [args, file, what] of [
    [['inspect', 'docker://127.0.0.1:9/app:1', '--ca-file', text], text, 'holds no PEM certificate'],
    [['login', '127.0.0.1:9', '--creds', 'alice:pw', '--ca-file', key], key, 'holds no PEM certificate (a private key is not one)'],
    [['ls', '127.0.0.1:9/app', '--ca-file', key], key, 'holds no PEM certificate (a private key is not one)'],
  ] as const) {
    const r = await runCli([...args], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `error[usage]: --ca-file ${file} ${what}\nhint: give the registry's CA certificate in PEM (-----BEGIN CERTIFICATE-----)\n`);
  }
});

test('a token service\'s 401 is said in its own words, bounded, with the credential scrubbed even when it echoes it', async () => {
  const password = 'S3cret-pw-42';
  const basic = Buffer.from(`alice:${password}`).toString('base64');
  const tokens = await server((req, res) => {
    req.resume();
    // A careless token service that echoes what it was sent.
    res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({
      errors: [{ code: 'UNAUTHORIZED', message: `bad credentials: Basic ${basic}`, detail: `password ${password} rejected${' and more'.repeat(100)}` }],
    }));
  });
  const reg = await server((req, res) => {
    req.resume();
    res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${tokens.host}/token",service="test"`, 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
  });
  const r = await runCli(['inspect', `docker://${reg.host}/app:1`, '--creds', `alice:${password}`], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.ok(!r.stderr.includes(password) && !r.stderr.includes(basic), r.stderr);
  const line = r.stderr.split('\n')[0]!;
  assert.ok(line.startsWith(`error[auth]: token request to http://${tokens.host}/token for repository:app:pull failed: HTTP 401 Unauthorized: UNAUTHORIZED: bad credentials: Basic <redacted>: password <redacted> rejected and more`), line);
  assert.ok(line.endsWith(`…; using user "alice" given explicitly for ${reg.host}`), line);
  assert.ok(line.length < 600, `${line.length} characters`);
});

test('a 413 with an HTML body says the reason phrase, not "no error detail"', async () => {
  const reg = await server((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '';
      if (url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      if (req.method === 'POST') return void res.writeHead(202, { location: '/v2/app/blobs/uploads/u1', 'content-length': '0' }).end();
      if (req.method === 'PUT' && url.startsWith('/v2/app/blobs/uploads/u1')) {
        // nginx's reason phrase (node:http's own is "Payload Too Large").
        return void res.writeHead(413, 'Request Entity Too Large', { 'content-type': 'text/html' }).end('<html><body><h1>413 Request Entity Too Large</h1></body></html>');
      }
      res.writeHead(404, { 'content-length': '0' }).end();
    });
  });
  const r = await runCli(['push', `oci:${layout}`, `${reg.host}/app:1`], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[registry-http\\]: upload blob sha256:[0-9a-f]{64} \\(\\d+ bytes\\) to ${reg.host}/app: PUT ${reg.host}/v2/app/blobs/uploads/u1 answered 413 \\(Request Entity Too Large\\)$`, 'm'));
});

test('login with --creds and --username (or --password-stdin) is a usage error naming both', async () => {
  const r = await runCli(['login', '127.0.0.1:9', '--creds', 'alice:x', '-u', 'bob'], { env });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, 'error[usage]: --creds and --username both give credentials\nhint: give either --creds user:password, or --username <user> --password-stdin\n');
  const stdin = await runCli(['login', '127.0.0.1:9', '--creds', 'alice:x', '--password-stdin'], { env });
  assert.equal(stdin.code, 2, stdin.stderr);
  assert.match(stdin.stderr, /^error\[usage\]: --creds and --password-stdin both give credentials$/m);
});

test('index create with two images for one platform names both inputs, before anything is pushed', async () => {
  const other = await writeLayout(join(work, 'other.oci'), await makeImage([await makeLayer({ 'etc/other': 'another amd64 image\n' })]));
  const r = await runCli(['index', 'create', '127.0.0.1:9/app:1', `oci:${layout}`, `oci:${other}`], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error[index]: two of the images are for linux/amd64: oci:${layout}, oci:${other}\nhint: an index holds one image per platform: leave out all but one of them\n`);
});
