import type { ImageReference, PushResult } from '../../registry-client/index.js';

/** What `build --push`, `push` and `index create` say of a push (documents.ts: `reference`, `tags`, `pushed`). */
export interface PushSummary {
  digest: string;
  /** The pushed image pinned by digest: `<registry>/<repository>@<digest>`. */
  reference: string;
  /** Every tag put: the reference's (`latest` when it names none, none when it names only a digest), then each --tag. */
  tags: string[];
  pushed: { uploaded: number; mounted: number; skipped: number; bytesSent: number; alreadyThere: boolean };
}

export function pushSummary(r: PushResult, ref: ImageReference, extraTags: readonly string[]): PushSummary {
  const first = ref.tag ? [ref.tag] : ref.digest ? [] : ['latest'];
  return {
    digest: r.digest,
    reference: r.reference,
    tags: [...new Set([...first, ...extraTags])],
    pushed: { uploaded: r.uploaded, mounted: r.mounted, skipped: r.skipped, bytesSent: r.bytesSent, alreadyThere: r.alreadyThere },
  };
}

/** The push for a person (stderr): where it went, under which tags, and what crossed the wire. */
export function formatPush(s: PushSummary): string[] {
  const p = s.pushed;
  return [
    `pushed ${s.reference}${s.tags.length ? ` (${s.tags.length === 1 ? 'tag' : 'tags'} ${s.tags.join(', ')})` : ''}`,
    `blobs: ${p.uploaded} uploaded (${p.bytesSent} bytes), ${p.mounted} mounted, ${p.skipped} already there${p.alreadyThere ? ' (the registry held the manifest)' : ''}`,
  ];
}
