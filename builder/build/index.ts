export { buildImage, specStore, specClosure, type Build, type BuildOptions } from './build-image.js';
export type { BuildContext, BuildEvent } from './context.js';
export { planImage, checkPlan, closureDigest, formatImagePlan, PLAN_VERSION, type ImagePlan } from './plan.js';
export { assembleImage, derivedTag, layerReason, type AssembleInput, type AssembledLayer, type ImageConfigInput } from './assemble.js';
export { mergeConfig, specBase } from './base.js';
