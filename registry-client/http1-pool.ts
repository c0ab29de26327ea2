import { connect as netConnect, isIP, type Socket } from 'node:net';
import { timerDelay } from './timer.js';

/**
 * Kept-alive connections of the registry client's own HTTP (http1-request.ts), one pool per kind
 * (plain, verified TLS with its CAs, unverified TLS), connections kept per origin (`host:port`),
 * the last returned taken first. A connection is kept only when its exchange ended cleanly (the
 * request written whole, the response read to its end, nothing more on the wire); one the server
 * closes, or sends anything to, while it waits is dropped. Idle sockets do not hold the process.
 * node:tls is loaded when a TLS pool first connects: a push to a plain-HTTP registry never does.
 */

/** TLS options of a pool: extra CAs (the whole trust list), or nothing verified. */
export interface TlsOptions {
  ca?: string[];
  rejectUnauthorized?: boolean;
}

/** What a connection tells the exchange that holds it (nothing while it waits in the pool). */
export interface ConnectionUser {
  /** Connected (for TLS: the handshake done, the certificate checked). */
  onConnect(): void;
  onData(chunk: Buffer): void;
  /** The server ended its side. */
  onEnd(): void;
  onError(e: Error): void;
  onClose(): void;
  onDrain(): void;
}

/** The error of a connection closed before its answer came, as Node's: retry.ts retries its code. */
export function socketHangUp(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

/**
 * Where a socket for `url` connects: the host (an IPv6 address without its brackets), the port
 * (`defaultPort` when the URL has none), and the TLS server name (SNI, and the name checked
 * against the certificate), which an IP address does not get: it is checked as itself.
 */
export function endpoint(url: URL, defaultPort: number): { host: string; port: number; servername?: string } {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: Number(url.port || defaultPort), ...(isIP(host) ? {} : { servername: host }) };
}

export class Connection {
  user: ConnectionUser | undefined;
  connected = false;
  /** Exchanges finished on this connection: above 0, a kept-alive one the server may have closed meanwhile. */
  uses = 0;

  constructor(readonly socket: Socket, readonly key: string, private readonly pool: Pool, secure: boolean) {
    // One set of listeners for the socket's life, passing events to whoever holds it: adding and
    // removing them per request would cost more than the request's parsing.
    socket.on(secure ? 'secureConnect' : 'connect', () => {
      this.connected = true;
      this.user?.onConnect();
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.user) this.user.onData(chunk);
      else this.drop(); // a byte nobody asked for: the connection is out of step
    });
    socket.on('end', () => {
      if (this.user) this.user.onEnd();
      else this.drop();
    });
    // Without a holder the error is dropped: 'close' follows and the pool forgets the socket.
    socket.on('error', (e: Error) => this.user?.onError(e));
    socket.on('close', () => {
      this.pool.forget(this);
      this.user?.onClose();
    });
    socket.on('drain', () => this.user?.onDrain());
    socket.on('timeout', () => {
      if (!this.user) this.drop(); // the server's keep-alive timeout is near
    });
  }

  /** Close an idle connection, out of the pool at once. */
  private drop(): void {
    this.pool.forget(this);
    this.socket.destroy();
  }

  get reused(): boolean {
    return this.uses > 0;
  }

  /** Whether the socket can still carry a request. */
  get usable(): boolean {
    const s = this.socket;
    return !s.destroyed && s.writable && !s.readableEnded;
  }
}

export class Pool {
  private readonly idle = new Map<string, Connection[]>();
  private readonly all = new Set<Connection>();
  /** The last TLS session per origin, to resume instead of a full handshake. */
  private readonly sessions = new Map<string, Buffer>();

  /** `tls` undefined: plain TCP. */
  constructor(private readonly tls?: TlsOptions) {}

  /** Number of connections open (in use or idle); for tests. */
  get size(): number {
    return this.all.size;
  }

  /**
   * A connection to `url`'s origin for `user`: a kept-alive one (connected already) unless
   * `fresh`, else a new one (connecting: `user.onConnect` follows, or an error).
   */
  take(url: URL, user: ConnectionUser, fresh = false): Connection {
    const key = url.host.toLowerCase();
    const list = fresh ? undefined : this.idle.get(key);
    while (list?.length) {
      const c = list.pop()!;
      if (!c.usable) {
        c.socket.destroy();
        continue;
      }
      c.socket.setTimeout(0);
      c.socket.ref();
      c.user = user;
      return c;
    }
    const c = this.open(url, key);
    c.user = user;
    this.all.add(c);
    return c;
  }

  /** Give back a connection whose exchange ended cleanly; kept for at most `keepAliveMs` when the server said how long it keeps it. */
  release(c: Connection, keepAliveMs?: number): void {
    c.user = undefined;
    c.uses++;
    if (!c.usable || !this.all.has(c)) {
      c.socket.destroy();
      return;
    }
    c.socket.unref();
    // Paused when the last body bytes filled a slow reader's buffer: idle, it must see a close.
    if (c.socket.isPaused()) c.socket.resume();
    if (keepAliveMs !== undefined) c.socket.setTimeout(timerDelay(keepAliveMs));
    let list = this.idle.get(c.key);
    if (!list) this.idle.set(c.key, (list = []));
    list.push(c);
  }

  /** Called when a socket closes. */
  forget(c: Connection): void {
    this.all.delete(c);
    const list = this.idle.get(c.key);
    const i = list ? list.indexOf(c) : -1;
    if (i >= 0) list!.splice(i, 1);
  }

  /** Close every connection, in use or idle. */
  destroy(): void {
    for (const c of [...this.all]) c.socket.destroy();
    this.idle.clear();
  }

  private open(url: URL, key: string): Connection {
    if (!this.tls) {
      const { host, port } = endpoint(url, 80);
      const socket = netConnect({ host, port });
      socket.setNoDelay(true);
      return new Connection(socket, key, this, false);
    }
    const session = this.sessions.get(key);
    const socket = process.getBuiltinModule('node:tls').connect({ ...endpoint(url, 443), ...this.tls, ...(session ? { session } : {}) });
    socket.setNoDelay(true);
    socket.on('session', (s: Buffer) => this.sessions.set(key, s));
    return new Connection(socket, key, this, true);
  }
}
