import { countArtifactDifferences, diffArtifacts, formatArtifactDiff } from '../repro/diff-artifacts.js';
import { openArtifact } from '../transports/open.js';
import { printJson } from './print.js';
import type { DiffDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';

export interface DiffFlags extends Pick<RegistryFlags, 'insecureRegistry' | 'caFile'> {
  json?: boolean;
  maxFiles?: string;
}

/**
 * `imgbuild diff <a> <b>`: exit 0 when the images are the same, 1 when they differ (an error: 2,
 * see cli.ts). Two multi-platform images are compared platform by platform.
 */
export async function runDiff(a: string, b: string, flags: DiffFlags): Promise<void> {
  const client = lazyClient(flags);
  try {
    const open = { registry: client.get };
    const [ia, ib] = await Promise.all([openArtifact(a, open), openArtifact(b, open)]);
    const diff = await diffArtifacts(ia, ib);
    if (flags.json) {
      const doc: DiffDocument = { schemaVersion: SCHEMA_VERSION, ...diff };
      printJson(doc);
    }
    else process.stdout.write(formatArtifactDiff(diff, flags.maxFiles ? { maxFiles: Number(flags.maxFiles) } : {}));
    process.exitCode = countArtifactDifferences(diff) === 0 ? 0 : 1;
  } finally {
    await client.close();
  }
}
