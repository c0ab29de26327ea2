/**
 * What a POSIX shell reads as itself, unquoted: letters and digits (of any script: a shell gives
 * bytes outside ASCII no meaning) and `_ @ % + = : , . / -`, not starting with `=` (zsh expands
 * `=cmd`). Everything else (a space, a newline, `'`, `$`, `*`, `~`, `;`, …) needs quoting.
 */
const PLAIN = /^[\p{L}\p{N}_@%+:,./-][\p{L}\p{N}_@%+=:,./-]*$/u;

/**
 * `text` as one word of a command a user may paste into a POSIX shell (a hint's `imgbuild
 * inspect <path>`): as it is when no character needs quoting, else in single quotes, each `'`
 * written `'\''`. A newline stays a newline, inside the quotes.
 */
export function shellWord(text: string): string {
  return PLAIN.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}
