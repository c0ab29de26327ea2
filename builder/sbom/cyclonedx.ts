import { createHash } from 'node:crypto';
import { digestHex } from '../../oci/digest.js';
import { parseDrvName, splitStorePath } from './drv-name.js';
import type { SbomInput } from './input.js';
import { imagePurl, storePathPurl } from './purl.js';

/**
 * A CycloneDX 1.6 JSON BOM of the image: the image as `metadata.component` (type container), one
 * component per store path (bom-ref = the store path; name/version as parseDrvName splits them;
 * the NAR hash as SHA-256; a `pkg:nix` purl; `nix:store_path` and `nix:nar_size` properties), the
 * base image as a container component, the customisation layer's files as file components, and
 * the reference graph in `dependencies`. The serial number is derived from the image digest, the
 * timestamp is the image's `created`: the same input gives the same bytes.
 */
export function cyclonedxDocument(input: SbomInput): Buffer {
  const { image } = input;
  const imageRef = imagePurl(image.name, image.digest, { arch: image.architecture, tag: image.tag });
  const baseRef = input.base ? imagePurl(input.base.name, input.base.digest, {}) : undefined;
  const components: Record<string, unknown>[] = [];
  if (input.base) {
    components.push({
      type: 'container',
      'bom-ref': baseRef,
      name: input.base.name,
      hashes: [{ alg: 'SHA-256', content: digestHex(input.base.digest) }],
      purl: baseRef,
      description: 'The base image (fromImage); its own contents are not described here.',
    });
  }
  for (const p of input.paths) {
    const { name, version } = parseDrvName(splitStorePath(p.path).name);
    components.push({
      type: 'library',
      'bom-ref': p.path,
      name,
      ...(version ? { version } : {}),
      ...(p.narHash ? { hashes: [{ alg: 'SHA-256', content: p.narHash }] } : {}),
      purl: storePathPurl(p.path),
      properties: [
        { name: 'nix:store_path', value: p.path },
        ...(p.narSize !== undefined ? [{ name: 'nix:nar_size', value: String(p.narSize) }] : []),
      ],
    });
  }
  for (const f of input.files) {
    components.push({
      type: 'file',
      'bom-ref': `file:${f.path}`,
      name: f.path,
      hashes: [
        { alg: 'SHA-1', content: f.sha1 },
        { alg: 'SHA-256', content: f.sha256 },
      ],
      description: `In the customisation layer (written by imgbuild from the spec); ${f.size} bytes`,
    });
  }
  // Store paths whose references are known have an entry (an empty dependsOn: none); unknown ones have none.
  const known = new Set(input.paths.map((p) => p.path));
  const dependencies: Record<string, unknown>[] = [
    { ref: imageRef, dependsOn: [...(baseRef ? [baseRef] : []), ...(input.roots ?? input.paths.map((p) => p.path)).filter((r) => known.has(r)).sort()] },
  ];
  for (const p of input.paths) {
    if (p.references) dependencies.push({ ref: p.path, dependsOn: p.references.filter((r) => known.has(r)) });
  }
  const doc = {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: serialNumber(image.digest),
    version: 1,
    metadata: {
      timestamp: input.created,
      tools: { components: [{ type: 'application', name: input.tool.name, version: input.tool.version }] },
      component: {
        type: 'container',
        'bom-ref': imageRef,
        name: image.name,
        ...(image.tag ? { version: image.tag } : {}),
        hashes: [{ alg: 'SHA-256', content: digestHex(image.digest) }],
        purl: imageRef,
        properties: [{ name: 'oci:platform', value: image.platform }],
      },
      ...(input.unknown.length > 0 ? { properties: input.unknown.map((u) => ({ name: 'imgbuild:unknown', value: u })) } : {}),
    },
    components,
    dependencies,
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
}

/** `urn:uuid:` of a name-based (version 5 layout) UUID from the image digest: one serial number per image. */
function serialNumber(digest: string): string {
  const h = createHash('sha256').update(`imgbuild cyclonedx ${digest}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `urn:uuid:${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
