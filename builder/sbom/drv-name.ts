/**
 * A store path name split into name and version the way Nix's `builtins.parseDrvName` does
 * (libexpr/names.cc): the version starts after the first `-` that is followed by a character
 * other than a letter. `hello-2.12.1` → `hello` and `2.12.1`; `perl5.38.0-URI-5.21` →
 * `perl5.38.0-URI` and `5.21`; `source` → `source` and no version.
 */
export function parseDrvName(s: string): { name: string; version: string } {
  for (let i = 0; i < s.length - 1; i++) {
    if (s[i] === '-' && !/[A-Za-z]/.test(s[i + 1]!)) return { name: s.slice(0, i), version: s.slice(i + 1) };
  }
  return { name: s, version: '' };
}

/** `<storeDir>/<hash>-<name>` → its hash part and name. */
export function splitStorePath(path: string): { hash: string; name: string } {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dash = base.indexOf('-');
  return dash < 0 ? { hash: base, name: '' } : { hash: base.slice(0, dash), name: base.slice(dash + 1) };
}
