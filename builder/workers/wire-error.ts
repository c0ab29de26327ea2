import { ImgbuildError, LayerContentError, SpecError, StoreError } from '../errors.js';
import { LayerEntryError } from '../layer/errors.js';

/** An error as it crosses the thread boundary: structured clone keeps neither the class nor our fields. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** Set when the error was an ImgbuildError (its `code`), or a system error's code (`ENOSPC`). */
  code?: string;
  imgbuild?: boolean;
  hint?: string;
  fsPath?: string;
  entryPath?: string;
  paths?: string[];
  file?: string;
  field?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

/** An error for the wire: name, message, stack and the fields our error classes carry. */
export function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const e = err as Error & Record<string, unknown>;
  const wire: WireError = { name: err.name, message: err.message, stack: err.stack };
  if (err instanceof ImgbuildError) wire.imgbuild = true;
  for (const k of ['code', 'hint', 'fsPath', 'entryPath', 'file', 'field', 'syscall', 'path'] as const) {
    if (typeof e[k] === 'string') wire[k] = e[k];
  }
  if (typeof e.errno === 'number') wire.errno = e.errno;
  if (Array.isArray(e.paths) && e.paths.every((p) => typeof p === 'string')) wire.paths = e.paths as string[];
  return wire;
}

/** The error a worker reported, as the class it was thrown as, with the same message and fields. */
export function reviveError(w: WireError, signal?: AbortSignal): Error {
  let err: Error;
  if (w.name === 'AbortError') {
    err = abortError(signal, w.message);
  } else if (w.imgbuild) {
    err = reviveImgbuildError(w);
  } else {
    err = new Error(w.message);
    if (w.name !== 'Error') err.name = w.name;
    const sys = err as Error & { code?: string; errno?: number; syscall?: string; path?: string };
    if (w.code !== undefined) sys.code = w.code;
    if (w.errno !== undefined) sys.errno = w.errno;
    if (w.syscall !== undefined) sys.syscall = w.syscall;
    if (w.path !== undefined) sys.path = w.path;
  }
  // The worker's frames say where it failed; ours would only show the message handler.
  if (w.stack) err.stack = w.stack;
  return err;
}

function reviveImgbuildError(w: WireError): ImgbuildError {
  let err: ImgbuildError;
  switch (w.name) {
    case 'LayerContentError':
      return new LayerContentError(w.message, w.fsPath ?? '', w.hint);
    case 'LayerEntryError':
      return new LayerEntryError(w.message, w.entryPath, w.hint);
    case 'StoreError':
      return new StoreError(w.message, w.paths ?? [], w.hint);
    case 'SpecError':
      err = new SpecError(w.file ?? '', w.field, w.message, w.hint);
      // The constructor prefixes file and field; the message already has them.
      err.message = w.message;
      return err;
    default:
      // Another ImgbuildError subclass: same code, message, hint and name; not the same class.
      err = new ImgbuildError(w.code ?? 'error', w.message, w.hint);
      err.name = w.name;
      return err;
  }
}

/** An AbortError, as Node's stream pipeline gives one (name, code), caused by the signal's reason. */
export function abortError(signal: AbortSignal | undefined, message = 'The operation was aborted'): Error {
  const err = new Error(message, signal ? { cause: signal.reason } : undefined);
  err.name = 'AbortError';
  (err as Error & { code: string }).code = 'ABORT_ERR';
  return err;
}
