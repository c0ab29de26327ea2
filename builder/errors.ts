/**
 * Every error imgbuild reports to a user is an ImgbuildError: a message that says what is wrong
 * and where (file, field, store path, registry response), and a stable `code` for scripts.
 * The CLI prints `error[<code>]: <message>` (plus `hint:` when there is one) and exits non-zero.
 */
export class ImgbuildError extends Error {
  override name = 'ImgbuildError';
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A spec that does not load or does not validate. `field` is a dotted path like `config.Env[2]`. */
export class SpecError extends ImgbuildError {
  override name = 'SpecError';
  constructor(
    readonly file: string,
    readonly field: string | undefined,
    message: string,
    hint?: string,
  ) {
    super('spec', `${file}${field ? `: ${field}` : ''}: ${message}`, hint);
  }
}

/** A store path that is missing, malformed, or not closed under references. */
export class StoreError extends ImgbuildError {
  override name = 'StoreError';
  constructor(message: string, readonly paths: string[] = [], hint?: string, options?: { cause?: unknown }) {
    super('store', message, hint, options);
  }
}

/** Content that cannot go in a layer (a fifo, a socket, a device, an unreadable file). */
export class LayerContentError extends ImgbuildError {
  override name = 'LayerContentError';
  constructor(message: string, readonly fsPath: string, hint?: string) {
    super('layer-content', message, hint);
  }
}

/** An output that cannot be written (missing parent dir, unknown format). */
export class OutputError extends ImgbuildError {
  override name = 'OutputError';
  constructor(message: string, readonly outputPath?: string, hint?: string, options?: { cause?: unknown }) {
    super('output', message, hint, options);
  }
}

/**
 * A base image (`fromImage`) for another platform than the image being built: its layers would
 * go into an image labelled for a platform they are not for. `base` is the spec's `fromImage`,
 * `basePlatform` what its config (or the index entry it was taken from) says, `platform` the
 * platform being built (`linux/arm64/v8`).
 */
export class BasePlatformError extends ImgbuildError {
  override name = 'BasePlatformError';
  constructor(
    readonly base: string,
    readonly basePlatform: string,
    readonly platform: string,
    message: string,
    hint: string,
  ) {
    super('base-platform', message, hint);
  }
}
