import { refsOf, usersOf, type IndexedGraph } from './graph.js';
import { compareStrings, popularityNameKey } from './path-order.js';

/**
 * nixpkgs' popularity_contest counts, for every path, how often it appears in the tree you get by
 * expanding references from the roots (paths nothing references), where each appearance under a
 * subtree counts once more per level it is merged up. Unrolled, that count is
 *
 *   popularity(p) = Σ W(a) over a ∈ {p} ∪ ancestors(p),   W(a) = number of root-to-a reference paths,
 *
 * which we compute without expanding the tree. Counts grow exponentially with depth, hence BigInt
 * (with an exact float fast path while every count stays below 2^53).
 */
export function popularityScores(graph: IndexedGraph): bigint[] {
  return scoreValues(graph).map((s) => BigInt(s));
}

/** Exact counts as numbers while they all fit in 2^53, else as BigInt (much slower). */
function scoreValues(graph: IndexedGraph): number[] | bigint[] {
  const order = graph.order;
  const fast = scoresOfNumbers(graph, order);
  // Every sum is of positive integers, so when the totals fit in 2^53 every partial sum was exact.
  if (fast.every((s) => s <= Number.MAX_SAFE_INTEGER)) return Array.from(fast);
  return scoresWith<bigint>(graph, order, 0n, (a, b) => a + b);
}

/**
 * `scoresWith` for numbers, the same sums in typed arrays (the planner's cost at 200,000 paths),
 * and one shortcut: a node one of whose users has too many ancestors to walk has too many
 * itself (its ancestors include the user's), so it goes to the bitset pass without a walk that
 * would give up. Which method sums a node does not change its score: both are exact.
 */
function scoresOfNumbers(graph: IndexedGraph, order: Int32Array): Float64Array {
  const n = graph.paths.length;
  const uStart = graph.userStart;
  const uList = graph.userList;
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = order[i]!;
    const a = uStart[v]!;
    const b = uStart[v + 1]!;
    if (a === b) w[v] = 1;
    else {
      let s = 0;
      for (let k = a; k < b; k++) s += w[uList[k]!]!;
      w[v] = s;
    }
  }

  const score = new Float64Array(n);
  const stamp = new Int32Array(n).fill(-1);
  const stack = new Int32Array(n);
  const tooMany = new Uint8Array(n);
  const heavy: number[] = [];
  const walkLimit = Math.max(256, n >>> 6);
  for (let i = 0; i < n; i++) {
    const p = order[i]!;
    const a = uStart[p]!;
    const b = uStart[p + 1]!;
    if (b - a === 1) {
      tooMany[p] = tooMany[uList[a]!]!;
      continue;
    }
    let inherited = false;
    for (let k = a; k < b; k++) if (tooMany[uList[k]!] === 1) inherited = true;
    if (inherited) {
      tooMany[p] = 1;
      heavy.push(p);
      continue;
    }
    let s = 0;
    let visited = 0;
    let top = 0;
    stamp[p] = p;
    stack[top++] = p;
    while (top > 0 && visited <= walkLimit) {
      const x = stack[--top]!;
      visited++;
      s += w[x]!;
      const xb = uStart[x + 1]!;
      for (let k = uStart[x]!; k < xb; k++) {
        const u = uList[k]!;
        if (stamp[u] !== p) {
          stamp[u] = p;
          stack[top++] = u;
        }
      }
    }
    if (visited > walkLimit) {
      tooMany[p] = 1;
      heavy.push(p);
    } else score[p] = s;
  }

  // As in scoresWith, with 128 of the heavy nodes per pass over the graph (four 32-bit masks a
  // node, half the passes of two), dependencies first; a pass starts at the deepest of its nodes
  // (nothing after it in `order` can reach them).
  const rStart = graph.refStart;
  const rList = graph.refList;
  const WORDS = 4;
  const masks = new Int32Array(n * WORDS);
  const bitOf = new Int32Array(n).fill(-1);
  const posOf = new Int32Array(n);
  for (let i = 0; i < n; i++) posOf[order[i]!] = i;
  const table = new Float64Array(WORDS * 4 * 256);
  for (let c = 0; c < heavy.length; c += 32 * WORDS) {
    const chunk = heavy.slice(c, c + 32 * WORDS);
    let deepest = 0;
    chunk.forEach((t, b) => {
      bitOf[t] = b;
      deepest = Math.max(deepest, posOf[t]!);
    });
    table.fill(0);
    masks.fill(0);
    for (let i = deepest; i >= 0; i--) {
      const v = order[i]!;
      const b = bitOf[v]!;
      let m0 = b >= 0 && b < 32 ? 1 << b : 0;
      let m1 = b >= 32 && b < 64 ? 1 << (b - 32) : 0;
      let m2 = b >= 64 && b < 96 ? 1 << (b - 64) : 0;
      let m3 = b >= 96 ? 1 << (b - 96) : 0;
      const re = rStart[v + 1]!;
      for (let k = rStart[v]!; k < re; k++) {
        const r = rList[k]! * WORDS;
        m0 |= masks[r]!;
        m1 |= masks[r + 1]!;
        m2 |= masks[r + 2]!;
        m3 |= masks[r + 3]!;
      }
      if ((m0 | m1 | m2 | m3) === 0) continue;
      const at = v * WORDS;
      masks[at] = m0;
      masks[at + 1] = m1;
      masks[at + 2] = m2;
      masks[at + 3] = m3;
      const wv = w[v]!;
      for (let word = 0; word < WORDS; word++) {
        const m = word === 0 ? m0 : word === 1 ? m1 : word === 2 ? m2 : m3;
        if (m === 0) continue;
        for (let k = 0; k < 4; k++) {
          const byte = (m >>> (8 * k)) & 255;
          if (byte !== 0) {
            const at2 = (word * 4 + k) * 256 + byte;
            table[at2] = table[at2]! + wv;
          }
        }
      }
    }
    chunk.forEach((t, b) => {
      const k = b >>> 3;
      const bit = 1 << (b & 7);
      let s = 0;
      for (let byte = 1; byte < 256; byte++) if (byte & bit) s += table[k * 256 + byte]!;
      score[t] = s;
    });
    for (const t of chunk) bitOf[t] = -1;
  }

  for (let i = 0; i < n; i++) {
    const p = order[i]!;
    if (uStart[p + 1]! - uStart[p]! === 1) score[p] = w[p]! + score[uList[uStart[p]!]!]!;
  }
  return score;
}


function scoresWith<T extends number | bigint>(graph: IndexedGraph, order: Int32Array, zero: T, add: (a: T, b: T) => T): T[] {
  const n = graph.paths.length;
  const one = (typeof zero === 'bigint' ? 1n : 1) as T;
  // W: roots count 1, every other node the sum over its users (users come first in `order`).
  const w: T[] = new Array<T>(n).fill(zero);
  for (const v of order) {
    const users = usersOf(graph, v);
    if (users.length === 0) w[v] = one;
    else {
      let s = zero;
      for (const u of users) s = add(s, w[u]!);
      w[v] = s;
    }
  }

  // Nodes with several users (and roots): walk their ancestors, unless there are too many.
  const score: T[] = new Array<T>(n).fill(zero);
  const stamp = new Int32Array(n).fill(-1);
  const stack: number[] = [];
  const heavy: number[] = [];
  // A walk costs about its length times the users per node; the bitset pass about n/6 per node.
  const walkLimit = Math.max(256, n >>> 6);
  for (const p of order) {
    if (usersOf(graph, p).length === 1) continue;
    let s = zero;
    let visited = 0;
    stamp[p] = p;
    stack.push(p);
    while (stack.length > 0 && visited <= walkLimit) {
      const a = stack.pop()!;
      visited++;
      s = add(s, w[a]!);
      for (const u of usersOf(graph, a)) if (stamp[u] !== p) (stamp[u] = p), stack.push(u);
    }
    if (visited > walkLimit) {
      stack.length = 0;
      heavy.push(p);
    } else score[p] = s;
  }

  // Nodes with many ancestors, 64 at a time: one pass over the graph, dependencies first, finds
  // for every node which of the 64 it reaches (two 32-bit masks). Each byte of the masks indexes a
  // table of sums, so a node costs at most eight additions however many of the 64 it reaches.
  const lo = new Int32Array(n);
  const hi = new Int32Array(n);
  const bitOf = new Int32Array(n).fill(-1);
  for (let c = 0; c < heavy.length; c += 64) {
    const chunk = heavy.slice(c, c + 64);
    chunk.forEach((t, b) => (bitOf[t] = b));
    const table: T[] = new Array<T>(8 * 256).fill(zero);
    for (let i = n - 1; i >= 0; i--) {
      const v = order[i]!;
      const b = bitOf[v]!;
      let mlo = b >= 0 && b < 32 ? 1 << b : 0;
      let mhi = b >= 32 ? 1 << (b - 32) : 0;
      for (const r of refsOf(graph, v)) (mlo |= lo[r]!), (mhi |= hi[r]!);
      lo[v] = mlo;
      hi[v] = mhi;
      if ((mlo | mhi) === 0) continue;
      for (let k = 0; k < 8; k++) {
        const byte = ((k < 4 ? mlo : mhi) >>> (8 * (k & 3))) & 255;
        if (byte !== 0) table[k * 256 + byte] = add(table[k * 256 + byte]!, w[v]!);
      }
    }
    chunk.forEach((t, b) => {
      const k = b >>> 3;
      const bit = 1 << (b & 7);
      let s = zero;
      for (let byte = 1; byte < 256; byte++) if (byte & bit) s = add(s, table[k * 256 + byte]!);
      score[t] = s;
    });
    for (const t of chunk) bitOf[t] = -1;
  }

  // The ancestors of a path with one user are that user and its ancestors: reuse its score.
  for (const p of order) {
    const users = usersOf(graph, p);
    if (users.length === 1) score[p] = add(w[p]!, score[users[0]!]!);
  }
  return score;
}

/** Nodes by popularity, most popular first; ties by popularity_contest's name key. */
export function popularityOrder(graph: IndexedGraph, scores: readonly (number | bigint)[] = scoreValues(graph)): number[] {
  const keys = graph.paths.map(popularityNameKey);
  return graph.paths
    .map((_, i) => i)
    .sort((a, b) => {
      const sa = scores[a]!;
      const sb = scores[b]!;
      return sa > sb ? -1 : sa < sb ? 1 : compareStrings(keys[a]!, keys[b]!);
    });
}

/**
 * nixpkgs' `limit_layers(limit)`: the first limit-1 items get a layer each, the rest share the
 * last layer in order. Never produces an empty layer (upstream crashes on that case instead).
 */
export function limitLayers<T>(items: readonly T[], limit: number): T[][] {
  const head = items.slice(0, Math.max(0, limit - 1)).map((x) => [x]);
  const tail = items.slice(Math.max(0, limit - 1));
  return tail.length > 0 ? [...head, tail] : head;
}

/** The `popularity` strategy: popularity_contest then limit_layers, as store path lists. */
export function popularityLayers(graph: IndexedGraph, limit: number): string[][] {
  return limitLayers(popularityOrder(graph), limit).map((layer) => layer.map((i) => graph.paths[i]!));
}
