import { markClosure, type IndexedGraph } from './graph.js';
import { nameRanks } from './name-sort.js';

/**
 * The `stable` layout: layers chosen so that bumping a dependency re-uploads few bytes beyond the
 * bytes that changed.
 *
 * Cost model. Bumping a path X changes X and everything that depends on it. Every layer with a
 * changed path is uploaded again, whole, unchanged paths included. Layer L breaks exactly when X
 * is in its closure C(L), so over a bump of a uniformly random path the expected re-upload is
 * proportional to
 *
 *   J = Σ_L size(L) · |C(L)|.
 *
 * A layer per path is optimal (every re-uploaded byte changed); with fewer layers than paths we
 * merge greedily the pair of layers A, B that raises J the least,
 *
 *   Δ(A, B) = size(A)·|C(B) \ C(A)| + size(B)·|C(A) \ C(B)|,
 *
 * then move single units between layers while that lowers J (a local search the greedy pass
 * cannot do). Δ keeps apart what breaks at different times (a leaf application and the data only
 * it uses: bumping the application must not re-upload the data) and puts together small paths that
 * break with the same bumps. We tried weighting each bump by 1/(bytes it changes), i.e. minimising
 * the mean ratio instead of the bytes; it protected tiny bumps at the expense of the large ones
 * (zlib, openssl) that dominate what is really uploaded (bench/layering-bumps.ts).
 *
 * The greedy pass compares all pairs, so above a few hundred paths (`exactLimit`) a cheaper step first groups
 * small paths under a path that depends on them (`hostSmallLayers`). Ancestry is that of the whole
 * graph, so paths laid out elsewhere (carried over, pinned) do not hide who depends on whom.
 * Deterministic and independent of the order of paths and references (ties go by store path name).
 */
export function stableLayout(graph: IndexedGraph, nodes: readonly number[], room: number): number[][] {
  const rank = nameRanks(graph.paths, 'auto-nul'); // = autoKeyRanks(graph.paths), without building key strings
  const byName = (a: number, b: number) => rank[a]! - rank[b]!;
  let units = [...new Set(nodes)].sort(byName).map((v) => [v]);
  if (units.length <= room) return units;
  const limit = exactLimit(graph, units);
  if (units.length > limit) units = hostSmallLayers(graph, units, Math.max(room, limit), byName);
  if (units.length > room) units = mergeAndRefine(graph, units, room);
  return units.map((m) => m.sort(byName)).sort((a, b) => byName(a[0]!, b[0]!));
}

/**
 * How many units the pairwise step takes on: it costs about units² × closure-bitset words, which
 * we keep near 5·10⁷ word operations (at most 800 units; a few hundred for closures of thousands).
 */
function exactLimit(graph: IndexedGraph, units: readonly number[][]): number {
  const mark = markClosure(graph, units.map((u) => u[0]!));
  let universe = 0;
  for (let v = 0; v < mark.length; v++) universe += mark[v]!;
  const words = Math.max(1, Math.ceil(universe / 32));
  return Math.min(800, Math.floor(Math.sqrt(5e7 / words)));
}

type ByName = (a: number, b: number) => number;

/** Closure bitsets of `units` over the union of their closures (bit order: first reached). */
function closureBitsets(graph: IndexedGraph, units: readonly number[][]): { bits: Uint32Array[]; words: number } {
  const n = graph.paths.length;
  const bitOf = new Int32Array(n).fill(-1);
  let next = 0;
  const stack: number[] = [];
  // Number the universe by a walk in unit order: any numbering gives the same counts.
  for (const u of units) {
    for (const v of u) if (bitOf[v] === -1) (bitOf[v] = next++), stack.push(v);
    while (stack.length > 0) {
      const v = stack.pop()!;
      for (let k = graph.refStart[v]!; k < graph.refStart[v + 1]!; k++) {
        const r = graph.refList[k]!;
        if (bitOf[r] === -1) (bitOf[r] = next++), stack.push(r);
      }
    }
  }
  const words = (next + 31) >>> 5;
  const seen = new Int32Array(n).fill(-1);
  const bits = units.map((u, i) => {
    const b = new Uint32Array(words);
    for (const v of u) if (seen[v] !== i) (seen[v] = i), stack.push(v);
    while (stack.length > 0) {
      const v = stack.pop()!;
      b[bitOf[v]! >>> 5]! |= 1 << (bitOf[v]! & 31);
      for (let k = graph.refStart[v]!; k < graph.refStart[v + 1]!; k++) {
        const r = graph.refList[k]!;
        if (seen[r] !== i) (seen[r] = i), stack.push(r);
      }
    }
    return b;
  });
  return { bits, words };
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** |A|, |A ∩ B| or |A \ B| of bitsets. */
function count(a: Uint32Array, b: Uint32Array | null = null, andNot = false): number {
  let c = 0;
  for (let w = 0; w < a.length; w++) c += popcount(b ? (andNot ? a[w]! & ~b[w]! : a[w]! & b[w]!) : a[w]!);
  return c;
}

function mergeAndRefine(graph: IndexedGraph, units: number[][], room: number): number[][] {
  const { bits: unitBits, words } = closureBitsets(graph, units);
  const unitSize = units.map((u) => u.reduce((s, v) => s + graph.narSize[v]!, 0));
  const k = units.length;

  // Greedy merging. Layers live in unit slots; `cost` holds Δ for every live pair and `best`
  // each slot's cheapest partner (ties: lower slot, i.e. name order).
  const bitsOf = unitBits.map((b) => Uint32Array.from(b));
  const size = [...unitSize];
  const card = bitsOf.map((b) => count(b));
  const members = units.map((_, i) => [i]);
  const delta = (a: number, b: number) => {
    const shared = count(bitsOf[a]!, bitsOf[b]!);
    return size[a]! * (card[b]! - shared) + size[b]! * (card[a]! - shared);
  };
  const cost = new Float64Array(k * k);
  for (let a = 0; a < k; a++) for (let b = a + 1; b < k; b++) cost[a * k + b] = cost[b * k + a] = delta(a, b);
  const alive = new Uint8Array(k).fill(1);
  const best = new Int32Array(k).fill(-1);
  const rescan = (a: number) => {
    let m = -1;
    for (let b = 0; b < k; b++) if (b !== a && alive[b] && (m < 0 || cost[a * k + b]! < cost[a * k + m]!)) m = b;
    best[a] = m;
  };
  for (let a = 0; a < k; a++) rescan(a);
  for (let left = k; left > room; left--) {
    let a = -1;
    for (let i = 0; i < k; i++) if (alive[i] && (a < 0 || cost[i * k + best[i]!]! < cost[a * k + best[a]!]!)) a = i;
    const b = best[a]!;
    const [keep, drop] = a < b ? [a, b] : [b, a];
    for (let w = 0; w < words; w++) bitsOf[keep]![w]! |= bitsOf[drop]![w]!;
    size[keep] = size[keep]! + size[drop]!;
    card[keep] = count(bitsOf[keep]!);
    members[keep]!.push(...members[drop]!);
    alive[drop] = 0;
    for (let i = 0; i < k; i++) if (alive[i] && i !== keep) cost[i * k + keep] = cost[keep * k + i] = delta(keep, i);
    rescan(keep);
    for (let i = 0; i < k; i++) {
      if (!alive[i] || i === keep) continue;
      const c = cost[i * k + keep]!;
      const cb = cost[i * k + best[i]!]!;
      if (best[i] === keep || best[i] === drop) rescan(i);
      else if (c < cb || (c === cb && keep < best[i]!)) best[i] = keep;
    }
  }
  const layers = members.filter((_, i) => alive[i]);
  refine(layers, unitBits, unitSize, words);
  return layers.filter((m) => m.length > 0).map((m) => m.flatMap((u) => units[u]!));
}

/**
 * Local search: move one unit at a time (in name order) to the layer where J drops the most,
 * until no move helps or MAX_REFINE_PASSES passes are done. J is an integer-valued sum of
 * products, so comparisons are exact and the result deterministic. Edits `layers` in place.
 */
function refine(layers: number[][], unitBits: Uint32Array[], unitSize: number[], words: number): void {
  const layerOf = new Int32Array(unitBits.length);
  layers.forEach((m, L) => m.forEach((u) => (layerOf[u] = L)));
  const union = (m: number[]) => {
    const b = new Uint32Array(words);
    for (const u of m) for (let w = 0; w < words; w++) b[w]! |= unitBits[u]![w]!;
    return b;
  };
  const lb = layers.map(union);
  const S = layers.map((m) => m.reduce((s, u) => s + unitSize[u]!, 0));
  const C = lb.map((b) => count(b));
  for (let pass = 0; pass < MAX_REFINE_PASSES; pass++) {
    let moved = false;
    for (let u = 0; u < unitBits.length; u++) {
      const A = layerOf[u]!;
      if (layers[A]!.length < 2) continue;
      const rest = layers[A]!.filter((x) => x !== u);
      const restBits = union(rest);
      const restC = count(restBits);
      const su = unitSize[u]!;
      const leave = (S[A]! - su) * restC - S[A]! * C[A]!;
      let bestGain = 0;
      let bestB = -1;
      for (let B = 0; B < layers.length; B++) {
        if (B === A) continue;
        const d = leave + (S[B]! + su) * (C[B]! + count(unitBits[u]!, lb[B]!, true)) - S[B]! * C[B]!;
        if (d < bestGain) (bestGain = d), (bestB = B);
      }
      if (bestB < 0) continue;
      layers[A] = rest;
      lb[A] = restBits;
      S[A] = S[A]! - su;
      C[A] = restC;
      layers[bestB]!.push(u);
      for (let w = 0; w < words; w++) lb[bestB]![w]! |= unitBits[u]![w]!;
      S[bestB] = S[bestB]! + su;
      C[bestB] = count(lb[bestB]!);
      layerOf[u] = bestB;
      moved = true;
    }
    if (!moved) break;
  }
}

const MAX_REFINE_PASSES = 8;

/**
 * Slack levels for `hostSmallLayers`: a layer's top path may take in paths from its own closure
 * worth up to this fraction of its own NAR size; Infinity: any size.
 */
const SLACK_LEVELS = [0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, Infinity];

/**
 * The cheap step for large layouts: the smallest layer joins the layer of a "host", a path that
 * depends on every path of it and tops its own layer, until `target` layers are left. A bump that
 * changes a hosted path changes its host too, so with hosted paths worth at most ε of the host a
 * bump re-uploads at most (1+ε)× what changed; ε grows from 1% only as far as needed. The host is
 * the nearest (fewest reference hops), then the one with most slack left, then by name. Layers no
 * host can take (roots with what is below them) are merged, smallest first, as a last resort.
 */
function hostSmallLayers(graph: IndexedGraph, units: number[][], target: number, byName: ByName): number[][] {
  const n = graph.paths.length;
  const inSet = new Uint8Array(n);
  for (const u of units) for (const v of u) inSet[v] = 1;

  // The largest path above each node that could host it (-1: none).
  const maxAbove = new Float64Array(n);
  for (const v of graph.order) {
    let m = -1;
    for (let k = graph.userStart[v]!; k < graph.userStart[v + 1]!; k++) {
      const u = graph.userList[k]!;
      m = Math.max(m, maxAbove[u]!, inSet[u] ? graph.narSize[u]! : -1);
    }
    maxAbove[v] = m;
  }

  const hostOf = new Int32Array(n).fill(-1); // -1: top of its own layer
  const members = new Map<number, number[]>(units.map((u) => [u[0]!, u]));
  const layerSize = new Float64Array(n);
  for (const u of units) layerSize[u[0]!] = graph.narSize[u[0]!]!;
  let count = units.length;

  const seen = new Int32Array(n).fill(-1);
  let search = 0;
  const findHost = (p: number, eps: number): number => {
    const need = layerSize[p]!;
    if (maxAbove[p]! < 0 || eps * maxAbove[p]! < need) return -1;
    search++;
    let level = [p];
    seen[p] = search;
    while (level.length > 0) {
      const next: number[] = [];
      let best = -1;
      let bestSlack = -1;
      for (const v of level) {
        for (let k = graph.userStart[v]!; k < graph.userStart[v + 1]!; k++) {
          const u = graph.userList[k]!;
          if (seen[u] === search) continue;
          seen[u] = search;
          next.push(u);
          if (!inSet[u] || hostOf[u] !== -1) continue;
          const slack = eps === Infinity ? Infinity : eps * graph.narSize[u]! - (layerSize[u]! - graph.narSize[u]!);
          if (slack < need) continue;
          if (slack > bestSlack || (slack === bestSlack && byName(u, best) < 0)) (best = u), (bestSlack = slack);
        }
      }
      if (best >= 0) return best;
      level = next;
    }
    return -1;
  };

  for (const eps of SLACK_LEVELS) {
    if (count <= target) break;
    const order = [...members.keys()].sort((a, b) => layerSize[a]! - layerSize[b]! || byName(a, b));
    for (const p of order) {
      if (count <= target) break;
      if (hostOf[p] !== -1) continue;
      const host = findHost(p, eps);
      if (host < 0) continue;
      const moved = members.get(p)!;
      for (const v of moved) hostOf[v] = host;
      members.get(host)!.push(...moved);
      members.delete(p);
      layerSize[host] = layerSize[host]! + layerSize[p]!;
      count--;
    }
  }
  let layers = [...members.entries()].sort((a, b) => layerSize[b[0]]! - layerSize[a[0]]! || byName(a[0], b[0])).map(([, m]) => m);
  if (layers.length > target) layers = [...layers.slice(0, target - 1), layers.slice(target - 1).flat()];
  return layers;
}
