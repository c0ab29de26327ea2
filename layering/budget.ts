import { LayeringError } from './errors.js';

/** containerd's overlay snapshotter mounts at most 127 lower dirs; we keep a margin, as DESIGN.md §6 says. */
export const MAX_LAYERS_LIMIT = 125;
export const DEFAULT_MAX_LAYERS = 100;

/**
 * How many store layers an image may have: `maxLayers` counts every layer of the image, so the
 * base image's layers and the customisation layer (1) come off the top.
 */
export function storeLayerBudget(maxLayers: number, baseLayers: number): number {
  if (!Number.isInteger(maxLayers)) throw new LayeringError(`maxLayers must be an integer, got ${maxLayers}`);
  if (!Number.isInteger(baseLayers) || baseLayers < 0) {
    throw new LayeringError(`the base image layer count must be a non-negative integer, got ${baseLayers}`);
  }
  if (maxLayers > MAX_LAYERS_LIMIT) {
    throw new LayeringError(
      `maxLayers ${maxLayers} is more than ${MAX_LAYERS_LIMIT}: containerd's overlay driver cannot mount more than 127 layers; lower maxLayers`,
    );
  }
  if (maxLayers < 2) {
    throw new LayeringError(`maxLayers ${maxLayers} is less than 2: an image needs at least one store layer and the customisation layer`);
  }
  const budget = maxLayers - baseLayers - 1;
  if (budget < 1) {
    throw new LayeringError(
      `maxLayers ${maxLayers} leaves no room for store layers: the base image has ${baseLayers} layer(s) and the customisation layer takes 1; raise maxLayers to at least ${baseLayers + 2} or use a base image with fewer layers`,
    );
  }
  return budget;
}
