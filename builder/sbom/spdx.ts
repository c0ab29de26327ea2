import { digestHex } from '../../oci/digest.js';
import { parseDrvName, splitStorePath } from './drv-name.js';
import type { SbomInput } from './input.js';
import { imagePurl, storePathPurl } from './purl.js';

/** Where SPDX document namespaces of imgbuild's SBOMs live: a URI per image, never fetched. */
export const SPDX_NAMESPACE_BASE = 'https://github.com/imgbuild/imgbuild/spdx';

/**
 * An SPDX 2.3 JSON document of the image: one package for the image (primaryPackagePurpose
 * CONTAINER), one per store path (name and version as parseDrvName splits them, the NAR hash as
 * its SHA256 checksum, a `pkg:nix` purl), the base image as a package, the customisation layer's
 * files; relationships DESCRIBES, CONTAINS (image → path, file), DEPENDS_ON (path → each of its
 * references), DESCENDANT_OF (image → base). Keys in a fixed order, lists sorted: the same input
 * gives the same bytes.
 */
export function spdxDocument(input: SbomInput): Buffer {
  const { image } = input;
  const imageId = 'SPDXRef-Image';
  const pathId = (p: string) => `SPDXRef-StorePath-${spdxIdPart(splitStorePath(p).hash)}`;
  const packages: Record<string, unknown>[] = [];
  packages.push({
    SPDXID: imageId,
    name: image.name,
    ...(image.tag ? { versionInfo: image.tag } : {}),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    checksums: [{ algorithm: 'SHA256', checksumValue: digestHex(image.digest) }],
    primaryPackagePurpose: 'CONTAINER',
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: imagePurl(image.name, image.digest, { arch: image.architecture, tag: image.tag }) }],
    comment: `OCI image manifest ${image.digest} for ${image.platform}`,
  });
  if (input.base) {
    packages.push({
      SPDXID: 'SPDXRef-BaseImage',
      name: input.base.name,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: digestHex(input.base.digest) }],
      primaryPackagePurpose: 'CONTAINER',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: imagePurl(input.base.name, input.base.digest, {}) }],
      comment: 'The base image (fromImage); its own contents are not described here.',
    });
  }
  for (const p of input.paths) {
    const { name: full } = splitStorePath(p.path);
    const { name, version } = parseDrvName(full);
    packages.push({
      SPDXID: pathId(p.path),
      name,
      ...(version ? { versionInfo: version } : {}),
      packageFileName: p.path,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      ...(p.narHash ? { checksums: [{ algorithm: 'SHA256', checksumValue: p.narHash }] } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: storePathPurl(p.path) }],
      comment: p.narHash ? `Nix store path; checksum: SHA-256 of its NAR serialisation (nix-store -q --hash)${p.narSize !== undefined ? `; NAR size ${p.narSize} bytes` : ''}` : 'Nix store path; NAR hash unknown',
    });
  }
  const files = input.files.map((f, i) => ({
    SPDXID: `SPDXRef-File-${i + 1}`,
    fileName: `.${f.path}`,
    checksums: [
      { algorithm: 'SHA1', checksumValue: f.sha1 },
      { algorithm: 'SHA256', checksumValue: f.sha256 },
    ],
    comment: `In the customisation layer (written by imgbuild from the spec); ${f.size} bytes`,
  }));
  const relationships: Record<string, string>[] = [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId }];
  if (input.base) relationships.push({ spdxElementId: imageId, relationshipType: 'DESCENDANT_OF', relatedSpdxElement: 'SPDXRef-BaseImage' });
  for (const p of input.paths) relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: pathId(p.path) });
  for (const f of files) relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: f.SPDXID });
  const known = new Set(input.paths.map((p) => p.path));
  for (const p of input.paths) {
    for (const r of p.references ?? []) if (known.has(r)) relationships.push({ spdxElementId: pathId(p.path), relationshipType: 'DEPENDS_ON', relatedSpdxElement: pathId(r) });
  }
  const doc = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${image.name}${image.tag ? `:${image.tag}` : ''} (${image.platform})`,
    documentNamespace: `${SPDX_NAMESPACE_BASE}/${encodeURIComponent(image.name)}/${digestHex(image.digest)}`,
    creationInfo: {
      created: input.created,
      creators: [`Tool: ${input.tool.name}-${input.tool.version}`],
      ...(input.unknown.length > 0 ? { comment: `Unknown: ${input.unknown.join('; ')}` } : {}),
    },
    packages,
    ...(files.length > 0 ? { files } : {}),
    relationships,
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
}

/** SPDX ids allow letters, digits, `.` and `-`: a nix-base32 hash part is all of those already. */
function spdxIdPart(s: string): string {
  return s.replace(/[^A-Za-z0-9.-]/g, '-');
}
