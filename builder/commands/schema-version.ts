/**
 * The `schemaVersion` of every `--json` document (documents.ts). Bumped when a document changes
 * incompatibly (a key renamed or removed, a meaning changed); an added key does not bump it.
 * A module of its own so that reporting an error does not load zod.
 */
export const SCHEMA_VERSION = 1 as const;
