/**
 * Bad input to the planner: the message names the path, option or number at fault. The same
 * shape as the builder's and the registry client's errors (`code`, `message`, `hint`), without
 * importing either: layering/ stands alone.
 */
export class LayeringError extends Error {
  override name = 'LayeringError';
  readonly code = 'layering';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}
