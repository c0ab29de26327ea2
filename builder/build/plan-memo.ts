import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planLayers, PLANNER_VERSION, type ClosureGraph, type LayerPlan, type PlanOptions } from '../../layering/index.js';
import { tempSibling } from '../fs/atomic-write.js';
import { closureDigest, listedSorted } from '../store/closure-digest.js';

/**
 * `planLayers`, kept in `<cacheDir>/plans/` by what it is a function of: the planner
 * (PLANNER_VERSION), the closure (closureDigest: every path, NAR size and references) and the
 * options. A build of an unchanged closure reads its plan instead of planning again (at 50,000
 * paths planning was a fifth of a warm build). The planner is pure, so the plan read is the plan
 * it would give; a file that is not whole (its sha256 is kept with it) or not of this form is
 * not used and is written again.
 *
 * Only for a closure listed in sorted order with sorted references, which is what the digest
 * describes: `auto` breaks ties of equal NAR size by the order the graph lists paths in, so a
 * graph in another order is planned every time.
 */

const MEMO_VERSION = 1;

const REASONS: ReadonlySet<string> = new Set(['popularity', 'merged-tail', 'auto', 'explicit', 'pinned', 'carried-over', 'new']);

export function memoPlanLayers(closure: ClosureGraph, options: PlanOptions, cacheDir: string | undefined): LayerPlan {
  if (!cacheDir || !listedSorted(closure)) return planLayers(closure, options);
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        MEMO_VERSION,
        PLANNER_VERSION,
        closureDigest(closure),
        options.strategy,
        options.maxStoreLayers,
        options.explicitLayers ?? null,
        options.pinned ?? null,
        options.exclude ?? null,
        options.previous ?? null,
      ]),
    )
    .digest('hex');
  const file = join(cacheDir, 'plans', `${key}.json`);
  const kept = readPlan(file, key, options.strategy);
  if (kept) return kept;
  const plan = planLayers(closure, options);
  writePlan(file, key, plan);
  return plan;
}

/** The file: a header line `{"v","key","sha256"}`, then the plan's JSON, whose sha256 the header gives. */
function readPlan(file: string, key: string, strategy: PlanOptions['strategy']): LayerPlan | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const nl = text.indexOf('\n');
    const head = JSON.parse(text.slice(0, nl)) as { v?: unknown; key?: unknown; sha256?: unknown };
    const body = text.slice(nl + 1);
    if (nl < 0 || head.v !== MEMO_VERSION || head.key !== key || head.sha256 !== createHash('sha256').update(body).digest('hex')) return undefined;
    const plan = JSON.parse(body) as LayerPlan;
    return wellFormed(plan, strategy) ? plan : undefined;
  } catch {
    return undefined;
  }
}

function writePlan(file: string, key: string, plan: LayerPlan): void {
  const body = JSON.stringify(plan);
  const temp = tempSibling(file);
  try {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(temp, `${JSON.stringify({ v: MEMO_VERSION, key, sha256: createHash('sha256').update(body).digest('hex') })}\n${body}`);
    renameSync(temp, file);
  } catch {
    // not kept: planned again next time
    try {
      unlinkSync(temp);
    } catch {
      // never made
    }
  }
}

function wellFormed(plan: LayerPlan, strategy: PlanOptions['strategy']): boolean {
  return (
    typeof plan === 'object' &&
    plan !== null &&
    plan.strategy === strategy &&
    Array.isArray(plan.layers) &&
    plan.layers.every(
      (l) => typeof l === 'object' && l !== null && Array.isArray(l.paths) && l.paths.every((p) => typeof p === 'string') && REASONS.has(l.reason) && Number.isSafeInteger(l.narSize),
    )
  );
}
