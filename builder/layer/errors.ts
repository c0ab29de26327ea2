import { ImgbuildError } from '../errors.js';

/**
 * An entry the layer writer cannot encode as given: a malformed path, entries out of tar order,
 * an owner or mtime that does not fit a tar header. These are bugs in the producer of the entries
 * (or a spec value out of range), not problems of the files on disk (see LayerContentError).
 */
export class LayerEntryError extends ImgbuildError {
  override name = 'LayerEntryError';
  constructor(
    message: string,
    /** The entry's path inside the image, when the error is about one entry. */
    readonly entryPath?: string,
    hint?: string,
  ) {
    super('layer-entry', message, hint);
  }
}
