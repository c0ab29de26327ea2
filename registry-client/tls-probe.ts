import { endpoint, socketHangUp } from './http1-pool.js';
import { timerDelay } from './timer.js';

/**
 * Whether the server at `url` completes a TLS handshake: resolves when it does, else rejects with
 * the connection's error (a server that does not speak TLS: ERR_SSL_WRONG_VERSION_NUMBER or a
 * reset). Nothing is verified and nothing is sent after the handshake: this only tells whether
 * the verified request is worth making, whose context loads Node's ~140 root certificates
 * (~60 ms of CPU on Node 20) — a cost a loopback registry speaking plain HTTP need not pay.
 * `signal` aborting ends the attempt at once (the socket closed), rejecting with its reason.
 */
export function tlsHandshake(url: URL, connectMs: number, connectTimeout: () => Error, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    let finished = false;
    const onAbort = () => done(signal!.reason);
    const socket = process.getBuiltinModule('node:tls').connect({ ...endpoint(url, 443), ca: [], rejectUnauthorized: false });
    const done = (e?: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (e === undefined) resolve();
      else reject(e);
    };
    const timer = setTimeout(() => done(connectTimeout()), timerDelay(connectMs)).unref();
    socket.once('secureConnect', () => done());
    socket.once('error', (e) => done(e));
    socket.once('close', () => done(socketHangUp()));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
