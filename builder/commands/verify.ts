import { countDifferences, formatDiff } from '../repro/format-diff.js';
import { resolve } from 'node:path';
import type { RegistryFlags } from '../registry.js';
import { lazyRegistryOpener } from '../repro/lazy-registry.js';
import { verifySpec, type VerifyResult } from '../repro/verify.js';
import { printJson, type StoreFlags } from './common.js';

export interface VerifyFlags extends StoreFlags, RegistryFlags {
  against?: string;
  json?: boolean;
  keep?: boolean;
}

/** `imgbuild verify <spec>`: exit 0 when the builds (or the build and --against) have one digest, 1 otherwise (an error: 2, see cli.ts). */
export async function runVerify(spec: string, flags: VerifyFlags): Promise<void> {
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // --creds, if given, are for the registry of --against.
  const registry = lazyRegistryOpener(flags, true);
  try {
    const result = await verifySpec({
      spec,
      against: flags.against,
      buildArgs: buildArgs(flags),
      keep: flags.keep,
      signal: abort.signal,
      open: { remote: registry.open },
      log: (line) => process.stderr.write(`${line}\n`),
    });
    if (flags.json) printJson(result);
    else process.stdout.write(formatVerify(result));
    process.exitCode = result.reproducible ? 0 : 1;
  } finally {
    await registry.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * The flags each build needs to see the same inputs: where the store is, and how to reach the
 * registry of a base image. (--creds and --chunk-size only concern pushes, which verify does not do.)
 */
export function buildArgs(flags: VerifyFlags): string[] {
  const args: string[] = [];
  if (flags.store) args.push('--store', resolve(flags.store));
  if (flags.storeDir) args.push('--store-dir', flags.storeDir);
  if (flags.nix) args.push('--nix');
  if (flags.closureFile) args.push('--closure-file', resolve(flags.closureFile));
  if (flags.verifyStore) args.push('--verify-store');
  for (const h of flags.insecureRegistry ?? []) args.push('--insecure-registry', h);
  for (const f of flags.caFile ?? []) args.push('--ca-file', resolve(f));
  return args;
}

export function formatVerify(r: VerifyResult): string {
  const lines: string[] = [];
  r.builds.forEach((b, i) => {
    lines.push(`build ${i + 1}: ${b.manifestDigest}  (umask ${b.umask}, TZ ${b.tz}, LANG ${b.locale}, ${b.cacheDir ? 'empty cache' : 'your cache'})`);
  });
  if (r.against) lines.push(`against: ${r.against.manifestDigest}  (${r.against.source})`);
  if (r.workDir) lines.push(`kept: ${r.workDir}`);
  if (r.reproducible) lines.push(`reproducible: ${r.builds[0]!.manifestDigest}`);
  else {
    const n = r.diff ? countDifferences(r.diff) : 0;
    lines.push(`NOT reproducible: ${n} difference(s)`);
    if (r.diff) lines.push(formatDiff(r.diff).trimEnd());
    if (!r.workDir) lines.push('hint: rerun with --keep to keep both images for `imgbuild diff` or `skopeo inspect`');
  }
  return `${lines.join('\n')}\n`;
}
