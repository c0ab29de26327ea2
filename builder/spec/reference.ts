/**
 * The grammar of image names and tags (distribution/reference, which Docker, containerd and every
 * registry use). A name is `[host[:port]/]component(/component)*`; the first part is a host when
 * it contains `.` or `:` or is `localhost`.
 */

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9A-Fa-f:]+\\])(?::[0-9]+)?$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

/** Why `name` is not a valid repository name, or undefined when it is. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'must not be empty';
  if (name.includes('@')) return `"${name}" contains a digest; a name is a repository only`;
  if (name.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters, got ${name.length}`;
  const parts = name.split('/');
  const first = parts[0]!;
  const hasHost = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasHost && !HOST.test(first)) return `"${first}" is not a valid registry host[:port]`;
  const path = hasHost ? parts.slice(1) : parts;
  const last = path[path.length - 1]!;
  if (last.includes(':')) {
    return `"${name}" contains a tag; put the tag in \`tag\` (name "${name.slice(0, name.lastIndexOf(':'))}", tag "${last.slice(last.indexOf(':') + 1)}")`;
  }
  for (const part of path) {
    if (part === '') return `"${name}" has an empty path component`;
    if (PATH_COMPONENT.test(part)) continue;
    if (PATH_COMPONENT.test(part.toLowerCase())) return `must be lowercase ("${hasHost ? `${first}/` : ''}${path.join('/').toLowerCase()}")`;
    return `"${part}" is not a valid name component (lowercase letters and digits, separated by ".", "_", "__" or "-")`;
  }
  return undefined;
}

/** Why `tag` is not a valid tag, or undefined when it is. */
export function tagProblem(tag: string): string | undefined {
  if (TAG.test(tag)) return undefined;
  if (tag === '') return 'must not be empty (leave `tag` out to derive it from the content)';
  if (tag.length > 128) return `must be at most 128 characters, got ${tag.length}`;
  return `"${tag}" is not a valid tag (letters, digits, "_", "." and "-", not starting with "." or "-")`;
}
