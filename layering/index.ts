export * from './types.js';
export { planLayers, LayeringError } from './plan.js';
