import { Annotation } from '../../oci/media-types.js';
import type { Manifest } from '../../oci/schemas.js';

/**
 * The store layers of an image imgbuild built, bottom first, as the store paths each one holds
 * (read back from the `dev.imgbuild.store-paths` annotation of its layer descriptors). Layers
 * without the annotation — base-image and customisation layers — are not store layers.
 */
export function previousStoreLayers(manifest: Manifest): string[][] {
  return manifest.layers
    .map((l) => l.annotations?.[Annotation.storePaths])
    .filter((paths): paths is string => paths !== undefined && paths.length > 0)
    .map((paths) => paths.split('\n'));
}
