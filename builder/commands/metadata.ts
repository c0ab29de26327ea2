import { Annotation } from '../../oci/media-types.js';
import { ImgbuildError } from '../errors.js';
import type { ResolvedSpec } from '../spec/types.js';

/** `--annotation k=v`, `--label k=v` (repeatable) and `--ci-metadata` / `--no-ci-metadata`. */
export interface MetadataFlags {
  annotation?: string[];
  label?: string[];
  ciMetadata?: boolean;
}

/**
 * The OCI keys a CI's environment gives (source, revision, version, url): from GitHub Actions
 * (`GITHUB_SERVER_URL`/`GITHUB_REPOSITORY`, `GITHUB_SHA`, `GITHUB_REF_NAME`) or GitLab CI
 * (`CI_PROJECT_URL`, `CI_COMMIT_SHA`, `CI_COMMIT_TAG` or `CI_COMMIT_REF_NAME`). Only what names
 * the commit, never a run id or a time: two builds of one commit get the same values.
 */
export function ciMetadata(env: Readonly<Record<string, string | undefined>>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  const set = (key: string, value: string | undefined) => {
    if (value) out[key] = value;
  };
  if (env.GITHUB_ACTIONS === 'true') {
    const repo = env.GITHUB_REPOSITORY ? `${(env.GITHUB_SERVER_URL ?? 'https://github.com').replace(/\/+$/, '')}/${env.GITHUB_REPOSITORY}` : undefined;
    set(Annotation.source, repo);
    set(Annotation.url, repo);
    set(Annotation.revision, env.GITHUB_SHA);
    set(Annotation.version, env.GITHUB_REF_NAME);
    return out;
  }
  if (env.GITLAB_CI === 'true') {
    set(Annotation.source, env.CI_PROJECT_URL);
    set(Annotation.url, env.CI_PROJECT_URL);
    set(Annotation.revision, env.CI_COMMIT_SHA);
    set(Annotation.version, env.CI_COMMIT_TAG || env.CI_COMMIT_REF_NAME);
    return out;
  }
  return undefined;
}

/** `k=v` flags as an object (a later key wins); a flag without `=` or with an empty key is a usage error. */
export function keyValues(values: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new ImgbuildError('usage', `${flag} ${JSON.stringify(v)} is not key=value`, `write ${flag} org.opencontainers.image.source=https://github.com/acme/app`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/**
 * The spec with the command line's metadata: `--label`s over the config's Labels, `--annotation`s
 * over the spec's annotations, and (with `--ci-metadata`, on by default when GITHUB_ACTIONS or
 * GITLAB_CI is "true") the CI's source/revision/version/url as both, under what the spec and the
 * flags set. A multi-platform spec gets them on every platform (and the index).
 */
export function withCliMetadata(spec: ResolvedSpec, flags: MetadataFlags, env: Readonly<Record<string, string | undefined>>): ResolvedSpec {
  const labels = keyValues(flags.label, '--label');
  const annotations = keyValues(flags.annotation, '--annotation');
  const wantCi = flags.ciMetadata ?? (env.GITHUB_ACTIONS === 'true' || env.GITLAB_CI === 'true');
  const ci = wantCi ? ciMetadata(env) : undefined;
  if (flags.ciMetadata === true && !ci) {
    throw new ImgbuildError('usage', '--ci-metadata: no CI environment (GITHUB_ACTIONS or GITLAB_CI is not "true")', 'set the keys yourself with --annotation and --label, e.g. --annotation org.opencontainers.image.revision=$(git rev-parse HEAD)');
  }
  const noFlags = Object.keys(labels).length === 0 && Object.keys(annotations).length === 0 && !ci;
  if (noFlags) return spec;
  const apply = (s: ResolvedSpec): ResolvedSpec => {
    const mergedLabels = { ...(ci ?? {}), ...(s.config.Labels ?? {}), ...labels };
    const hasAnnotations = s.annotations !== undefined || Object.keys(annotations).length > 0 || ci !== undefined;
    return {
      ...s,
      config: Object.keys(mergedLabels).length > 0 ? { ...s.config, Labels: mergedLabels } : s.config,
      ...(hasAnnotations ? { annotations: { ...(ci ?? {}), ...(s.annotations ?? {}), ...annotations } } : {}),
    };
  };
  const top = apply(spec);
  return spec.platforms ? { ...top, platforms: spec.platforms.map(apply) } : top;
}
