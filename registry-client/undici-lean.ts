import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';

const require = createRequire(import.meta.url);

type RequestOptions = {
  method: Dispatcher.HttpMethod;
  headers: Record<string, string>;
  body?: Dispatcher.DispatchOptions['body'];
  /** Per request (transport.ts timeouts): the response timeout, the idle timeout, and an abort. */
  signal?: AbortSignal;
  headersTimeout?: number;
  bodyTimeout?: number;
};

/**
 * undici's Agent and `request`, loaded without its index: the index requires ~110 CommonJS files
 * (fetch, WebSocket, cache stores, mocks) where these two need ~25, ~110 ms of CPU less for
 * every process that talks to a registry (a no-op push costs ~0.5 s of CPU in all). The files
 * are undici's own (`lib/dispatcher/agent.js`, `lib/api/api-request.js`, what its index exports
 * as `Agent` and wraps as `request`); if a release moves them, the index is loaded instead.
 */
function load(): { Agent: typeof UndiciAgent; request: (dispatcher: Dispatcher, url: URL, options: RequestOptions) => Promise<Dispatcher.ResponseData> } {
  try {
    const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
    const apiRequest = require('undici/lib/api/api-request.js') as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
    if (typeof Agent !== 'function' || typeof apiRequest !== 'function') throw new Error('undici layout changed');
    // What undici's `request(url, { dispatcher })` does: the URL split into origin and path.
    return { Agent, request: (dispatcher, url, options) => apiRequest.call(dispatcher, { ...options, origin: url.origin, path: `${url.pathname}${url.search}` }) };
  } catch {
    const undici = require('undici') as typeof import('undici');
    return { Agent: undici.Agent, request: (dispatcher, url, options) => undici.request(url, { ...options, dispatcher }) };
  }
}

export const { Agent, request } = load();
