/** Bad input to the planner: the message names the path, option or number at fault. */
export class LayeringError extends Error {
  override name = 'LayeringError';
}
