import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planLayers, PLANNER_VERSION, type ClosureGraph, type LayerPlan, type PlannedLayer, type PlanOptions } from '../../layering/index.js';
import { tempSibling } from '../fs/atomic-write.js';
import { closureDigest, listedSorted } from '../store/closure-digest.js';
import { rememberPathOrder } from '../cache/layer-key.js';

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

const MEMO_VERSION = 2;

const REASONS: ReadonlySet<string> = new Set(['popularity', 'merged-tail', 'auto', 'explicit', 'pinned', 'carried-over', 'new']);

/**
 * A plan as kept: each layer's paths as their indices in the closure's list. Smaller than the
 * paths (a tenth), and the plan read back names the closure's own strings, which later lookups
 * by path (content ids for the layers' keys) find at once.
 */
interface KeptPlan {
  strategy: LayerPlan['strategy'];
  layers: { nodes: number[]; reason: PlannedLayer['reason'] }[];
}

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
  const kept = readPlan(file, key, options.strategy, closure);
  if (kept) return kept;
  const plan = planLayers(closure, options);
  writePlan(file, key, plan, closure);
  return plan;
}

/** The file: a header line `{"v","key","sha256"}`, then the KeptPlan's JSON, whose sha256 the header gives. */
function readPlan(file: string, key: string, strategy: PlanOptions['strategy'], closure: ClosureGraph): LayerPlan | undefined {
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
    return fromKept(JSON.parse(body) as KeptPlan, strategy, closure);
  } catch {
    return undefined;
  }
}

/** The plan a KeptPlan stands for in this closure, or undefined when it is not of that form (a node out of range, or in two layers). */
function fromKept(kept: KeptPlan, strategy: PlanOptions['strategy'], closure: ClosureGraph): LayerPlan | undefined {
  if (typeof kept !== 'object' || kept === null || kept.strategy !== strategy || !Array.isArray(kept.layers)) return undefined;
  const infos = closure.paths;
  const taken = new Uint8Array(infos.length);
  const layers: PlannedLayer[] = [];
  for (const l of kept.layers) {
    if (typeof l !== 'object' || l === null || !Array.isArray(l.nodes) || !REASONS.has(l.reason)) return undefined;
    const paths: string[] = new Array<string>(l.nodes.length);
    let narSize = 0;
    for (let k = 0; k < l.nodes.length; k++) {
      const v = l.nodes[k]!;
      if (!Number.isInteger(v) || v < 0 || v >= infos.length || taken[v]) return undefined;
      taken[v] = 1;
      paths[k] = infos[v]!.path;
      narSize += infos[v]!.narSize;
    }
    layers.push({ paths, reason: l.reason, narSize });
    // The closure lists its paths sorted: the layer's nodes in ascending order are its paths sorted (for its cache key).
    const ascending = Int32Array.from(l.nodes).sort();
    const sorted: string[] = new Array<string>(ascending.length);
    for (let k = 0; k < ascending.length; k++) sorted[k] = infos[ascending[k]!]!.path;
    rememberPathOrder(paths, sorted);
  }
  return { strategy, layers };
}

function writePlan(file: string, key: string, plan: LayerPlan, closure: ClosureGraph): void {
  const index = new Map<string, number>();
  closure.paths.forEach((p, i) => index.set(p.path, i));
  const kept: KeptPlan = { strategy: plan.strategy, layers: plan.layers.map((l) => ({ nodes: l.paths.map((p) => index.get(p)!), reason: l.reason })) };
  if (kept.layers.some((l) => l.nodes.includes(undefined as unknown as number))) return; // not this closure's paths: nothing kept
  const body = JSON.stringify(kept);
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
