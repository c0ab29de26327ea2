import type { Digest } from '../../oci/digest.js';
import { formatPlan, planLayers, storeLayerBudget, type ClosureGraph, type LayerPlan, type PlannedLayer, type PlanOptions } from '../../layering/index.js';
import { memoPlanLayers } from './plan-memo.js';
import { ImgbuildError } from '../errors.js';
import type { Image } from '../model/image.js';
import type { ResolvedSpec } from '../spec/types.js';
import { closureDigest } from '../store/closure-digest.js';

/** The version of the plan document; a plan of another version is refused. */
export const PLAN_VERSION = 1;

/**
 * What a build will make, before any layer is written: the base image's layers (reused as they
 * are), the store layers with their paths, and the customisation layer. `imgbuild plan --json`
 * prints it; `imgbuild build --plan` writes it. It names the closure it was made for (a digest
 * of every path, its size and references), so a plan is never applied to other contents.
 */
export interface ImagePlan {
  imgbuildPlan: typeof PLAN_VERSION;
  closure: { digest: Digest; paths: number; narSize: number };
  /** The base image: `digest` is its manifest's. */
  base?: { source: string; digest: Digest; layers: { digest: Digest; diffId: Digest; size: number }[] };
  strategy: LayerPlan['strategy'];
  /** Store layers, bottom first. */
  layers: PlannedLayer[];
  /** Every layer the image will have: base + store + the customisation layer. */
  totalLayers: number;
}

export { closureDigest } from '../store/closure-digest.js';

/**
 * The one planning function: `plan` prints it, `build` follows it. With `cacheDir`, the store
 * layers' plan is kept there and read back for the same closure and options (plan-memo.ts).
 */
export function planImage(spec: ResolvedSpec, closure: ClosureGraph, base: Image | undefined, previous?: string[][], cacheDir?: string): ImagePlan {
  const baseLayers = base?.layers.length ?? 0;
  const plan = (options: PlanOptions) => (cacheDir ? memoPlanLayers(closure, options, cacheDir) : planLayers(closure, options));
  const layering: LayerPlan = spec.includeStorePaths
    ? plan({
        strategy: spec.layering.strategy,
        maxStoreLayers: storeLayerBudget(spec.maxLayers, baseLayers),
        explicitLayers: spec.layering.layers,
        pinned: spec.layering.pinned,
        previous,
      })
    : { strategy: spec.layering.strategy, layers: [] };
  return {
    imgbuildPlan: PLAN_VERSION,
    closure: { digest: closureDigest(closure), paths: closure.paths.length, narSize: closure.paths.reduce((s, p) => s + p.narSize, 0) },
    ...(base ? { base: { source: base.source, digest: base.descriptor.digest, layers: base.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size })) } } : {}),
    strategy: layering.strategy,
    layers: layering.layers,
    totalLayers: baseLayers + layering.layers.length + 1,
  };
}

/**
 * A plan read from a file (`build --plan`), checked against this build's closure and base: a plan
 * made for other contents or another base image is refused, not followed.
 */
export function checkPlan(value: unknown, file: string, closure: ClosureGraph, base: Image | undefined, maxLayers: number): ImagePlan {
  const hint = `make the plan again with \`imgbuild plan <spec> --json > ${file}\` for these contents`;
  if (typeof value !== 'object' || value === null || (value as { imgbuildPlan?: unknown }).imgbuildPlan !== PLAN_VERSION) {
    throw new ImgbuildError('plan', `${file}: not an imgbuild plan of version ${PLAN_VERSION} (no "imgbuildPlan": ${PLAN_VERSION})`, hint);
  }
  const plan = value as ImagePlan;
  const digest = closureDigest(closure);
  if (plan.closure?.digest !== digest) {
    throw new ImgbuildError('plan', `${file}: the plan was made for another closure (${plan.closure?.digest ?? 'none'}, ${plan.closure?.paths ?? '?'} paths); this build's is ${digest} (${closure.paths.length} paths)`, hint);
  }
  // `manifestDigest`: what plans said before schemaVersion 1 of the --json documents.
  const planBase = plan.base ? (plan.base.digest ?? (plan.base as { manifestDigest?: Digest }).manifestDigest ?? null) : null;
  if (planBase !== (base?.descriptor.digest ?? null)) {
    throw new ImgbuildError('plan', `${file}: the plan was made for base image ${planBase ?? '(none)'}; this build's is ${base?.descriptor.digest ?? '(none)'}`, hint);
  }
  // The plan's layers must hold exactly the closure's paths, each once.
  const inClosure = new Set(closure.paths.map((p) => p.path));
  const seen = new Set<string>();
  if (!Array.isArray(plan.layers)) throw new ImgbuildError('plan', `${file}: "layers" is not a list`, hint);
  for (const [i, l] of plan.layers.entries()) {
    if (!Array.isArray(l?.paths) || typeof l.reason !== 'string') throw new ImgbuildError('plan', `${file}: layers[${i}] has no paths or reason`, hint);
    for (const p of l.paths) {
      if (!inClosure.has(p)) throw new ImgbuildError('plan', `${file}: layers[${i}] holds ${p}, which is not in the closure`, hint);
      if (seen.has(p)) throw new ImgbuildError('plan', `${file}: ${p} is in two layers`, hint);
      seen.add(p);
    }
  }
  if (plan.layers.length > 0 && seen.size !== inClosure.size) {
    const missing = [...inClosure].find((p) => !seen.has(p));
    throw new ImgbuildError('plan', `${file}: ${missing} of the closure is in no layer of the plan`, hint);
  }
  const total = (base?.layers.length ?? 0) + plan.layers.length + 1;
  if (total > maxLayers) throw new ImgbuildError('plan', `${file}: the plan makes ${total} layers, more than maxLayers ${maxLayers}`, hint);
  return plan;
}

/** The plan as text for `imgbuild plan`: base layers, the store layers' table, the customisation layer. */
export function formatImagePlan(plan: ImagePlan): string {
  const lines: string[] = [];
  if (plan.base) lines.push(`base: ${plan.base.source} (${plan.base.digest}), ${plan.base.layers.length} layers`);
  lines.push(formatPlan({ strategy: plan.strategy, layers: plan.layers }).trimEnd());
  lines.push(`customisation layer on top; ${plan.totalLayers} layers in all`);
  return `${lines.join('\n')}\n`;
}
