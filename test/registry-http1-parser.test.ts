// The registry client's HTTP/1.1 response parser (registry-client/http1-parser.ts): framing of
// every kind a registry may send, bytes split at every boundary, and malformed or oversized
// answers as typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpParseError, ResponseParser, type ResponseHead } from '../registry-client/http1-parser.js';

interface Parsed {
  heads: ResponseHead[];
  body: string;
  complete: boolean;
  /** Bytes of the input past the response's end. */
  left: number;
}

/** Parse `wire` given in pieces cut at `cuts` (byte offsets). */
function parse(wire: string | Buffer, cuts: number[] = [], opts: { head?: boolean; maxHeaderBytes?: number } = {}): Parsed {
  const bytes = typeof wire === 'string' ? Buffer.from(wire, 'latin1') : wire;
  const out: Parsed = { heads: [], body: '', complete: false, left: 0 };
  const parser = new ResponseParser({
    onHead: (h) => out.heads.push(h),
    onBody: (c) => (out.body += c.toString('latin1')),
    onComplete: () => (out.complete = true),
  }, opts);
  const edges = [0, ...cuts, bytes.length];
  for (let i = 0; i + 1 < edges.length; i++) {
    const piece = bytes.subarray(edges[i], edges[i + 1]);
    const used = parser.execute(piece);
    if (used < piece.length) {
      out.left = bytes.length - edges[i]! - used;
      break;
    }
  }
  return out;
}

/** Every way of cutting `wire` in two, and into single bytes: each must parse as the whole does. */
function everySplit(wire: string, opts: { head?: boolean } = {}): Parsed {
  const whole = parse(wire, [], opts);
  for (let cut = 1; cut < wire.length; cut++) assert.deepEqual(parse(wire, [cut], opts), whole, `cut at ${cut}`);
  assert.deepEqual(parse(wire, Array.from({ length: wire.length - 1 }, (_, i) => i + 1), opts), whole, 'one byte at a time');
  return whole;
}

const parseError = (code: string) => (e: unknown) => e instanceof HttpParseError && e.code === code;

test('a response with a Content-Length body: status, headers (names lower case), body, complete; split anywhere', () => {
  const r = everySplit('HTTP/1.1 201 Created\r\nDocker-Content-Digest: sha256:00\r\nContent-Length: 5\r\n\r\nhello');
  assert.deepEqual(r, {
    heads: [{ status: 201, statusText: 'Created', headers: { 'docker-content-digest': 'sha256:00', 'content-length': '5' }, keepAlive: true, contentLength: 5 }],
    body: 'hello', complete: true, left: 0,
  });
});

test('a repeated header is an array of its values in order, never joined', () => {
  const r = parse('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="a",service="b"\r\nwww-authenticate: Basic realm="c, d"\r\nWww-Authenticate: X\r\nContent-Length: 0\r\n\r\n');
  assert.deepEqual(r.heads[0]?.headers['www-authenticate'], ['Bearer realm="a",service="b"', 'Basic realm="c, d"', 'X']);
});

test('a Content-Length given twice with the same value frames the body by it: the head carries it once', () => {
  const r = everySplit('HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc');
  assert.deepEqual(r, { heads: [{ status: 200, statusText: 'OK', headers: { 'content-length': ['3', '3'] }, keepAlive: true, contentLength: 3 }], body: 'abc', complete: true, left: 0 });
});

test('header values lose the spaces and tabs around them, not inside', () => {
  const r = parse('HTTP/1.1 200 OK\r\nLocation: \t /v2/x/blobs/uploads/1?a=b c \t\r\nContent-Length: 0\r\n\r\n');
  assert.equal(r.heads[0]?.headers.location, '/v2/x/blobs/uploads/1?a=b c');
});

test('a chunked body with chunk extensions and trailers: the data alone, complete after the trailers; split anywhere', () => {
  const r = everySplit('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\nA ; x="y"\r\n, world!!!\r\n0;last\r\nDigest: sha-256=abc\r\nX-Trailer: 1\r\n\r\n');
  assert.deepEqual(r, { heads: [{ status: 200, statusText: 'OK', headers: { 'transfer-encoding': 'chunked' }, keepAlive: true }], body: 'hello, world!!!', complete: true, left: 0 });
});

test('chunk sizes in upper and lower case hex', () => {
  const r = parse(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1A\r\n${'a'.repeat(26)}\r\nf\r\n${'b'.repeat(15)}\r\n0\r\n\r\n`);
  assert.deepEqual([r.body, r.complete], [`${'a'.repeat(26)}${'b'.repeat(15)}`, true]);
});

test('a HEAD answer has no body whatever its Content-Length; so do 204 and 304', () => {
  assert.deepEqual(everySplit('HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n', { head: true }), {
    heads: [{ status: 200, statusText: 'OK', headers: { 'content-length': '1073741824' }, keepAlive: true }], body: '', complete: true, left: 0,
  });
  for (const status of [204, 304]) {
    const r = parse(`HTTP/1.1 ${status} X\r\nContent-Length: 10\r\n\r\n`);
    assert.deepEqual([r.heads[0]?.status, r.body, r.complete], [status, '', true]);
  }
});

test('bytes after a complete response are not taken: their count is returned', () => {
  const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA');
  assert.deepEqual([r.body, r.complete, r.left], ['ok', true, 5]);
});

test('Connection: close, and HTTP/1.0 without keep-alive, end the connection after the response; HTTP/1.0 with keep-alive does not', () => {
  assert.equal(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAlive, false);
  assert.equal(parse('HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAlive, false);
  assert.equal(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAlive, false);
  assert.equal(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').heads[0]?.keepAlive, true);
});

test('a body with neither length nor chunks runs until the connection closes: finish() completes it, and the connection is not kept', () => {
  const out: string[] = [];
  let complete = false;
  let head: ResponseHead | undefined;
  const p = new ResponseParser({ onHead: (h) => (head = h), onBody: (c) => out.push(c.toString()), onComplete: () => (complete = true) });
  p.execute(Buffer.from('HTTP/1.1 200 OK\r\n\r\nsome'));
  p.execute(Buffer.from(' bytes'));
  assert.deepEqual([out.join(''), complete, head?.keepAlive], ['some bytes', false, false]);
  assert.equal(p.finish(), true);
  assert.equal(complete, true);
});

test('a Transfer-Encoding whose last coding is not chunked is read until the close', () => {
  const r = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc');
  assert.deepEqual([r.body, r.complete, r.heads[0]?.keepAlive], ['abc', false, false]);
});

test('finish() before the end of a length-delimited or chunked body says the response was cut short', () => {
  for (const wire of ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 'HTTP/1.1 200 OK\r\nContent-Le']) {
    const p = new ResponseParser({ onHead: () => undefined, onBody: () => undefined, onComplete: () => assert.fail('not complete') });
    p.execute(Buffer.from(wire));
    assert.equal(p.finish(), false, wire);
  }
});

test('1xx informational answers are skipped: the final response is the one given', () => {
  const r = everySplit('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
  assert.deepEqual([r.heads.length, r.heads[0]?.status, r.heads[0]?.headers, r.body], [1, 201, { 'content-length': '2' }, 'ok']);
});

test('lines ended by a bare LF are read as lines', () => {
  const r = parse('HTTP/1.1 200 OK\nContent-Length: 2\n\nok');
  assert.deepEqual([r.heads[0]?.status, r.body, r.complete], [200, 'ok', true]);
});

test('a head over the limit is HPE_HEADER_OVERFLOW, however it is split, before it is all in', () => {
  const wire = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
  assert.throws(() => parse(wire), parseError('HPE_HEADER_OVERFLOW'));
  assert.throws(() => parse(wire, [100, 5000, 10000]), parseError('HPE_HEADER_OVERFLOW'));
  // The limit is on the whole head, not a line: many small headers overflow too.
  assert.throws(() => parse(`HTTP/1.1 200 OK\r\n${'X-A: b\r\n'.repeat(3000)}\r\n`), parseError('HPE_HEADER_OVERFLOW'));
  assert.throws(() => parse(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(90)}\r\n\r\n`, [], { maxHeaderBytes: 64 }), (e: unknown) => e instanceof HttpParseError && e.code === 'HPE_HEADER_OVERFLOW' && e.message === 'Parse Error: Header overflow');
  // A head just under the limit is taken.
  const fits = `HTTP/1.1 204 No Content\r\nX: ${'a'.repeat(16 * 1024 - 32)}\r\n\r\n`;
  assert.ok(Buffer.byteLength(fits) <= 16 * 1024);
  assert.equal(parse(fits).heads[0]?.status, 204);
});

test('trailers over the limit are HPE_HEADER_OVERFLOW; a chunk-size line over it is HPE_INVALID_CHUNK_SIZE', () => {
  assert.throws(() => parse(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`), parseError('HPE_HEADER_OVERFLOW'));
  assert.throws(() => parse(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'a'.repeat(20_000)}`), parseError('HPE_INVALID_CHUNK_SIZE'));
});

test('a status line that is not HTTP/1.x NNN is a typed error', () => {
  assert.throws(() => parse('SSH-2.0-OpenSSH_9.6\r\n'), (e: unknown) => e instanceof HttpParseError && e.code === 'HPE_INVALID_CONSTANT' && e.message === 'Parse Error: Expected HTTP/');
  assert.throws(() => parse('HTTP/1.1 2000 OK\r\n\r\n'), parseError('HPE_INVALID_STATUS'));
  assert.throws(() => parse('HTTP/1.1 abc OK\r\n\r\n'), parseError('HPE_INVALID_STATUS'));
  assert.throws(() => parse('HTTP/1.1 099 Low\r\n\r\n'), parseError('HPE_INVALID_STATUS'));
  assert.throws(() => parse('HTTP/2.0 200 OK\r\n\r\n'), parseError('HPE_INVALID_VERSION'));
  assert.throws(() => parse('HTTP/1.1 101 Switching Protocols\r\n\r\n'), parseError('HPE_INVALID_STATUS'));
  // A status line without a reason phrase is fine.
  assert.equal(parse('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').heads[0]?.status, 200);
});

test('an answer that cannot start with "HTTP/" is refused at its first bytes, before any newline; what it sent is kept, printable', () => {
  // An SSH banner cut before its newline, a binary frame: no waiting for a line that may never end.
  assert.throws(() => parse('SSH-2.0-Open'), (e: unknown) => e instanceof HttpParseError && e.code === 'HPE_INVALID_CONSTANT' && e.notHttp && e.got === 'SSH-2.0-Open');
  assert.throws(() => parse(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02])), (e: unknown) => e instanceof HttpParseError && e.got === '?????');
  assert.throws(() => parse(`SSH-2.0-${'x'.repeat(100)}\r\n`), (e: unknown) => e instanceof HttpParseError && e.got === `SSH-2.0-${'x'.repeat(52)}…`);
  // "HTTP/" itself, split anywhere, is still a status line's start.
  assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', [1, 2, 3, 4]).heads[0]?.status, 200);
});

test('the reason phrase is kept as statusText, printable and at most 100 characters; none is empty', () => {
  assert.equal(parse('HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\n\r\n').heads[0]?.statusText, 'Request Entity Too Large');
  assert.equal(parse('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').heads[0]?.statusText, '');
  assert.equal(parse(`HTTP/1.1 500 \x7f${'y'.repeat(200)}\r\nContent-Length: 0\r\n\r\n`).heads[0]?.statusText, `?${'y'.repeat(99)}`);
});

test('malformed headers are typed errors: no colon, a space before it, a folded line, a control character', () => {
  for (const line of ['NoColon', 'Name : v', ' folded', 'X: a\x01b', ': empty name']) {
    assert.throws(() => parse(`HTTP/1.1 200 OK\r\n${line}\r\nContent-Length: 0\r\n\r\n`), parseError('HPE_INVALID_HEADER_TOKEN'), line);
  }
});

test('framing that could desynchronise the connection is refused: bad or conflicting Content-Length, both framings, a bad chunk', () => {
  assert.throws(() => parse('HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n'), parseError('HPE_INVALID_CONTENT_LENGTH'));
  assert.throws(() => parse('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'), parseError('HPE_INVALID_CONTENT_LENGTH'));
  assert.throws(() => parse('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n'), parseError('HPE_INVALID_CONTENT_LENGTH'));
  assert.throws(() => parse('HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n'), parseError('HPE_INVALID_CONTENT_LENGTH'));
  assert.throws(() => parse('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'), parseError('HPE_UNEXPECTED_CONTENT_LENGTH'));
  assert.throws(() => parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), parseError('HPE_INVALID_CHUNK_SIZE'));
  assert.throws(() => parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX'), parseError('HPE_STRICT'));
  // The same length repeated is one length.
  assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok').body, 'ok');
});
