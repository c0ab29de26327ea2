import { parseDrvName, splitStorePath } from './drv-name.js';

// Package URLs (github.com/package-url/purl-spec). Nix has no registered purl type yet (purl-spec
// issue #149); `pkg:nix/<name>@<version>` is what syft's and bombon's Nix catalogers write, and
// syft adds the store path's hash part as `outputhash`. imgbuild writes the same, so scanners that
// read those SBOMs read ours, and the hash part makes it one identifier per store path
// (docs/sbom.md).

/** `pkg:nix/<name>@<version>?outputhash=<hash part>` for a store path. */
export function storePathPurl(path: string): string {
  const { hash, name: full } = splitStorePath(path);
  const { name, version } = parseDrvName(full);
  return `pkg:nix/${encode(name)}${version ? `@${encode(version)}` : ''}?outputhash=${encode(hash)}`;
}

/**
 * `pkg:oci/<last name component>@<digest>?arch=..&repository_url=..&tag=..` (the purl `oci`
 * type): the image by digest, with where it is published as a qualifier.
 */
export function imagePurl(name: string, digest: string, q: { arch?: string | undefined; tag?: string | undefined }): string {
  const bare = name.replace(/^docker:\/\//, '').replace(/@.*$/, '').replace(/:[^/]*$/, '');
  const last = bare.slice(bare.lastIndexOf('/') + 1).toLowerCase();
  const qualifiers: [string, string][] = [];
  if (q.arch) qualifiers.push(['arch', q.arch]);
  if (bare.includes('/')) qualifiers.push(['repository_url', bare]);
  if (q.tag) qualifiers.push(['tag', q.tag]);
  const qs = qualifiers.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${encode(v)}`).join('&');
  return `pkg:oci/${encode(last || 'image')}@${encode(digest)}${qs ? `?${qs}` : ''}`;
}

/** Percent-encoding as the purl spec asks (everything but unreserved characters; `/` kept in qualifier values is not needed here). */
function encode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
