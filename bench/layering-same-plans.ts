/**
 * Plans from this build against plans from another build of imgbuild, on many seeded random
 * closures: every strategy, layer limits 1..120, exclude / pinned / explicit layers / previous
 * layers, equal names and sizes (ties), deep graphs (popularity counts past 2^53), shuffled input
 * order, and bad input (cycles, dangling references, duplicates) whose errors must match too.
 * Exits non-zero at the first difference. For refactoring the planner: keep the old build
 * (e.g. `cp -r dist dist-before`) and run
 *   node dist/bench/layering-same-plans.js dist-before [cases] [first-seed]
 * With `--pins <build> <file>`: writes the digests of that build's plans for the cases that
 * test/layering-pinned-plans.test.ts checks (made with the build before a change, they pin its plans).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeCase, outcome, type Planner } from './layering-cases.js';
import * as ours from '../layering/index.js';

async function plannerOf(dir: string): Promise<Planner> {
  return ((await import(pathToFileURL(resolve(dir, 'layering/index.js')).href)) as typeof ours).planLayers;
}

/** The cases test/layering-pinned-plans.test.ts checks: small enough to run in a few seconds. */
const PINNED = { cases: 150, maxPaths: 1500 };

if (process.argv[2] === '--pins') {
  const plan = await plannerOf(process.argv[3]!);
  const pins: Record<string, string> = {};
  for (let seed = 1; seed <= PINNED.cases; seed++) {
    pins[seed] = createHash('sha256').update(outcome(plan, makeCase(seed, plan, PINNED.maxPaths))).digest('hex').slice(0, 16);
  }
  writeFileSync(process.argv[4]!, `${JSON.stringify({ ...PINNED, pins }, null, 1)}\n`);
  process.exit(0);
}

const otherDir = process.argv[2];
if (!otherDir) {
  console.error('usage: node dist/bench/layering-same-plans.js <other dist dir> [cases] [first-seed]');
  process.exit(2);
}
const cases = Number(process.argv[3] ?? 1000);
const first = Number(process.argv[4] ?? 1);
const theirs = await plannerOf(otherDir);

let errors = 0;
let paths = 0;
const byStrategy = new Map<string, number>();
for (let seed = first; seed < first + cases; seed++) {
  const c = makeCase(seed, theirs);
  const a = outcome(ours.planLayers, c);
  const b = outcome(theirs, c);
  if (a.startsWith('throws')) errors++;
  paths += c.graph.paths.length;
  byStrategy.set(c.options.strategy, (byStrategy.get(c.options.strategy) ?? 0) + 1);
  if (a !== b) {
    console.error(`seed ${seed}: plans differ (${c.what}; options ${JSON.stringify({ ...c.options, previous: c.options.previous?.length })})`);
    console.error(`  this build: ${a.slice(0, 400)}`);
    console.error(`  ${otherDir}: ${b.slice(0, 400)}`);
    process.exit(1);
  }
}
console.log(`${cases} cases (seeds ${first}..${first + cases - 1}, ${paths} paths, ${[...byStrategy].map(([s, k]) => `${k} ${s}`).join(', ')}, ${errors} refused alike): identical plans`);
