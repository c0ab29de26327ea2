import type { ImageReference, PushResult } from '../../registry-client/index.js';

/** A referrer (an SBOM) carried along with a push from where the image was read (transports/registry.ts CarriedReferrer). */
export interface PushedReferrer {
  digest: string;
  subject: string;
  artifactType: string;
  via: 'api' | 'tag';
  indexUpdated: boolean;
}

/** What `build --push`, `push` and `index create` say of a push (documents.ts: `reference`, `tags`, `pushed`, `referrers`). */
export interface PushSummary {
  digest: string;
  /** The pushed image pinned by digest: `<registry>/<repository>@<digest>`. */
  reference: string;
  /** Every tag put: the reference's (`latest` when it names none, none when it names only a digest), then each --tag. */
  tags: string[];
  pushed: { uploaded: number; mounted: number; skipped: number; bytesSent: number; alreadyThere: boolean };
  /** The referrers carried along (an OCI layout's SBOMs); empty when there were none. */
  referrers: PushedReferrer[];
}

export function pushSummary(r: PushResult & { referrers?: readonly PushedReferrer[] }, ref: ImageReference, extraTags: readonly string[]): PushSummary {
  const first = ref.tag ? [ref.tag] : ref.digest ? [] : ['latest'];
  return {
    digest: r.digest,
    reference: r.reference,
    tags: [...new Set([...first, ...extraTags])],
    pushed: { uploaded: r.uploaded, mounted: r.mounted, skipped: r.skipped, bytesSent: r.bytesSent, alreadyThere: r.alreadyThere },
    referrers: (r.referrers ?? []).map(({ digest, subject, artifactType, via, indexUpdated }) => ({ digest, subject, artifactType, via, indexUpdated })),
  };
}

/** The referrers of a push document (`--json`): present only when some were carried along. */
export function referrersField(s: PushSummary): { referrers?: { digest: string; subject: string; artifactType: string; via: 'api' | 'tag' }[] } {
  return s.referrers.length ? { referrers: s.referrers.map(({ digest, subject, artifactType, via }) => ({ digest, subject, artifactType, via })) } : {};
}

/** The push for a person (stderr): where it went, under which tags, what crossed the wire, and the referrers carried along. */
export function formatPush(s: PushSummary): string[] {
  const p = s.pushed;
  return [
    `pushed ${s.reference}${s.tags.length ? ` (${s.tags.length === 1 ? 'tag' : 'tags'} ${s.tags.join(', ')})` : ''}`,
    `blobs: ${p.uploaded} uploaded (${p.bytesSent} bytes), ${p.mounted} mounted, ${p.skipped} already there${p.alreadyThere ? ' (the registry held the manifest)' : ''}`,
    ...(s.referrers.length ? [`attached ${s.referrers.length} referrer${s.referrers.length === 1 ? '' : 's'} from the source:`] : []),
    ...s.referrers.map((r) => `  ${r.digest} (${r.artifactType}) to ${r.subject} (${r.via === 'api' ? 'referrers API' : `referrers tag ${r.subject.replace(':', '-')}${r.indexUpdated ? '' : ', listed already'}`})`),
  ];
}
