import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCommand } from './cli.js';
import { repoRoot } from './paths.js';

/** The Node majors the cross-Node tests compare. */
export const NODE_MAJORS = ['20', '22', '24'];

/** `major → node binary`: this process for its own major, installed binaries (scripts/install-nodes.sh) for the others. */
export async function nodeBinaries(): Promise<Map<string, string>> {
  const own = process.versions.node.split('.')[0]!;
  const nodes = new Map<string, string>([[own, process.execPath]]);
  const others = NODE_MAJORS.filter((m) => m !== own);
  const r = await runCommand('bash', [join(repoRoot, 'scripts/install-nodes.sh'), ...others]);
  if (r.code !== 0) throw new Error(`scripts/install-nodes.sh ${others.join(' ')} failed (needs the npm registry):\n${r.stderr}`);
  for (const line of r.stdout.toString().trim().split('\n')) {
    const [major, bin] = line.split(' ');
    nodes.set(major!, bin!);
  }
  assert.deepEqual([...nodes.keys()].sort(), NODE_MAJORS);
  return nodes;
}
