import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the proxy saw: one line per request it received. */
export interface ProxiedRequest {
  method: string;
  path: string;
  /** The query string, percent-decoded (so `digest=sha256:...` can be matched as written). */
  query: string;
  /** The status sent back, 'reset' when the proxy cut the connection, 'hang' when it never answers. */
  status: number | 'reset' | 'hang';
  /** Whether the request carried an Authorization header (never its value). */
  authorized: boolean;
  bodyBytes: number;
  /** Response body bytes sent to the client. */
  sentBytes: number;
  /** The client closed the connection before the answer was complete (a timeout, a cancelled upload). */
  clientClosed: boolean;
}

export type Fault =
  /** Answer with this status (and headers) instead of forwarding. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string; delayMs?: number }
  /** Forward, but cut both connections after this many request-body bytes. */
  | { kind: 'reset-after'; bytes: number }
  /** Forward, but cut the connection after this many bytes of the response body. */
  | { kind: 'reset-response-after'; bytes: number }
  /** Answer 307 to another URL. */
  | { kind: 'redirect'; location: (req: IncomingMessage) => string }
  /** Take the request (its body too) and never answer; the connection stays open. */
  | { kind: 'hang' }
  /** Take this many bytes of the request body, then read no more and never answer. */
  | { kind: 'stall-request-after'; bytes: number }
  /** Forward, then send the headers and this many bytes of the body, and nothing more (the connection stays open). */
  | { kind: 'stall-response-after'; bytes: number }
  /** Forward, then send the upstream body again and again, chunked, without end (until the client leaves). */
  | { kind: 'endless-body' }
  /** Forward, changing or dropping response headers (a name mapped to undefined is dropped). */
  | { kind: 'headers'; edit: (headers: Record<string, string | string[] | undefined>) => Record<string, string | string[] | undefined> };

export interface FaultRule {
  match: (req: { method: string; path: string; query: string }) => boolean;
  /** How many matching requests get the fault (then the rule is spent). */
  times: number;
  fault: Fault;
}

export interface FaultProxy {
  host: string;
  port: number;
  /** Add a fault for the next matching requests. */
  inject(rule: FaultRule): void;
  requests(): ProxiedRequest[];
  clearLog(): void;
  /** Drop every fault not yet spent. */
  clearFaults(): void;
  stop(): Promise<void>;
}

/**
 * A small HTTP proxy on 127.0.0.1 in front of a registry (plain HTTP upstream). It forwards
 * requests as they are (Host kept, so the registry's upload Locations point back at the proxy),
 * logs each one, and injects faults: a status burst (503, 429 + Retry-After), a connection reset
 * in the middle of a request body, a redirect.
 */
export async function startFaultProxy(upstreamPort: number): Promise<FaultProxy> {
  const rules: FaultRule[] = [];
  const log: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const [path = '', rawQuery = ''] = (req.url ?? '').split('?');
    const query = safeDecode(rawQuery);
    const entry: ProxiedRequest = { method: req.method ?? '', path, query, status: 0, authorized: !!req.headers.authorization, bodyBytes: 0, sentBytes: 0, clientClosed: false };
    log.push(entry);
    const rule = rules.find((r) => r.times > 0 && r.match({ method: entry.method, path, query }));
    if (rule) rule.times--;
    const fault = rule?.fault;
    res.on('close', () => {
      if (!res.writableFinished) entry.clientClosed = true;
    });

    if (fault?.kind === 'hang' || fault?.kind === 'stall-request-after') {
      entry.status = 'hang';
      req.on('data', (chunk: Buffer) => {
        entry.bodyBytes += chunk.length;
        if (fault.kind === 'stall-request-after' && entry.bodyBytes >= fault.bytes) req.pause();
      });
      return;
    }

    if (fault?.kind === 'status' || fault?.kind === 'redirect') {
      req.resume();
      req.on('end', () => setTimeout(() => {
        if (fault.kind === 'status') {
          entry.status = fault.status;
          res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
          res.end(fault.body ?? '{"errors":[{"code":"UNAVAILABLE","message":"injected by the fault proxy"}]}');
        } else {
          entry.status = 307;
          res.writeHead(307, { location: fault.location(req), 'content-length': '0' });
          res.end();
        }
      }, fault.kind === 'status' ? fault.delayMs ?? 0 : 0));
      return;
    }

    const up = httpRequest({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      entry.status = upRes.statusCode ?? 0;
      let headers: Record<string, string | string[] | undefined> = { ...upRes.headers };
      if (fault?.kind === 'headers') headers = fault.edit(headers);
      if (fault?.kind === 'endless-body') delete headers['content-length'];
      for (const k of Object.keys(headers)) if (headers[k] === undefined) delete headers[k];
      res.writeHead(upRes.statusCode ?? 502, headers as Record<string, string | string[]>);
      upRes.on('data', (chunk: Buffer) => (entry.sentBytes += chunk.length));
      if (fault?.kind === 'endless-body') {
        const parts: Buffer[] = [];
        upRes.on('data', (chunk: Buffer) => parts.push(chunk));
        upRes.on('end', () => {
          const all = Buffer.concat(parts.length ? parts : [Buffer.from('x')]);
          const more = () => {
            while (!res.destroyed && res.write(all)) entry.sentBytes += all.length;
            if (!res.destroyed) res.once('drain', more);
          };
          more();
        });
        return;
      }
      if (fault?.kind === 'stall-response-after') {
        let sent = 0;
        upRes.on('data', (chunk: Buffer) => {
          const room = fault.bytes - sent;
          if (room > 0) res.write(chunk.subarray(0, room));
          sent += Math.min(room, chunk.length);
        });
        return;
      }
      if (fault?.kind !== 'reset-response-after') {
        upRes.pipe(res);
        return;
      }
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (entry.status === 'reset') return;
        const room = fault.bytes - sent;
        if (chunk.length >= room) {
          res.write(chunk.subarray(0, room), () => {
            entry.status = 'reset';
            res.socket?.destroy();
            upRes.destroy();
          });
          entry.status = 'reset';
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      });
      upRes.on('end', () => {
        if (entry.status !== 'reset') res.end();
      });
    });
    up.on('error', () => {
      if (entry.status === 'reset') return;
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.on('data', (chunk: Buffer) => {
      entry.bodyBytes += chunk.length;
      if (fault?.kind === 'reset-after' && entry.bodyBytes >= fault.bytes && entry.status !== 'reset') {
        entry.status = 'reset';
        req.socket.destroy();
        up.destroy();
        return;
      }
      if (!up.write(chunk)) {
        req.pause();
        up.once('drain', () => req.resume());
      }
    });
    req.on('end', () => {
      if (entry.status !== 'reset') up.end();
    });
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
    inject: (rule) => rules.push({ ...rule }),
    requests: () => log.slice(),
    clearLog: () => void log.splice(0),
    clearFaults: () => void rules.splice(0),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * How many times each blob was uploaded, by digest: the requests that completed an upload (the
 * final `PUT …/blobs/uploads/<id>?digest=…`, or a one-request `POST …/blobs/uploads/?digest=…`)
 * and that the registry accepted (201). Cross-repository mounts (`?mount=…&from=…`), refused,
 * failed or cut requests do not count. A push that uploads each distinct blob once gives 1
 * everywhere; a push of what the registry already has gives `{}`.
 */
export function uploadsByDigest(requests: readonly Pick<ProxiedRequest, 'method' | 'path' | 'query' | 'status'>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) {
    if ((r.method !== 'PUT' && r.method !== 'POST') || r.status !== 201 || !/\/blobs\/uploads\//.test(r.path)) continue;
    const digest = new URLSearchParams(r.query).get('digest');
    if (!digest) continue;
    counts[digest] = (counts[digest] ?? 0) + 1;
  }
  return counts;
}
