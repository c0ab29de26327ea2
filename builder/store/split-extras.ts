import { readFileSync } from 'node:fs';
import { StoreError } from '../errors.js';
import { bytesAt, FLAG_ALL_INLINE, getF64, HANDOVER_KIND, HEAD, INLINE_FILE_MAX, nameHash, putF64, SHARED_MIN, u16, utf8, type HandoverDraft } from './handover.js';
import { growableBuffer } from './split-read.js';
import { FingerprintText } from './tree-fingerprint.js';

/**
 * What a split scan (split-scan.ts) is asked for once its tree is read, made node by node as the
 * nodes come (NAR order, while the helper thread still reads), so that no tree of objects need be
 * kept and walked again: the tree's stat fingerprint (tree-fingerprint.ts), its hand-over record
 * (handover.ts), the paths with special mode bits (content-id.ts). Made after the reads, each was
 * a walk of the whole tree (200,000 nodes) on one thread with the other core idle (~0.3 s of a
 * 3 s build), and the tree itself (~40 MB of objects) was most of the scan thread's GC.
 *
 * The same bytes as `treeFingerprint(tree)`, `draftHandover(baseName, null, tree, maxBytes)` with
 * `fillHandover`, and `contentId`'s walk: test/store-split-extras.test.ts.
 */
export class SplitExtras {
  private readonly text: FingerprintText | undefined;
  private readonly record: HandoverWriter | undefined;
  /** The files and directories with setuid, setgid or sticky bits, in NAR order: their path below the store path (the root's empty) and bits. */
  readonly specials: Array<{ path: Buffer; bits: number }> = [];

  constructor(options: { fingerprint: boolean; handover?: { baseName: string; maxBytes: number } }) {
    this.text = options.fingerprint ? new FingerprintText() : undefined;
    if (options.handover) this.record = new HandoverWriter(options.handover.baseName, options.handover.maxBytes);
  }

  /**
   * A directory of `entries` entries (the root: no name); its entries follow, then `close`.
   * `below`: its path below the store path (asked for only when it has special bits).
   */
  directory(name: Buffer | undefined, latin1Name: string, entries: number, special: number, below: () => Buffer): void {
    if (special) this.specials.push({ path: Buffer.from(below()), bits: special });
    const text = this.text;
    if (text) {
      if (name) text.latin1Name(latin1Name);
      text.directory(entries);
    }
    this.record?.directory(name, special);
  }

  /** The end of the innermost open directory. */
  close(): void {
    this.text?.closeDirectory();
    this.record?.close();
  }

  /** A regular file at `path`; `bytes`: its bytes as the threads read them (undefined: they did not, and the record reads them at the end). */
  file(name: Buffer, latin1Name: string, executable: boolean, size: number, mtimeMs: number, ctimeMs: number, ino: number, special: number, bytes: Uint8Array | undefined, path: Buffer, below: () => Buffer): void {
    if (special) this.specials.push({ path: Buffer.from(below()), bits: special });
    if (this.text) {
      this.text.latin1Name(latin1Name);
      this.text.regular(executable, size, mtimeMs, ctimeMs, ino);
    }
    this.record?.file(name, special | (executable ? 0o100 : 0), size, bytes, path);
  }

  symlink(name: Buffer, latin1Name: string, target: Buffer): void {
    if (this.text) {
      this.text.latin1Name(latin1Name);
      this.text.symlink(target);
    }
    this.record?.symlink(name, target);
  }

  /** The tree's stat fingerprint (once every node was given), if asked for. */
  fingerprint(): string | undefined {
    return this.text?.digest();
  }

  /** The latest ctime of the files the fingerprint holds (racy.ts), -Infinity for none. */
  latestCtimeMs(): number {
    return this.text?.latestCtimeMs ?? -Infinity;
  }

  /**
   * The tree's hand-over record (once every node was given), its inlined files' bytes in it;
   * undefined when the tree has none (a name or target that is not UTF-8, a listing over the cap),
   * as draftHandover gives. Throws StoreError when a file read here changed size.
   */
  handover(): HandoverDraft | undefined {
    return this.record?.finish();
  }
}

/** Bytes a record's buffer starts at (it grows in place, up to the record's cap). */
const FIRST_BYTES = 1024 * 1024;

/**
 * handover.ts's record (its `write`), node by node. It is written with every file inlined until a
 * file cannot be (over INLINE_FILE_MAX, or past the cap): the record then becomes the listing
 * alone, the bytes so far dropped in place, as draftHandover decides from the whole tree.
 */
class HandoverWriter {
  private readonly memory: SharedArrayBuffer;
  private out: Buffer;
  private at = HEAD + 4;
  private inline = true;
  /** Set when the tree has no record (draftHandover gives undefined). */
  private none = false;
  /** Inlined files the threads did not read (their areas were full): read at the end, into their place. */
  private readonly unread: Array<{ path: Buffer; at: number; size: number }> = [];

  constructor(
    private readonly baseName: string,
    private readonly maxBytes: number,
  ) {
    this.memory = growableBuffer(Math.max(0, Math.min(maxBytes, FIRST_BYTES)), Math.max(0, maxBytes));
    this.out = Buffer.from(this.memory, 0, this.memory.byteLength);
    if (this.at > maxBytes) this.none = true;
  }

  /** Room for `n` more bytes; false past the record's cap. */
  private room(n: number): boolean {
    const need = this.at + n;
    if (need <= this.out.length) return true;
    if (need > this.maxBytes) return false;
    (this.memory as unknown as { grow(bytes: number): void }).grow(Math.min(this.maxBytes, Math.max(need, 2 * this.out.length)));
    // A fixed-length view (split-read.ts fixedView: one that follows growth is slow to index).
    this.out = Buffer.from(this.memory, 0, this.memory.byteLength);
    return true;
  }

  /** kind, u16 name length, the name, with room for `more` bytes after them; false when the record cannot hold them (then it is none). */
  private head(kind: number, name: Buffer | undefined, more: number): boolean {
    if (this.none) return false;
    const length = name?.length ?? 0;
    if (length > 0xffff || (name && !utf8(name))) return this.give();
    if (!this.room(3 + length + more)) {
      // Past the cap: the listing alone may still fit (the files' bytes so far dropped), else no record.
      if (!this.inline || !this.toListing() || !this.room(3 + length + more)) return this.give();
    }
    this.out[this.at] = kind;
    u16(this.out, this.at + 1, length);
    if (name) bytesAt(this.out, this.at + 3, name);
    this.at += 3 + length;
    return true;
  }

  private give(): false {
    this.none = true;
    return false;
  }

  private u16(value: number): void {
    u16(this.out, this.at, value);
    this.at += 2;
  }

  directory(name: Buffer | undefined, special: number): void {
    if (this.head(HANDOVER_KIND.DIR, name, 2)) this.u16(special);
  }

  close(): void {
    if (this.none) return;
    // An END byte takes the place of nothing the listing drops: past the cap either way.
    if (!this.room(1) && !(this.inline && this.toListing() && this.room(1))) return void this.give();
    this.out[this.at++] = HANDOVER_KIND.END;
  }

  file(name: Buffer, mode: number, size: number, bytes: Uint8Array | undefined, path: Buffer): void {
    if (this.none) return;
    // A file over the inline size, or the files' bytes past the cap: no file is inlined
    // (draftHandover's rule), the listing alone.
    if (this.inline && (size > INLINE_FILE_MAX || !this.room(3 + name.length + 10 + size))) this.toListing();
    if (!this.head(this.inline ? HANDOVER_KIND.INLINE : HANDOVER_KIND.FILE, name, 10 + (this.inline ? size : 0))) return;
    this.u16(mode);
    putF64(this.out, this.at, size);
    this.at += 8;
    if (!this.inline) return;
    if (bytes === undefined || bytes.length !== size) this.unread.push({ path: Buffer.from(path), at: this.at, size });
    else bytesAt(this.out, this.at, bytes);
    this.at += size;
  }

  symlink(name: Buffer, target: Buffer): void {
    if (this.none) return;
    if (target.length > 0xffff || !utf8(target)) return void this.give();
    if (!this.head(HANDOVER_KIND.SYMLINK, name, 2 + target.length)) return;
    this.u16(target.length);
    bytesAt(this.out, this.at, target);
    this.at += target.length;
  }

  /**
   * The record so far without its files' bytes (INLINE nodes become FILE nodes), in place: the
   * listing is never longer than the record. True when that leaves room (the caller asks again).
   */
  private toListing(): boolean {
    this.inline = false;
    this.unread.length = 0;
    const out = this.out;
    let r = HEAD + 4;
    let w = r;
    while (r < this.at) {
      const kind = out[r]!;
      if (kind === HANDOVER_KIND.END) {
        out[w++] = kind;
        r++;
        continue;
      }
      const nameEnd = r + 3 + (out[r + 1]! | (out[r + 2]! << 8));
      let keep = nameEnd - r;
      let skip = 0;
      if (kind === HANDOVER_KIND.DIR) keep += 2;
      else if (kind === HANDOVER_KIND.SYMLINK) keep += 2 + (out[nameEnd]! | (out[nameEnd + 1]! << 8));
      else {
        keep += 10;
        if (kind === HANDOVER_KIND.INLINE) skip = getF64(out, nameEnd + 2);
      }
      out.copyWithin(w, r, r + keep);
      if (kind === HANDOVER_KIND.INLINE) out[w] = HANDOVER_KIND.FILE;
      w += keep;
      r += keep + skip;
    }
    this.at = w;
    return true;
  }

  finish(): HandoverDraft | undefined {
    if (this.none) return undefined;
    const out = this.out;
    for (const { path, at, size } of this.unread) {
      // As fillHandover reads a file the threads did not.
      const bytes = readFileSync(path);
      if (bytes.length !== size) throw new StoreError(`${path.toString()} changed while it was read (expected ${size} bytes, read ${bytes.length}); store paths must not change`, [path.toString()]);
      out.set(bytes, at);
    }
    const length = this.at;
    out.writeUInt32LE(length, 0);
    out.writeUInt32LE(0, 4);
    out[7] = this.inline ? FLAG_ALL_INLINE : 0;
    out.writeUInt32LE(nameHash(this.baseName), HEAD);
    // As draftHandover: a small record in memory of its own, a big one where it is (shared: a worker hands it over as it is).
    const bytes = length >= SHARED_MIN ? out.subarray(0, length) : Buffer.from(out.subarray(0, length));
    return { bytes, slots: [] };
  }
}
