// Registries a proxy cannot play: one answering 2xx to anything, one whose error body is 3 GB,
// one whose upload Location sends us to another host that fails. Run through the CLI (exit
// code, stderr, stdout, --digest-file) as a CI job would.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCommand, runCli } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { makeImage, makeLayer } from './helpers/registry.js';
import { startHostileRegistry, writeLayout, type HostileServer } from './helpers/hostile-registry.js';
import { tempDir } from './helpers/tmp.js';

let work: string;
let layout: string;
let manifestDigest: string;
const servers: HostileServer[] = [];

before(async () => {
  work = await tempDir('imgbuild-faults-hostile-');
  const img = await makeImage([await makeLayer({ 'etc/hostile': 'pushed to a hostile registry\n' })]);
  manifestDigest = img.manifestDigest;
  layout = await writeLayout(join(work, 'image.oci'), img);
});
after(() => Promise.all(servers.map((s) => s.stop())));

async function server(handle: Parameters<typeof startHostileRegistry>[0]): Promise<HostileServer> {
  const s = await startHostileRegistry(handle);
  servers.push(s);
  return s;
}

test('a server answering 2xx to anything (no Docker-Content-Digest anywhere) gets an error, not "pushed": exit 1, no digest file', async () => {
  const catchAll = await server((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST') res.writeHead(202, { location: '/upload/1', 'content-length': '0' });
      else if (req.method === 'PUT') res.writeHead(req.url?.includes('/manifests/') ? 202 : 201, { 'content-length': '0' });
      else res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end(req.method === 'HEAD' || req.method === 'POST' || req.method === 'PUT' ? undefined : '{}');
    });
  });
  const digestFile = join(work, 'catch-all.digest');
  const r = await runCli(['push', `oci:${layout}`, `${catchAll.host}/app:1`, '--digest-file', digestFile]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.toString(), '');
  assert.match(r.stderr, new RegExp(`^error\\[registry-content\\]: put manifest ${manifestDigest} as ${catchAll.host}/app:1: the registry answered 202 without Docker-Content-Digest, and now serves sha256:[0-9a-f]{64} under 1: it did not store our manifest$`, 'm'));
  await assert.rejects(stat(digestFile), { code: 'ENOENT' });
  // Its blob HEADs were not taken as "held": both blobs were sent.
  assert.equal(catchAll.requests().filter((q) => q.method === 'PUT' && q.url.startsWith('/upload/1?digest=')).length, 2);
});

test('a 3 GB error body on a manifest PUT is read no further than a small cap: the CLI stays under 200 MB and says the status', async (t) => {
  const SIZE = 3 * 1024 ** 3;
  let sent = 0;
  const hostile = await server((req, res) => {
    req.resume();
    const url = req.url ?? '';
    const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url);
    if (req.method === 'HEAD' && blob) {
      // Every blob is there (so the push goes straight to the manifest).
      res.writeHead(200, { 'docker-content-digest': blob[1]!, 'content-length': '1' });
      res.end();
    } else if (req.method === 'PUT' && url.includes('/manifests/')) {
      res.writeHead(400, { 'content-type': 'application/json', 'content-length': String(SIZE) });
      const piece = Buffer.alloc(1024 * 1024, 0x20);
      piece.write('{"errors":[{"code":"MANIFEST_INVALID","message":"');
      const more = () => {
        while (sent < SIZE && !res.destroyed) {
          sent += piece.length;
          if (!res.write(piece)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    } else if (url.includes('/manifests/')) {
      res.writeHead(404, { 'content-length': '0' });
      res.end();
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end('{}');
    }
  });
  const rssFile = join(work, 'rss');
  const cache = await tempDir('imgbuild-faults-rss-cache-');
  const preload = pathToFileURL(join(repoRoot, 'dist/test/helpers/report-rss.js')).href;
  const r = await runCommand(process.execPath, ['--import', preload, cliPath, 'push', `oci:${layout}`, `${hostile.host}/app:1`], {
    env: { ...process.env, IMGBUILD_CACHE_DIR: cache, IMGBUILD_TEST_RSS_FILE: rssFile },
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[registry-http\\]: put manifest ${manifestDigest} as ${hostile.host}/app:1: PUT ${hostile.host}/v2/app/manifests/1 answered 400 \\(Bad Request\\)$`, 'm'));
  const peak = Number(await readFile(rssFile, 'utf8'));
  t.diagnostic(`peak RSS of the CLI: ${(peak / 1024 / 1024).toFixed(1)} MiB; the server sent ${(sent / 1024 / 1024).toFixed(1)} MiB of the 3 GiB`);
  assert.ok(peak > 0 && peak < 200 * 1024 * 1024, `peak RSS ${peak} bytes`);
  assert.ok(sent < SIZE, `the server sent all ${sent} bytes: the client read the whole body`);
});

test('an upload Location on another host that fails is named by that host, with its error', async () => {
  const storage = await server((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"upload refused","detail":"the storage host said no"}]}');
    });
  });
  const front = await server((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '';
      if (req.method === 'POST') res.writeHead(202, { location: `http://${storage.host}/uploads/u1?state=secret`, 'content-length': '0' });
      else if (req.method === 'HEAD' || url.includes('/manifests/')) res.writeHead(404, { 'content-length': '0' });
      else res.writeHead(200, { 'content-length': '0' });
      res.end();
    });
  });
  const r = await runCli(['push', `oci:${layout}`, `${front.host}/app:1`]);
  assert.equal(r.code, 1, r.stderr);
  const line = r.stderr.split('\n').find((l) => l.startsWith('error['))!;
  assert.match(line, new RegExp(`^error\\[registry-http\\]: upload blob sha256:[0-9a-f]{64} \\(\\d+ bytes\\) to ${front.host}/app: PUT ${storage.host}/uploads/u1 answered 400 \\(BLOB_UPLOAD_INVALID: upload refused: the storage host said no\\)$`));
  assert.ok(!r.stderr.includes('secret'), 'the upload URL query is not printed');
});
