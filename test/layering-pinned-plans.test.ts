import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers/paths.js';
import { makeCase, outcome } from '../bench/layering-cases.js';
import { planLayers, PLANNER_VERSION } from '../layering/index.js';

/**
 * Plans pinned by digest: seeded random cases (bench/layering-cases.ts: every strategy and
 * option, ties, deep graphs, bad input) whose plans the planner gave before it was made faster
 * (issue 19; written by `node dist/bench/layering-same-plans.js --pins dist-before <file>`).
 * A change that alters any plan, or any error, fails here with the seed to look at.
 */
const pinned = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/layering-pinned-plans.json'), 'utf8')) as {
  cases: number;
  maxPaths: number;
  pins: Record<string, string>;
};

test(`${pinned.cases} seeded planning cases give the pinned plans`, () => {
  assert.equal(Object.keys(pinned.pins).length, pinned.cases);
  const differ: string[] = [];
  for (let seed = 1; seed <= pinned.cases; seed++) {
    const digest = createHash('sha256').update(outcome(planLayers, makeCase(seed, planLayers, pinned.maxPaths))).digest('hex').slice(0, 16);
    if (digest !== pinned.pins[seed]) differ.push(String(seed));
  }
  assert.deepEqual(differ, [], 'seeds whose plan differs (compare builds with bench/layering-same-plans.ts)');
});

test('PLANNER_VERSION names the pinned plans (a plan kept by an earlier build is used only under the same name)', () => {
  const fixture = createHash('sha256').update(readFileSync(join(repoRoot, 'test/fixtures/layering-pinned-plans.json'))).digest('hex');
  assert.equal(PLANNER_VERSION.endsWith(`/pins-${fixture.slice(0, 16)}`), true, `pins changed: give PLANNER_VERSION a new name ending /pins-${fixture.slice(0, 16)}`);
});
