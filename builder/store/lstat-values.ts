/**
 * An lstat's mode, size, mtimeMs, ctimeMs and inode number (stat-list.ts's PER_NODE values)
 * without a `Stats` object, on Node 20 only.
 *
 * Why: a warm build of 50,000 tiny store paths checks its closure record with 150,000 lstats
 * (stat-list.ts). Node 20's `lstatSync` builds a `Stats` with four `Date`s each time (Node 22
 * made them lazy): ~40% of each call's cost there, ~0.1 s of that build's wall time. The values
 * come from the same internal binding `lstatSync` calls (`binding.lstat(path, bigint, undefined,
 * throwIfNoEntry)`, a Float64Array laid out as uv_stat_t), and are computed with the same
 * expression Node 20 uses (`sec * 1e3 + nsec / 1e6`), so they are the same numbers to the bit.
 *
 * Node 20 is end-of-life: its internals no longer change, which is what makes this safe. It is
 * used only when the binding answers, on a probe, exactly what `lstatSync` answers, never under
 * the permission model (whose checks live in `lstatSync`) and never where reaching the binding
 * would print a deprecation warning. Everywhere else: undefined, and
 * callers use `lstatSync`.
 */

/** Puts mode, size, mtimeMs, ctimeMs and ino of `path`'s lstat at `values[at..at+4]`; false when nothing is there; throws other errors. */
export type LstatValues = (path: string, values: Float64Array, at: number) => boolean;

interface FsBinding {
  lstat(path: string, bigint: boolean, req: undefined, throwIfNoEntry: boolean): Float64Array | undefined;
  fstat(fd: number, bigint: boolean, req: undefined, shouldNotThrow: boolean): Float64Array | undefined;
}

let chosen: LstatValues | null | undefined;

/** The Node 20 fast path, or undefined (use `lstatSync`). `probe`: an existing path to compare on (first call only). */
export function fastLstatValues(probe: string, lstat: (path: string) => StatValues): LstatValues | undefined {
  if (chosen === undefined) {
    const c = choose(probe, lstat);
    if (c === 'undecided') return undefined;
    chosen = c;
  }
  return chosen ?? undefined;
}

/** null: never here; 'undecided': the probe could not be compared (gone), ask again with the next. */
function choose(probe: string, lstat: (path: string) => StatValues): LstatValues | null | 'undecided' {
  const binding = nodeFsBinding();
  if (!binding) return null;
  const values: LstatValues = (path, out, at) => {
    // A NUL would end the C string early: lstatSync refuses such a path, so do we (as absent).
    if (path.includes('\0')) return false;
    const a = binding.lstat(path, false, undefined, false);
    if (a === undefined) return false;
    putBindingValues(a, out, at);
    return true;
  };
  const got = new Float64Array(5);
  let st: StatValues;
  try {
    if (!values(probe, got, 0)) return 'undecided';
    st = lstat(probe);
  } catch {
    return 'undecided';
  }
  // The probe changing between the two calls would only cost the fast path for this process.
  return sameValues(got, st) ? values : null;
}

/** The five values Stats has, as the public calls give them. */
type StatValues = { mode: number; size: number; mtimeMs: number; ctimeMs: number; ino: number };

/**
 * mode, size, mtimeMs, ctimeMs and ino from the binding's uv_stat_t array (dev, mode, nlink, uid,
 * gid, rdev, blksize, ino, size, blocks, then the times), computed as Node 20's Stats does.
 */
function putBindingValues(a: Float64Array, out: Float64Array, at: number): void {
  out[at] = a[1]!;
  out[at + 1] = a[8]!;
  out[at + 2] = a[12]! * 1e3 + a[13]! / 1e6;
  out[at + 3] = a[14]! * 1e3 + a[15]! / 1e6;
  out[at + 4] = a[7]!;
}

/** Whether the fast path's values are the public call's, to the bit. */
function sameValues(got: Float64Array, st: StatValues): boolean {
  return got[0] === st.mode && got[1] === st.size && got[2] === st.mtimeMs && got[3] === st.ctimeMs && got[4] === st.ino;
}

/** Node 20's internal fs binding where it may be used (see above), else null. */
function nodeFsBinding(): FsBinding | null {
  if (!process.versions.node.startsWith('20.')) return null;
  if ((process as { permission?: unknown }).permission !== undefined) return null;
  try {
    // process.binding is deprecated (DEP0111): documentation-only in Node 20, unless
    // --pending-deprecation (or NODE_PENDING_DEPRECATION=1) wraps it in a function that warns,
    // and with --throw-deprecation throws: then it is not called at all.
    const get = (process as unknown as { binding?: (name: string) => unknown }).binding;
    if (typeof get !== 'function' || get.name !== 'binding') return null;
    const b = get.call(process, 'fs') as Partial<FsBinding>;
    if (typeof b?.lstat !== 'function' || typeof b.fstat !== 'function') return null;
    return b as FsBinding;
  } catch {
    return null;
  }
}

/**
 * Puts mode, size, mtimeMs, ctimeMs and ino of the open file `fd` at `values[at..at+4]`, and says
 * whether it is a regular file; throws what `fstatSync` throws.
 */
export type FstatValues = (fd: number, values: Float64Array, at: number) => boolean;

let chosenFstat: FstatValues | null | undefined;

/**
 * `fastLstatValues` for `fstat` (a split scan's reader fstats every small file it opens): the
 * Node 20 fast path when the binding answers, on the probe `fd`, exactly what `fstatSync`
 * answers; else undefined (use `fstatSync`).
 */
export function fastFstatValues(probe: number, fstat: (fd: number) => StatValues): FstatValues | undefined {
  if (chosenFstat === undefined) {
    const binding = nodeFsBinding();
    chosenFstat = null;
    if (binding) {
      const values: FstatValues = (fd, out, at) => {
        const a = binding.fstat(fd, false, undefined, false)!;
        putBindingValues(a, out, at);
        return (a[1]! & S_IFMT) === S_IFREG;
      };
      try {
        const got = new Float64Array(5);
        values(probe, got, 0);
        if (sameValues(got, fstat(probe))) chosenFstat = values;
      } catch {
        chosenFstat = null;
      }
    }
  }
  return chosenFstat ?? undefined;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
