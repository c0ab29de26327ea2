import type { BuildEvent } from '../build/context.js';

/** What a push reports (registry-client's push options, as events; see pushProgress in ../progress.ts). */
export type PushEvent =
  | { phase: 'push-start'; target: string; blobs: number; bytes: number; alreadyThere: boolean }
  | { phase: 'blob-progress'; digest: string; size: number; sent: number }
  | { phase: 'blob-done'; digest: string; size: number; how: 'uploaded' | 'mounted' | 'skipped' }
  | { phase: 'pushed'; reference: string; uploaded: number; mounted: number; skipped: number; bytesSent: number; alreadyThere: boolean };

/** The end of a build: the image (or index) made, its layers and their bytes (every platform's, for an index). */
export type BuiltEvent = { phase: 'built'; digest: string; layers: number; size: number; platforms?: number };

/** Everything the progress display shows. */
export type ProgressEvent = BuildEvent | PushEvent | BuiltEvent;
