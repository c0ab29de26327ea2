import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join, normalize } from 'node:path';

/** One request the server answered. */
export interface ServedRequest {
  method: string;
  path: string;
  status: number | 'cut';
  range?: string;
}

/** A fault for the next matching requests. */
export interface ServedFault {
  match: (path: string) => boolean;
  times: number;
  /** Answer this status instead of the file, or send `bytes` of the body and cut the connection. */
  fault: { kind: 'status'; status: number } | { kind: 'cut-after'; bytes: number };
}

export interface FileServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests(): ServedRequest[];
  clearLog(): void;
  inject(f: ServedFault): void;
  stop(): Promise<void>;
}

/**
 * A static file server on 127.0.0.1 over `root` (a stand-in for a Nix binary cache behind
 * HTTP: nix-serve, an S3 bucket's endpoint), with single `Range: bytes=N-` requests answered
 * 206 as such servers do, a log of every request, and injected faults (a 503 burst, a body cut
 * short).
 */
export async function startFileServer(root: string): Promise<FileServer> {
  const log: ServedRequest[] = [];
  const faults: ServedFault[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const entry: ServedRequest = { method: req.method ?? '', path, status: 0, ...(req.headers.range ? { range: req.headers.range } : {}) };
    log.push(entry);
    const rule = faults.find((f) => f.times > 0 && f.match(path));
    if (rule) rule.times--;
    if (rule?.fault.kind === 'status') {
      entry.status = rule.fault.status;
      res.writeHead(rule.fault.status).end();
      return;
    }
    const file = join(root, normalize(path));
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile() || !file.startsWith(root)) throw new Error('not a file');
      size = st.size;
    } catch {
      entry.status = 404;
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    entry.status = m ? 206 : 200;
    res.writeHead(entry.status, {
      'content-length': String(size - start),
      ...(m ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const cut = rule?.fault.kind === 'cut-after' ? rule.fault.bytes : undefined;
    const stream = createReadStream(file, { start, ...(cut !== undefined ? { end: start + cut - 1 } : {}) });
    if (cut === undefined) {
      stream.pipe(res);
      return;
    }
    stream.on('data', (c) => res.write(c));
    stream.on('end', () => {
      entry.status = 'cut';
      res.socket?.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => [...log],
    clearLog: () => {
      log.length = 0;
    },
    inject: (f) => faults.push(f),
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
