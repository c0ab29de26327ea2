export { defineImage, ImageSpecSchema, COMPRESSORS, LAYERING_STRATEGIES, MAX_LAYERS_LIMIT, imagePathProblem, storePathProblem } from './schema.js';
export type * from './types.js';
export { loadSpec } from './load.js';
export { resolveSpec, DEFAULT_DATE_MS, DEFAULT_MAX_LAYERS, DEFAULT_STORE_DIR, BUILTIN_USERS, BUILTIN_GROUPS, type SpecOverrides, type ResolveOptions } from './resolve.js';
export { SpecValidationError, type SpecIssue } from './errors.js';
export { SPEC_EXTENSIONS } from './parse-file.js';
export { nameProblem, tagProblem } from './reference.js';
export { hostArchitecture } from './platform.js';
export { imageSpecJsonSchema } from './json-schema.js';
