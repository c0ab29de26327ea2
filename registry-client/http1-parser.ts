/**
 * An HTTP/1.1 response parser for the registry client's own HTTP (http1-request.ts): the status
 * line, headers (a repeated one kept as an array, never joined), and the body delimited by
 * Content-Length, chunked transfer-encoding (extensions and trailers read and dropped), or the
 * connection's end; no body for a HEAD, 1xx, 204 or 304. Bytes may arrive split anywhere. It is
 * bounded: the head (and a chunk's size line, and the trailers) may take `maxHeaderBytes` (Node's
 * default, 16 KiB) at most, and anything malformed is an HttpParseError at once, never a wait.
 */

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** A response that breaks HTTP/1.1 framing; `code` is the one Node's parser (llhttp) gives it. */
export class HttpParseError extends Error {
  override name = 'HttpParseError';
  constructor(
    readonly code: string,
    readonly reason: string,
    /** For an answer that is not HTTP at all: the start of its first line, printable ASCII only, at most 60 characters. */
    readonly got?: string,
  ) {
    super(`Parse Error: ${reason}`);
  }

  /** Whether the answer is not HTTP/1.x at all (no status line: a banner, HTTP/2, binary), rather than HTTP with a framing fault. */
  get notHttp(): boolean {
    return this.code === 'HPE_INVALID_CONSTANT' || this.code === 'HPE_INVALID_VERSION';
  }
}

/** The start of a line as printable ASCII (anything else a `?`), cut at `max` characters: safe to print. */
export function excerpt(text: string, max = 60): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

export interface ResponseHead {
  status: number;
  /** The status line's reason phrase (`Not Found`), printable ASCII, at most 100 characters; '' when none. */
  statusText: string;
  headers: ResponseHeaders;
  /** Whether the connection may carry another request after this response (HTTP version, `Connection`, framing). */
  keepAlive: boolean;
  /** The body's length, when Content-Length frames it (checked: digits, repeats the same). */
  contentLength?: number;
}

export interface ParserEvents {
  /** The head of the final response (1xx informational ones are skipped). */
  onHead(head: ResponseHead): void;
  /** Body bytes, a view into the chunk given to `execute` (valid until the caller reuses it). */
  onBody(chunk: Buffer): void;
  /** The response is complete. */
  onComplete(): void;
}

export const MAX_HEADER_BYTES = 16 * 1024;

/** An HTTP token (RFC 9110 5.6.2): a method or a header field name. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A character no header field value may hold (controls but tab, DEL). */
export const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: ([^]*))?$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,13})[\t ]*(?:;[^]*)?$/;

const enum State { Head, Length, Chunked, ChunkSize, ChunkData, ChunkCr, ChunkLf, Trailers, UntilClose, Done }

export class ResponseParser {
  private state = State.Head;
  /** The part of a line not ended yet (head, chunk size, trailers). */
  private partial: Buffer | undefined;
  /** Bytes of lines taken toward the limit in this section (the head; a chunk's size line; the trailers). */
  private lineBytes = 0;
  private remaining = 0;
  private statusSeen = false;
  private status = 0;
  private statusText = '';
  private httpMinor = 1;
  private headers: ResponseHeaders = {};

  constructor(private readonly events: ParserEvents, private readonly opts: { head?: boolean; maxHeaderBytes?: number } = {}) {}

  /**
   * Parse `chunk`; returns how many of its bytes belong to this response (fewer than its length
   * when the response completed before its end: what follows is not ours). Throws HttpParseError.
   */
  execute(chunk: Buffer): number {
    let pos = 0;
    while (pos < chunk.length) {
      switch (this.state) {
        case State.Head:
        case State.ChunkSize:
        case State.Trailers: {
          const nl = chunk.indexOf(10, pos);
          const end = nl < 0 ? chunk.length : nl + 1;
          this.lineBytes += end - pos;
          if (this.lineBytes > (this.opts.maxHeaderBytes ?? MAX_HEADER_BYTES)) {
            throw this.state === State.ChunkSize ? new HttpParseError('HPE_INVALID_CHUNK_SIZE', 'Chunk size line too long') : new HttpParseError('HPE_HEADER_OVERFLOW', 'Header overflow');
          }
          if (nl < 0) {
            const rest = chunk.subarray(pos);
            this.partial = this.partial ? Buffer.concat([this.partial, rest]) : Buffer.from(rest);
            // A status line must start with "HTTP/": a server that sends anything else and no
            // newline (a binary protocol, a TLS alert) is told apart at once, not at a timeout.
            if (this.state === State.Head && !this.statusSeen && !startsLikeHttp(this.partial)) {
              throw new HttpParseError('HPE_INVALID_CONSTANT', 'Expected HTTP/', excerpt(this.partial.toString('latin1')));
            }
            return chunk.length;
          }
          let line: string;
          if (this.partial) {
            const whole = Buffer.concat([this.partial, chunk.subarray(pos, nl)]);
            this.partial = undefined;
            line = whole.toString('latin1', 0, whole.length && whole[whole.length - 1] === 13 ? whole.length - 1 : whole.length);
          } else line = chunk.toString('latin1', pos, nl > pos && chunk[nl - 1] === 13 ? nl - 1 : nl);
          pos = end;
          this.line(line);
          break;
        }
        case State.Length:
        case State.ChunkData: {
          const n = Math.min(this.remaining, chunk.length - pos);
          const piece = chunk.subarray(pos, pos + n);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = this.state === State.Length ? State.Done : State.ChunkCr;
          this.events.onBody(piece);
          if (this.state === State.Done) {
            this.events.onComplete();
            return pos;
          }
          break;
        }
        case State.ChunkCr:
        case State.ChunkLf: {
          const c = chunk[pos++];
          if (c === 13 && this.state === State.ChunkCr) this.state = State.ChunkLf;
          else if (c === 10) this.startChunkSize();
          else throw new HttpParseError('HPE_STRICT', 'Expected CRLF after chunk data');
          break;
        }
        case State.UntilClose:
          this.events.onBody(pos === 0 ? chunk : chunk.subarray(pos));
          return chunk.length;
        case State.Done:
          return pos;
      }
      if ((this.state as State) === State.Done) return pos;
    }
    return pos;
  }

  /**
   * The connection ended: a body running until then is complete (returns true); any other
   * response not complete was cut short (false).
   */
  finish(): boolean {
    if (this.state === State.UntilClose) {
      this.state = State.Done;
      this.events.onComplete();
    }
    return this.state === State.Done;
  }

  private startChunkSize(): void {
    this.state = State.ChunkSize;
    this.lineBytes = 0;
  }

  private line(line: string): void {
    if (this.state === State.ChunkSize) {
      const m = CHUNK_SIZE.exec(line);
      if (!m) throw new HttpParseError('HPE_INVALID_CHUNK_SIZE', 'Invalid character in chunk size');
      this.remaining = parseInt(m[1]!, 16);
      if (this.remaining > 0) this.state = State.ChunkData;
      else {
        this.state = State.Trailers;
        this.lineBytes = 0;
      }
      return;
    }
    if (this.state === State.Trailers) {
      if (line === '') {
        this.state = State.Done;
        this.events.onComplete();
      } else this.headerLine(line, undefined);
      return;
    }
    if (!this.statusSeen) {
      const m = STATUS_LINE.exec(line);
      if (!m) throw line.startsWith('HTTP/') ? new HttpParseError('HPE_INVALID_STATUS', 'Invalid status line') : new HttpParseError('HPE_INVALID_CONSTANT', 'Expected HTTP/', excerpt(line));
      if (m[1] !== '1' || (m[2] !== '0' && m[2] !== '1')) throw new HttpParseError('HPE_INVALID_VERSION', 'Invalid HTTP version', excerpt(line));
      this.status = Number(m[3]);
      if (this.status < 100) throw new HttpParseError('HPE_INVALID_STATUS', 'Invalid status code');
      this.statusText = excerpt((m[4] ?? '').trim(), 100).replace(/…$/, '');
      this.httpMinor = Number(m[2]);
      this.statusSeen = true;
      return;
    }
    if (line !== '') {
      this.headerLine(line, this.headers);
      return;
    }
    this.endOfHead();
  }

  private headerLine(line: string, into: ResponseHeaders | undefined): void {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    // No obsolete line folding, no space before the colon (RFC 9112 5.1-5.2).
    if (!TOKEN.test(name)) throw new HttpParseError('HPE_INVALID_HEADER_TOKEN', 'Invalid header field name');
    const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, '');
    if (BAD_VALUE.test(value)) throw new HttpParseError('HPE_INVALID_HEADER_TOKEN', 'Invalid header value char');
    if (!into) return;
    const key = name.toLowerCase();
    const had = into[key];
    if (had === undefined) into[key] = value;
    else if (typeof had === 'string') into[key] = [had, value];
    else had.push(value);
  }

  private endOfHead(): void {
    const status = this.status;
    const headers = this.headers;
    if (status < 200) {
      // 100 Continue, 103 Early Hints: informational, the real answer follows. 101 would switch
      // protocols, which we never ask for.
      if (status === 101) throw new HttpParseError('HPE_INVALID_STATUS', 'Unexpected 101 Switching Protocols');
      this.statusSeen = false;
      this.headers = {};
      this.lineBytes = 0;
      return;
    }
    const connection = tokens(headers.connection);
    let keepAlive = this.httpMinor === 1 ? !connection.includes('close') : connection.includes('keep-alive');
    const te = tokens(headers['transfer-encoding']);
    const cl = headers['content-length'];
    let body: State;
    let framedLength: number | undefined;
    if (this.opts.head || status === 204 || status === 304) body = State.Done;
    else if (te.length) {
      if (cl !== undefined) throw new HttpParseError('HPE_UNEXPECTED_CONTENT_LENGTH', 'Content-Length can\'t be present with Transfer-Encoding');
      // A response whose last coding is not chunked runs until the connection closes (RFC 9112 6.3).
      if (te[te.length - 1] === 'chunked') body = State.Chunked;
      else body = State.UntilClose;
    } else if (cl !== undefined) {
      this.remaining = framedLength = contentLength(cl);
      body = this.remaining === 0 ? State.Done : State.Length;
    } else body = State.UntilClose;
    if (body === State.UntilClose) keepAlive = false;
    const statusText = this.statusText;
    this.events.onHead(framedLength === undefined ? { status, statusText, headers, keepAlive } : { status, statusText, headers, keepAlive, contentLength: framedLength });
    if (body === State.Chunked) this.startChunkSize();
    else {
      this.state = body;
      if (body === State.Done) this.events.onComplete();
    }
  }
}

const HTTP_PREFIX = Buffer.from('HTTP/');

/** Whether `bytes` may begin a status line: they start as "HTTP/" does (as far as they go). */
function startsLikeHttp(bytes: Buffer): boolean {
  const n = Math.min(bytes.length, HTTP_PREFIX.length);
  return bytes.subarray(0, n).equals(HTTP_PREFIX.subarray(0, n));
}

/** The comma-separated tokens of a header (all its occurrences), lower case. */
function tokens(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  const all = typeof v === 'string' ? v : v.join(',');
  return all.toLowerCase().split(',').map((t) => t.trim()).filter((t) => t !== '');
}

/** Content-Length: digits, repeated only with the same value (RFC 9110 8.6); anything else would desynchronise the connection. */
function contentLength(v: string | string[]): number {
  const values = (typeof v === 'string' ? [v] : v).flatMap((x) => x.split(',')).map((x) => x.trim());
  const first = values[0]!;
  if (!/^\d{1,15}$/.test(first) || values.some((x) => x !== first)) throw new HttpParseError('HPE_INVALID_CONTENT_LENGTH', 'Invalid Content-Length');
  return Number(first);
}
