import { FLAG_ALL_INLINE, HANDOVER_KIND, HEAD, INLINE_FILE_MAX, nameHash, putF64, SHARED_MIN, utf8, type HandoverDraft } from './handover.js';
import { growableBuffer } from './split-read.js';
import { FingerprintText } from './tree-fingerprint.js';

/**
 * What a split scan (split-scan.ts) is asked for once its tree is read, made node by node as the
 * tree is made (NAR order, while the helper thread still reads): the tree's stat fingerprint
 * (tree-fingerprint.ts), its hand-over record with the files' bytes (handover.ts), and whether a
 * node has special mode bits (content-id.ts). Made after the reads, each was a walk of the whole
 * tree (200,000 nodes) on one thread with the other core idle: ~0.3 s of a 3 s build.
 *
 * The same bytes as `treeFingerprint(tree)` and `draftHandover` + `fillHandover`. The record is
 * made here only in its common case: every file inlined (≤ INLINE_FILE_MAX, read by the threads),
 * names and targets UTF-8 and short, no stat-list values, within its cap. At anything else the
 * record is given up here (`handover()` is undefined) and the caller drafts it from the tree as
 * before, which decides what such a record is.
 */
export class SplitExtras {
  private readonly text: FingerprintText | undefined;
  private record: HandoverWriter | undefined;
  /** Whether a node so far has setuid, setgid or sticky bits. */
  special = false;

  constructor(options: { fingerprint: boolean; handover?: { baseName: string; maxBytes: number } }) {
    this.text = options.fingerprint ? new FingerprintText() : undefined;
    if (options.handover && options.handover.maxBytes >= HEAD + 4) this.record = new HandoverWriter(options.handover.baseName, options.handover.maxBytes);
  }

  /** A directory of `entries` entries (the root: no name); its entries follow, then `close`. */
  directory(name: Buffer | undefined, latin1Name: string, entries: number, special: number): void {
    if (special) this.special = true;
    this.text?.text(name ? `${latin1Name.length}:${latin1Name}d${entries}(` : `d${entries}(`);
    if (this.record && !this.record.directory(name, special)) this.record = undefined;
  }

  /** The end of the innermost open directory. */
  close(): void {
    this.text?.text(')');
    if (this.record && !this.record.close()) this.record = undefined;
  }

  /** A regular file; `bytes`: its bytes as the threads read them (undefined: they did not). */
  file(name: Buffer, latin1Name: string, executable: boolean, size: number, mtimeMs: number, ctimeMs: number, special: number, bytes: Uint8Array | undefined): void {
    if (special) this.special = true;
    if (this.text) {
      this.text.text(`${latin1Name.length}:${latin1Name}`);
      this.text.regular(executable, size, mtimeMs, ctimeMs);
    }
    if (this.record && !this.record.file(name, special | (executable ? 0o100 : 0), size, bytes)) this.record = undefined;
  }

  symlink(name: Buffer, latin1Name: string, target: Buffer): void {
    if (this.text) {
      this.text.text(`${latin1Name.length}:${latin1Name}`);
      this.text.symlink(target);
    }
    if (this.record && !this.record.symlink(name, target)) this.record = undefined;
  }

  /** The tree's stat fingerprint (once every node was given), if asked for. */
  fingerprint(): string | undefined {
    return this.text?.digest();
  }

  /** The tree's whole hand-over record, its files' bytes in it (once every node was given); undefined when given up here. */
  handover(): HandoverDraft | undefined {
    return this.record?.finish();
  }
}

/** Bytes a record's buffer starts at (it grows in place, up to the record's cap). */
const FIRST_BYTES = 1024 * 1024;

/** handover.ts's record of a tree every file of which is inlined, written as the nodes come (its `write`, node by node). */
class HandoverWriter {
  private readonly memory: SharedArrayBuffer;
  private out: Buffer;
  private at = HEAD + 4;
  private depth = 0;

  constructor(
    private readonly baseName: string,
    private readonly maxBytes: number,
  ) {
    this.memory = growableBuffer(Math.min(maxBytes, FIRST_BYTES), maxBytes);
    this.out = Buffer.from(this.memory, 0, this.memory.byteLength);
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

  /** kind, u16 name length, the name: false at a name the record cannot hold (draftHandover makes none then). */
  private head(kind: number, name: Buffer | undefined, more: number): boolean {
    const length = name?.length ?? 0;
    if (length > 0xffff || (name && !utf8(name)) || !this.room(3 + length + more)) return false;
    const out = this.out;
    let at = this.at;
    out[at] = kind;
    out[at + 1] = length & 0xff;
    out[at + 2] = length >>> 8;
    at += 3;
    if (name) {
      if (length > 32) out.set(name, at);
      else for (let i = 0; i < length; i++) out[at + i] = name[i]!;
    }
    this.at = at + length;
    return true;
  }

  private u16(value: number): void {
    this.out[this.at] = value & 0xff;
    this.out[this.at + 1] = value >>> 8;
    this.at += 2;
  }

  directory(name: Buffer | undefined, special: number): boolean {
    if (!this.head(HANDOVER_KIND.DIR, name, 2)) return false;
    this.u16(special);
    this.depth++;
    return true;
  }

  close(): boolean {
    if (!this.room(1)) return false;
    this.out[this.at++] = HANDOVER_KIND.END;
    this.depth--;
    return true;
  }

  file(name: Buffer, mode: number, size: number, bytes: Uint8Array | undefined): boolean {
    // A bigger file is not inlined, nor then any other: draftHandover writes that record.
    if (size > INLINE_FILE_MAX || bytes === undefined || bytes.length !== size) return false;
    if (!this.head(HANDOVER_KIND.INLINE, name, 10 + size)) return false;
    this.u16(mode);
    putF64(this.out, this.at, size);
    this.at += 8;
    if (size > 32) this.out.set(bytes, this.at);
    else for (let i = 0; i < size; i++) this.out[this.at + i] = bytes[i]!;
    this.at += size;
    return true;
  }

  symlink(name: Buffer, target: Buffer): boolean {
    if (target.length > 0xffff || !utf8(target)) return false;
    if (!this.head(HANDOVER_KIND.SYMLINK, name, 2 + target.length)) return false;
    this.u16(target.length);
    this.out.set(target, this.at);
    this.at += target.length;
    return true;
  }

  finish(): HandoverDraft | undefined {
    if (this.depth !== 0) return undefined;
    const length = this.at;
    const out = this.out;
    out.writeUInt32LE(length, 0);
    out.writeUInt32LE(0, 4);
    out[7] = FLAG_ALL_INLINE;
    out.writeUInt32LE(nameHash(this.baseName), HEAD);
    // As draftHandover: a small record in memory of its own, a big one where it is (shared: a worker hands it over as it is).
    const bytes = length >= SHARED_MIN ? out.subarray(0, length) : Buffer.from(out.subarray(0, length));
    return { bytes, slots: [] };
  }
}
