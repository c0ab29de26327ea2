import { refsOf, usersOf, type IndexedGraph } from './graph.js';
import { NameKeys } from './name-sort.js';

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
  const values: ArrayLike<number | bigint> = scoreValues(graph);
  return Array.from(values, (s) => BigInt(s));
}

/** Exact counts as numbers while they all fit in 2^53, else as BigInt (much slower). */
function scoreValues(graph: IndexedGraph): Float64Array | bigint[] {
  const fast = scoresOfNumbers(graph);
  // Every sum is of positive integers, so when the totals fit in 2^53 every partial sum was exact.
  if (fast.every((s) => s <= Number.MAX_SAFE_INTEGER)) return fast;
  return scoresWith<bigint>(graph, graph.order, 0n, (a, b) => a + b);
}

/**
 * A topological order (users first) in which the nodes of one application's closure sit close
 * together: the reverse of a depth-first post-order from the roots. Numbering the nodes in this
 * order makes every pass below run through memory mostly in sequence (the planner's cost at
 * 200,000 paths is memory traffic); the order does not change any score, as every sum is exact.
 */
function depthFirstOrder(graph: IndexedGraph): Int32Array {
  const n = graph.paths.length;
  const { refStart, refList, userStart } = graph;
  const order = new Int32Array(n);
  let filled = n;
  const done = new Uint8Array(n);
  const stack = new Int32Array(n);
  const next = new Int32Array(n); // per stack entry: the next reference to follow
  for (let root = 0; root < n; root++) {
    if (userStart[root + 1] !== userStart[root] || done[root]) continue;
    let top = 0;
    stack[0] = root;
    next[0] = refStart[root]!;
    done[root] = 1;
    while (top >= 0) {
      const v = stack[top]!;
      const k = next[top]!;
      if (k < refStart[v + 1]!) {
        next[top] = k + 1;
        const r = refList[k]!;
        if (!done[r]) {
          done[r] = 1;
          stack[++top] = r;
          next[top] = refStart[r]!;
        }
      } else {
        order[--filled] = v;
        top--;
      }
    }
  }
  return order;
}

/** Compressed rows renumbered: row i is old node `order[i]`'s row, entries mapped through `posOf`. */
function renumberRows(order: Int32Array, posOf: Int32Array, start: Int32Array, list: Int32Array): { start: Int32Array; list: Int32Array } {
  const n = order.length;
  const nStart = new Int32Array(n + 1);
  const nList = new Int32Array(list.length);
  let e = 0;
  for (let i = 0; i < n; i++) {
    const old = order[i]!;
    const b = start[old + 1]!;
    for (let k = start[old]!; k < b; k++) nList[e++] = posOf[list[k]!]!;
    nStart[i + 1] = e;
  }
  return { start: nStart, list: nList };
}

/**
 * `scoresWith` for numbers, the same sums in typed arrays (the planner's cost at 200,000 paths),
 * and one shortcut: a node one of whose users has too many ancestors to walk has too many
 * itself (its ancestors include the user's), so it goes to the bitset pass without a walk that
 * would give up. Which method sums a node does not change its score: both are exact. Nodes are
 * renumbered in `depthFirstOrder` (node i's users come before i, its references after).
 */
function scoresOfNumbers(graph: IndexedGraph): Float64Array {
  const n = graph.paths.length;
  const order = depthFirstOrder(graph);
  const posOf = new Int32Array(n);
  for (let i = 0; i < n; i++) posOf[order[i]!] = i;
  const { start: uStart, list: uList } = renumberRows(order, posOf, graph.userStart, graph.userList);

  const w = new Float64Array(n);
  for (let v = 0; v < n; v++) {
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
  for (let p = 0; p < n; p++) {
    const a = uStart[p]!;
    const b = uStart[p + 1]!;
    if (b - a === 1) {
      tooMany[p] = tooMany[uList[a]!]!;
      continue;
    }
    if (a === b) {
      score[p] = 1;
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

  // As in scoresWith, with 256 of the heavy nodes per pass over the graph (eight 32-bit masks a
  // node, in locals), dependencies first; a pass starts at the deepest of its nodes (nothing after
  // it can reach them). Each byte of a node's masks indexes a table of sums, so a node costs at
  // most 32 additions however many of the pass's nodes it reaches.
  if (heavy.length > 0) {
    const { start: rStart, list: rList } = renumberRows(order, posOf, graph.refStart, graph.refList);
    const masks = new Int32Array(n * 8);
    const reaches = new Uint8Array(n); // this pass: the node's masks are set (else they are all 0)
    const table = new Float64Array(8 * 4 * 256);
    const bitOf = new Int32Array(n).fill(-1);
    for (let c = 0; c < heavy.length; c += 256) {
      const chunk = heavy.slice(c, c + 256);
      chunk.forEach((t, b) => (bitOf[t] = b));
      const deepest = chunk[chunk.length - 1]!; // heavy is ascending
      table.fill(0);
      reaches.fill(0, 0, deepest + 1);
      for (let v = deepest; v >= 0; v--) {
        let m0 = 0;
        let m1 = 0;
        let m2 = 0;
        let m3 = 0;
        let m4 = 0;
        let m5 = 0;
        let m6 = 0;
        let m7 = 0;
        const re = rStart[v + 1]!;
        for (let k = rStart[v]!; k < re; k++) {
          const r = rList[k]!;
          if (r > deepest || reaches[r] === 0) continue;
          const at = r << 3;
          m0 |= masks[at + 0]!;
          m1 |= masks[at + 1]!;
          m2 |= masks[at + 2]!;
          m3 |= masks[at + 3]!;
          m4 |= masks[at + 4]!;
          m5 |= masks[at + 5]!;
          m6 |= masks[at + 6]!;
          m7 |= masks[at + 7]!;
        }
        const b = bitOf[v]!;
        if (b >= 0) {
          const word = b >>> 5;
          const bit = 1 << (b & 31);
          if (word === 0) m0 |= bit;
          else if (word === 1) m1 |= bit;
          else if (word === 2) m2 |= bit;
          else if (word === 3) m3 |= bit;
          else if (word === 4) m4 |= bit;
          else if (word === 5) m5 |= bit;
          else if (word === 6) m6 |= bit;
          else if (word === 7) m7 |= bit;
        }
        if ((m0 | m1 | m2 | m3 | m4 | m5 | m6 | m7) === 0) continue;
        reaches[v] = 1;
        const at = v << 3;
        masks[at + 0] = m0;
        masks[at + 1] = m1;
        masks[at + 2] = m2;
        masks[at + 3] = m3;
        masks[at + 4] = m4;
        masks[at + 5] = m5;
        masks[at + 6] = m6;
        masks[at + 7] = m7;
        // Add w to the table row of each byte of each mask word (row 0 of a byte collects sums nobody reads).
        const wv = w[v]!;
        if (m0 !== 0) {
          const t0 = 0 | (m0 & 255);
          const t1 = 256 | ((m0 >>> 8) & 255);
          const t2 = 512 | ((m0 >>> 16) & 255);
          const t3 = 768 | (m0 >>> 24);
          table[t0] = table[t0]! + wv;
          table[t1] = table[t1]! + wv;
          table[t2] = table[t2]! + wv;
          table[t3] = table[t3]! + wv;
        }
        if (m1 !== 0) {
          const t0 = 1024 | (m1 & 255);
          const t1 = 1280 | ((m1 >>> 8) & 255);
          const t2 = 1536 | ((m1 >>> 16) & 255);
          const t3 = 1792 | (m1 >>> 24);
          table[t0] = table[t0]! + wv;
          table[t1] = table[t1]! + wv;
          table[t2] = table[t2]! + wv;
          table[t3] = table[t3]! + wv;
        }
        if (m2 !== 0) {
          const t0 = 2048 | (m2 & 255);
          const t1 = 2304 | ((m2 >>> 8) & 255);
          const t2 = 2560 | ((m2 >>> 16) & 255);
          const t3 = 2816 | (m2 >>> 24);
          table[t0] = table[t0]! + wv;
          table[t1] = table[t1]! + wv;
          table[t2] = table[t2]! + wv;
          table[t3] = table[t3]! + wv;
        }
        if (m3 !== 0) {
          const t0 = 3072 | (m3 & 255);
          const t1 = 3328 | ((m3 >>> 8) & 255);
          const t2 = 3584 | ((m3 >>> 16) & 255);
          const t3 = 3840 | (m3 >>> 24);
          table[t0] = table[t0]! + wv;
          table[t1] = table[t1]! + wv;
          table[t2] = table[t2]! + wv;
          table[t3] = table[t3]! + wv;
        }
        if (m4 !== 0) {
          const t0 = 4096 | (m4 & 255);
          const t1 = 4352 | ((m4 >>> 8) & 255);
          const t2 = 4608 | ((m4 >>> 16) & 255);
          const t3 = 4864 | (m4 >>> 24);
          table[t0] = table[t0]! + wv;
          table[t1] = table[t1]! + wv;
          table[t2] = table[t2]! + wv;
          table[t3] = table[t3]! + wv;
        }
        if (m5 !== 0) {
          const t0 = 5120 | (m5 & 255);
          const t1 = 5376 | ((m5 >>> 8) & 255);
          const t2 = 5632 | ((m5 >>> 16) & 255);
          const t3 = 5888 | (m5 >>> 24);
          table[t0] = table[t0]! + wv;
          table[t1] = table[t1]! + wv;
          table[t2] = table[t2]! + wv;
          table[t3] = table[t3]! + wv;
        }
        if (m6 !== 0) {
          const t0 = 6144 | (m6 & 255);
          const t1 = 6400 | ((m6 >>> 8) & 255);
          const t2 = 6656 | ((m6 >>> 16) & 255);
          const t3 = 6912 | (m6 >>> 24);
          table[t0] = table[t0]! + wv;
          table[t1] = table[t1]! + wv;
          table[t2] = table[t2]! + wv;
          table[t3] = table[t3]! + wv;
        }
        if (m7 !== 0) {
          const t0 = 7168 | (m7 & 255);
          const t1 = 7424 | ((m7 >>> 8) & 255);
          const t2 = 7680 | ((m7 >>> 16) & 255);
          const t3 = 7936 | (m7 >>> 24);
          table[t0] = table[t0]! + wv;
          table[t1] = table[t1]! + wv;
          table[t2] = table[t2]! + wv;
          table[t3] = table[t3]! + wv;
        }
      }
      chunk.forEach((t, b) => {
        const k = b >>> 3;
        const bit = 1 << (b & 7);
        let s = 0;
        for (let byte = 1; byte < 256; byte++) if (byte & bit) s += table[(k << 8) | byte]!;
        score[t] = s;
      });
      for (const t of chunk) bitOf[t] = -1;
    }
  }

  const out = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    if (uStart[p + 1]! - uStart[p]! === 1) score[p] = w[p]! + score[uList[uStart[p]!]!]!;
    out[order[p]!] = score[p]!;
  }
  return out;
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
export function popularityOrder(graph: IndexedGraph, scores: ArrayLike<number> | readonly bigint[] = scoreValues(graph)): number[] {
  const n = graph.paths.length;
  // Counting sort by score (most nodes share their score with others), then each run of equal
  // scores by name key; the same order as one sort by (score, key), with far fewer string reads.
  const { rank, distinct } = scoreRanks(scores);
  const start = new Int32Array(distinct + 1);
  for (let v = 0; v < n; v++) start[rank[v]! + 1]!++;
  for (let r = 0; r < distinct; r++) start[r + 1] = start[r + 1]! + start[r]!;
  const order = new Int32Array(n);
  const fill = start.slice(0, distinct);
  for (let v = 0; v < n; v++) order[fill[rank[v]!]!++] = v;
  let keys: NameKeys | null = null;
  for (let r = 0; r < distinct; r++) {
    if (start[r + 1]! - start[r]! < 2) continue;
    keys ??= new NameKeys(graph.paths, 'popularity');
    keys.sort(order, start[r]!, start[r + 1]!);
  }
  return Array.from(order);
}

/** Dense ranks of the scores, 0 for the highest. */
function scoreRanks(scores: ArrayLike<number> | readonly bigint[]): { rank: Int32Array; distinct: number } {
  const n = scores.length;
  const rank = new Int32Array(n);
  if (n === 0) return { rank, distinct: 0 };
  if (typeof scores[0] === 'bigint') {
    const big = scores as readonly bigint[];
    const byScore = Array.from({ length: n }, (_, i) => i).sort((a, b) => (big[a]! > big[b]! ? -1 : big[a]! < big[b]! ? 1 : 0));
    let distinct = 0;
    byScore.forEach((v, i) => (rank[v] = i > 0 && big[byScore[i - 1]!] === big[v] ? distinct - 1 : distinct++));
    return { rank, distinct };
  }
  const nums = scores as ArrayLike<number>;
  const sorted = Float64Array.from(nums).sort();
  let distinct = 0;
  for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[distinct++] = sorted[i]!;
  for (let v = 0; v < n; v++) {
    const x = nums[v]!;
    let lo = 0;
    let hi = distinct - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    rank[v] = distinct - 1 - lo;
  }
  return { rank, distinct };
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
