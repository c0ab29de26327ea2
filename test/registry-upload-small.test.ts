// A blob of up to SMALL_BLOB_BYTES is read whole before its PUT and sent as bytes (upload.ts); a
// larger one is streamed. Against a Node HTTP server on 127.0.0.1 playing a registry's upload
// endpoints: no system tool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { DigestMismatchError, RegistryClient, RegistryError, uploadBlob } from '../registry-client/index.js';
import { SMALL_BLOB_BYTES } from '../registry-client/upload.js';
import type { Digest } from '../oci/digest.js';

interface Seen {
  method: string;
  path: string;
  contentLength: string | undefined;
  bodyBytes: number;
}

let server: Server;
let host: string;
const seen: Seen[] = [];
/** Requests as they arrive (a PUT whose body broke off is here, not in `seen`). */
const arrived: string[] = [];

before(async () => {
  server = createServer((req, res) => {
    arrived.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', path: url.pathname, contentLength: req.headers['content-length'], bodyBytes: body.length });
      if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
      if (req.method === 'POST') return void res.writeHead(202, { location: '/v2/r/blobs/uploads/session-1', 'content-length': '0' }).end();
      if (req.method === 'PUT') {
        const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
        return void res.writeHead(201, { 'docker-content-digest': digest, 'content-length': '0' }).end();
      }
      if (req.method === 'DELETE') return void res.writeHead(204).end();
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  host = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const client = () => new RegistryClient({ retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 }, credentials: async () => undefined });
const sha = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
const uploads = () => seen.filter((s) => s.path !== '/v2/').map((s) => `${s.method} ${s.path}`);

test('a blob of SMALL_BLOB_BYTES, read in chunks, is PUT whole with its Content-Length; progress goes from 0 to its size', async () => {
  seen.length = 0;
  const blob = Buffer.alloc(SMALL_BLOB_BYTES, 7);
  const progress: number[] = [];
  const c = client();
  try {
    const r = await uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(blob), size: blob.length },
      { open: () => Readable.from([blob.subarray(0, 1000), blob.subarray(1000)]) }, { chunkSize: 0, onProgress: (n) => progress.push(n) });
    assert.deepEqual(r, { how: 'uploaded', bytesSent: blob.length });
  } finally {
    await c.close();
  }
  assert.deepEqual(seen.find((s) => s.method === 'PUT'), { method: 'PUT', path: '/v2/r/blobs/uploads/session-1', contentLength: String(blob.length), bodyBytes: blob.length });
  assert.deepEqual(progress, [0, blob.length]);
});

test('a small blob whose source is longer than its size is a DigestMismatchError before any PUT; the session is cancelled', async () => {
  seen.length = 0;
  const blob = Buffer.from('twelve bytes');
  const c = client();
  try {
    await assert.rejects(
      uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(blob), size: blob.length - 1 }, { open: () => Readable.from([blob]) }, { chunkSize: 0 }),
      (e: unknown) => e instanceof DigestMismatchError && /the source's length differs from the descriptor's size/.test(e.message),
    );
  } finally {
    await c.close();
  }
  assert.deepEqual(uploads(), ['POST /v2/r/blobs/uploads/', 'DELETE /v2/r/blobs/uploads/session-1']);
});

test('a small blob whose source fails is a push-input error before any PUT; the session is cancelled', async () => {
  seen.length = 0;
  const c = client();
  try {
    await assert.rejects(
      uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(Buffer.from('x')), size: 1 }, { path: '/nonexistent/imgbuild-blob' }, { chunkSize: 0 }),
      (e: unknown) => e instanceof RegistryError && e.code === 'push-input' && /ENOENT/.test(e.message),
    );
  } finally {
    await c.close();
  }
  assert.deepEqual(uploads(), ['POST /v2/r/blobs/uploads/', 'DELETE /v2/r/blobs/uploads/session-1']);
});

test('a small blob whose source never ends is stopped by the signal: the upload rejects with its reason, no PUT is sent', async () => {
  seen.length = 0;
  const abort = new AbortController();
  const c = client();
  try {
    const stalled = new Readable({ read() {} });
    const upload = uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(Buffer.from('x')), size: 1 }, { open: () => stalled }, { chunkSize: 0, signal: abort.signal });
    setTimeout(() => abort.abort(new Error('stopped by the test')), 50);
    await assert.rejects(upload, /stopped by the test/);
  } finally {
    await c.close();
  }
  assert.deepEqual(uploads(), ['POST /v2/r/blobs/uploads/', 'DELETE /v2/r/blobs/uploads/session-1']);
});

test('a small blob whose source closes before its end without an error is a push-input error before any PUT', async () => {
  seen.length = 0;
  const c = client();
  try {
    let pushed = false;
    const cut = new Readable({
      read() {
        if (pushed) return;
        pushed = true;
        this.push(Buffer.from('ab'));
        setImmediate(() => this.destroy());
      },
    });
    await assert.rejects(
      uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(Buffer.from('abcd')), size: 4 }, { open: () => cut }, { chunkSize: 0 }),
      (e: unknown) => e instanceof RegistryError && e.code === 'push-input' && /the source closed before its end/.test(e.message),
    );
  } finally {
    await c.close();
  }
  assert.deepEqual(uploads(), ['POST /v2/r/blobs/uploads/', 'DELETE /v2/r/blobs/uploads/session-1']);
});

test('a blob one byte over SMALL_BLOB_BYTES is streamed: its PUT starts before the source is read to the end', async () => {
  seen.length = 0;
  arrived.length = 0;
  const c = client();
  try {
    let pushed = false;
    const failing = new Readable({
      read() {
        if (pushed) return void setTimeout(() => this.destroy(new Error('the source broke off')), 100);
        pushed = true;
        this.push(Buffer.alloc(64 * 1024, 1));
      },
    });
    await assert.rejects(
      uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(Buffer.from('x')), size: SMALL_BLOB_BYTES + 1 }, { open: () => failing }, { chunkSize: 0 }),
      (e: unknown) => e instanceof RegistryError && e.code === 'push-input' && /the source broke off/.test(e.message),
    );
  } finally {
    await c.close();
  }
  assert.deepEqual(arrived.filter((a) => a !== 'GET /v2/'), ['POST /v2/r/blobs/uploads/', 'PUT /v2/r/blobs/uploads/session-1', 'DELETE /v2/r/blobs/uploads/session-1']);
});

// A source with `read` (PushBlob.read: a config, a small layout file) gives its bytes at once.

const never = () => {
  throw new Error('the stream was opened');
};

test('a small blob whose source gives its bytes at once is PUT from them, its stream never opened; progress goes from 0 to its size', async () => {
  seen.length = 0;
  const blob = Buffer.from('a config, at hand');
  const progress: number[] = [];
  const c = client();
  try {
    const r = await uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(blob), size: blob.length }, { open: never, read: () => blob }, { chunkSize: 0, onProgress: (n) => progress.push(n) });
    assert.deepEqual(r, { how: 'uploaded', bytesSent: blob.length });
  } finally {
    await c.close();
  }
  assert.deepEqual(seen.find((s) => s.method === 'PUT'), { method: 'PUT', path: '/v2/r/blobs/uploads/session-1', contentLength: String(blob.length), bodyBytes: blob.length });
  assert.deepEqual(progress, [0, blob.length]);
});

test('a source whose read() gives nothing is streamed instead', async () => {
  seen.length = 0;
  const blob = Buffer.from('streamed after all');
  const c = client();
  try {
    const r = await uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(blob), size: blob.length }, { open: () => Readable.from([blob]), read: () => undefined }, { chunkSize: 0 });
    assert.deepEqual(r, { how: 'uploaded', bytesSent: blob.length });
  } finally {
    await c.close();
  }
  assert.equal(seen.find((s) => s.method === 'PUT')?.bodyBytes, blob.length);
});

test('read() bytes longer than the size are the same DigestMismatchError as a longer stream, before any PUT', async () => {
  seen.length = 0;
  const blob = Buffer.from('twelve bytes');
  const c = client();
  const errors: string[] = [];
  try {
    for (const src of [{ open: () => Readable.from([blob]) }, { open: never, read: () => blob }]) {
      await uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(blob), size: blob.length - 1 }, src, { chunkSize: 0 }).catch((e: unknown) => {
        assert.ok(e instanceof DigestMismatchError);
        errors.push(e.message);
      });
    }
  } finally {
    await c.close();
  }
  assert.equal(errors.length, 2);
  assert.equal(errors[1], errors[0]);
  assert.deepEqual(uploads(), ['POST /v2/r/blobs/uploads/', 'DELETE /v2/r/blobs/uploads/session-1', 'POST /v2/r/blobs/uploads/', 'DELETE /v2/r/blobs/uploads/session-1']);
});

test('a read() that throws is the push-input error a failing stream is, with the same message; the session is cancelled', async () => {
  seen.length = 0;
  const c = client();
  const messages: string[] = [];
  const broken = () => Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
  try {
    const failingStream = () => new Readable({
      read() {
        this.destroy(broken());
      },
    });
    for (const src of [{ open: failingStream }, { open: never, read: () => { throw broken(); } }]) {
      await uploadBlob(c, { registry: host, repository: 'r' }, { digest: sha(Buffer.from('x')), size: 1 }, src, { chunkSize: 0 }).catch((e: unknown) => {
        assert.ok(e instanceof RegistryError && e.code === 'push-input');
        messages.push(e.message);
      });
    }
  } finally {
    await c.close();
  }
  assert.equal(messages.length, 2);
  assert.equal(messages[1], messages[0]);
  assert.match(messages[0]!, /cannot read the blob: .*EIO/);
  assert.deepEqual(uploads(), ['POST /v2/r/blobs/uploads/', 'DELETE /v2/r/blobs/uploads/session-1', 'POST /v2/r/blobs/uploads/', 'DELETE /v2/r/blobs/uploads/session-1']);
});
