import { diffImages } from '../repro/diff.js';
import { countDifferences, formatDiff } from '../repro/format-diff.js';
import { openImage } from '../transports/open.js';
import { hostPlatform } from './context.js';
import { printJson } from './common.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';

export interface DiffFlags extends Pick<RegistryFlags, 'insecureRegistry' | 'caFile'> {
  json?: boolean;
  maxFiles?: string;
}

/** `imgbuild diff <a> <b>`: exit 0 when the images are the same, 1 when they differ (an error: 2, see cli.ts). */
export async function runDiff(a: string, b: string, flags: DiffFlags): Promise<void> {
  const client = lazyClient(flags);
  try {
    const open = { registry: client.get, platform: hostPlatform() };
    const [ia, ib] = await Promise.all([openImage(a, open), openImage(b, open)]);
    const diff = await diffImages(ia, ib);
    if (flags.json) printJson(diff);
    else process.stdout.write(formatDiff(diff, flags.maxFiles ? { maxFiles: Number(flags.maxFiles) } : {}));
    process.exitCode = countDifferences(diff) === 0 ? 0 : 1;
  } finally {
    await client.close();
  }
}
