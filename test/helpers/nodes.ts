import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from './cli.js';
import { cliPath, repoRoot } from './paths.js';

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

/** The manifest digest `node` builds for `spec` into `<work>/node<major>/<name>.oci`, with a cache of its own per Node. */
export async function buildDigestWith(node: string, major: string, version: string, name: string, spec: string, work: string): Promise<string> {
  const out = join(work, `node${major}`);
  // -o's directory must exist before the build (it is checked first); the cache under it did not make it in time.
  await mkdir(out, { recursive: true });
  const r = await runCommand(node, [cliPath, 'build', spec, '-o', join(out, `${name}.oci`), '--json'], {
    cwd: work,
    env: { ...process.env, IMGBUILD_CACHE_DIR: join(out, 'cache') },
  });
  assert.equal(r.code, 0, `build of ${name} under Node ${version}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()).digest;
}

/** Each example was built under every Node major, and to one digest. */
export function assertOneDigestEach(digests: Map<string, Map<string, string>>): void {
  for (const [name, byNode] of digests) {
    assert.equal(byNode.size, NODE_MAJORS.length);
    assert.equal(new Set(byNode.values()).size, 1, `${name}: digests differ: ${JSON.stringify(Object.fromEntries(byNode))}`);
  }
}
