import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';

type RequestOptions = {
  method: Dispatcher.HttpMethod;
  headers: Record<string, string>;
  body?: Dispatcher.DispatchOptions['body'];
  /** Per request (transport.ts timeouts): the response timeout, the idle timeout, and an abort. */
  signal?: AbortSignal;
  headersTimeout?: number;
  bodyTimeout?: number;
};

type Request = (dispatcher: Dispatcher, url: URL, options: RequestOptions) => Promise<Dispatcher.ResponseData>;

let loaded: Request | undefined;

/**
 * undici's `request`, for a caller's own dispatcher (`TransportOptions.dispatcher`, e.g. tests'
 * MockAgent); the registry client's own HTTP is its HTTP/1.1 client (http1-request.ts). Loaded when first used,
 * and without undici's index, which requires ~110 CommonJS files (fetch, WebSocket, cache stores,
 * mocks) where this needs a few: `lib/api/api-request.js` is what the index wraps as `request`;
 * if a release moves it, the index is loaded instead.
 */
function load(): Request {
  // Made here, not when the module loads: a Module object and its lookup paths (~1 ms of CPU) that
  // no request over our own HTTP/1.1 client needs.
  const require = createRequire(import.meta.url);
  try {
    const apiRequest = require('undici/lib/api/api-request.js') as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
    if (typeof apiRequest !== 'function') throw new Error('undici layout changed');
    // What undici's `request(url, { dispatcher })` does: the URL split into origin and path.
    return (dispatcher, url, options) => apiRequest.call(dispatcher, { ...options, origin: url.origin, path: `${url.pathname}${url.search}` });
  } catch {
    const undici = require('undici') as typeof import('undici');
    return (dispatcher, url, options) => undici.request(url, { ...options, dispatcher });
  }
}

export function undiciRequest(dispatcher: Dispatcher, url: URL, options: RequestOptions): Promise<Dispatcher.ResponseData> {
  return (loaded ??= load())(dispatcher, url, options);
}
