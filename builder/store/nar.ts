import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { StoreError } from '../errors.js';
import { nixBase32Encode } from './nix-base32.js';

/** setuid, setgid, sticky: not part of a NAR (store/content-id.ts hashes them too); kept in layers (layer/modes.ts). */
export const SPECIAL_BITS = 0o7000;

/**
 * The file tree of a store path as the NAR format sees it. Names and symlink targets are raw
 * bytes (Nix sorts entries by bytes and hashes them as bytes, whatever their encoding).
 * `special` holds setuid/setgid/sticky bits when a file or directory has any: not part of a NAR,
 * but a layer keeps them (layer/modes.ts).
 */
export type NarNode =
  | { type: 'regular'; size: number; executable: boolean; mtimeMs: number; ctimeMs: number; special?: number }
  | { type: 'symlink'; target: Buffer }
  | { type: 'directory'; entries: Array<[name: Buffer, node: NarNode]>; special?: number };

const SLASH = Buffer.from('/');

/**
 * Walks `fsPath` (lstat, never following symlinks) into a NarNode tree, entries sorted by name bytes.
 * The walk uses synchronous fs calls on purpose: a store holds many small files, and a thread-pool
 * round trip per lstat/readdir costs several times the syscall itself (measured in bench/scan.ts).
 */
export async function readNarTree(fsPath: string | Buffer, visit?: NodeVisitor): Promise<NarNode> {
  return readNarTreeSync(typeof fsPath === 'string' ? Buffer.from(fsPath) : fsPath, visit);
}

/** Sees each node's path and lstat as readNarTree reads them, in NAR order (a node before its entries). */
export type NodeVisitor = (path: Buffer, st: Stats) => void;

function readNarTreeSync(path: Buffer, visit: NodeVisitor | undefined): NarNode {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    throw new StoreError(`cannot read ${path.toString()}: ${(e as Error).message}`, [path.toString()], undefined, {
      cause: e,
    });
  }
  visit?.(path, st);
  if (st.isSymbolicLink()) return { type: 'symlink', target: readlinkSync(path, { encoding: 'buffer' }) };
  const special = st.mode & SPECIAL_BITS;
  if (st.isFile()) {
    // Nix marks a file executable when its owner may execute it.
    const node: NarNode = { type: 'regular', size: st.size, executable: (st.mode & 0o100) !== 0, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
    if (special) node.special = special;
    return node;
  }
  if (st.isDirectory()) {
    const names = readdirSync(path, { encoding: 'buffer' });
    names.sort(Buffer.compare);
    const entries: Array<[Buffer, NarNode]> = [];
    for (const name of names) entries.push([name, readNarTreeSync(Buffer.concat([path, SLASH, name]), visit)]);
    return special ? { type: 'directory', entries, special } : { type: 'directory', entries };
  }
  throw new StoreError(
    `${path.toString()} is neither a regular file, a directory nor a symlink; a store path cannot hold it`,
    [path.toString()],
  );
}

/**
 * Size of a NAR string field: 8-byte length, the bytes, zero padding to 8. Plain arithmetic, not
 * bit masks: JavaScript's bitwise operators work on 32 bits and would wrap for files of 2 GiB+.
 */
function strSize(len: number): number {
  return 8 + Math.ceil(len / 8) * 8;
}

const TOKEN_SIZES = {
  magic: strSize('nix-archive-1'.length),
  open: strSize(1),
  close: strSize(1),
  type: strSize(4),
};

/** The exact size of the NAR serialisation of `node` (what `nix path-info` reports as narSize). */
export function narSize(node: NarNode): number {
  return TOKEN_SIZES.magic + nodeSize(node);
}

function nodeSize(node: NarNode): number {
  // "(" "type" <type> ... ")"
  let n = TOKEN_SIZES.open + TOKEN_SIZES.type + TOKEN_SIZES.close;
  switch (node.type) {
    case 'regular':
      n += strSize('regular'.length);
      if (node.executable) n += strSize('executable'.length) + strSize(0);
      n += strSize('contents'.length) + strSize(node.size);
      return n;
    case 'symlink':
      return n + strSize('symlink'.length) + strSize('target'.length) + strSize(node.target.length);
    case 'directory':
      n += strSize('directory'.length);
      for (const [name, child] of node.entries) {
        // "entry" "(" "name" <name> "node" <node> ")"
        n += strSize(5) + TOKEN_SIZES.open + strSize(4) + strSize(name.length) + strSize(4) + nodeSize(child);
        n += TOKEN_SIZES.close;
      }
      return n;
  }
}

function strBytes(s: string | Buffer): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s) : s;
  const out = Buffer.alloc(strSize(bytes.length));
  out.writeUInt32LE(bytes.length % 0x100000000, 0);
  out.writeUInt32LE(Math.floor(bytes.length / 0x100000000), 4);
  bytes.copy(out, 8);
  return out;
}

const T = {
  magic: strBytes('nix-archive-1'),
  open: strBytes('('),
  close: strBytes(')'),
  type: strBytes('type'),
  regular: strBytes('regular'),
  executable: strBytes('executable'),
  empty: strBytes(''),
  contents: strBytes('contents'),
  symlink: strBytes('symlink'),
  target: strBytes('target'),
  directory: strBytes('directory'),
  entry: strBytes('entry'),
  name: strBytes('name'),
  node: strBytes('node'),
};

/** Receives the NAR bytes in order. A chunk is only valid during the call (buffers are reused). */
export type NarSink = (chunk: Buffer) => void;

/**
 * Receives the first `bytes` bytes of every regular file of at least `minSize` bytes (all of it
 * when shorter than `bytes`), with the file's path, as the dump reads them: a look at each file's
 * header (elf.ts) at no extra read. `head` is only valid during the call.
 */
export interface FileHeadSink {
  bytes: number;
  minSize: number;
  take(path: Buffer, head: Buffer): void;
}

/** Bytes of NAR per chunk given to the sink. */
export const NAR_CHUNK = 256 * 1024;

/**
 * Bytes between two turns given to the event loop, so that a long scan does not starve timers and
 * I/O — nor a build's worker, which gets its next path to scan only when the main thread, maybe
 * scanning too, hears that it finished the last (16 MiB → 1 MiB: cold build 3.41 → 3.32 s, median of 10).
 */
const BYTES_PER_TURN = 1024 * 1024;

/**
 * Streams the NAR serialisation of the tree `node` (read from `fsPath`) into `sink`, in chunks
 * of NAR_CHUNK bytes. A file whose size changed since the tree was read is an error: the NAR
 * would not match the size announced in its header. `heads`, if given, also sees each file's
 * first bytes, in NAR order (the chunks given to `sink` are the same with or without it).
 */
export async function dumpNar(fsPath: string | Buffer, node: NarNode, sink: NarSink, heads?: FileHeadSink): Promise<void> {
  const buf = spareChunks.pop() ?? Buffer.allocUnsafe(NAR_CHUNK);
  try {
    const out = new NarChunks(sink, buf, heads);
    out.put(T.magic);
    await dumpNode(typeof fsPath === 'string' ? Buffer.from(fsPath) : fsPath, node, out);
    out.flush();
  } finally {
    if (spareChunks.length < 4) spareChunks.push(buf);
  }
}

/**
 * Chunk buffers of finished dumps, for the next: a fresh 256 KiB buffer per store path was most
 * of a scan of tiny paths' garbage (and page faults). A sink sees a chunk only during its call.
 */
const spareChunks: Buffer[] = [];

async function dumpNode(path: Buffer, node: NarNode, out: NarChunks): Promise<void> {
  out.put(T.open);
  out.put(T.type);
  switch (node.type) {
    case 'regular':
      out.put(T.regular);
      if (node.executable) {
        out.put(T.executable);
        out.put(T.empty);
      }
      out.put(T.contents);
      out.u64(node.size);
      await out.file(path, node.size);
      out.pad(node.size);
      break;
    case 'symlink':
      out.put(T.symlink);
      out.put(T.target);
      out.str(node.target);
      break;
    case 'directory':
      out.put(T.directory);
      for (const [name, child] of node.entries) {
        out.put(T.entry);
        out.put(T.open);
        out.put(T.name);
        out.str(name);
        out.put(T.node);
        await dumpNode(Buffer.concat([path, SLASH, name]), child, out);
        out.put(T.close);
        if (out.sinceTurn >= BYTES_PER_TURN) await out.turn();
      }
      break;
  }
  out.put(T.close);
}

/**
 * NAR bytes gathered into one reused buffer, file contents read straight into it with
 * synchronous reads (see readNarTree): a store path of many small files costs a few calls per
 * file and one sink call per chunk, not a sink call and a buffer per token.
 */
class NarChunks {
  private filled = 0;
  sinceTurn = 0;
  /** A file's first bytes for `heads`, copied as they are read (a head can straddle a flush). */
  private readonly head: Buffer | undefined;

  constructor(
    private readonly sink: NarSink,
    private readonly buf: Buffer,
    private readonly heads?: FileHeadSink,
  ) {
    if (heads) this.head = Buffer.allocUnsafe(heads.bytes);
  }

  put(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) {
      if (this.filled === this.buf.length) this.flush();
      const n = Math.min(bytes.length - off, this.buf.length - this.filled);
      this.buf.set(bytes.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
    }
  }

  /** A 64-bit little-endian number (arithmetic, not bit masks: sizes pass 2^32). */
  u64(value: number): void {
    if (this.buf.length - this.filled < 8) this.flush();
    this.buf.writeUInt32LE(value % 0x100000000, this.filled);
    this.buf.writeUInt32LE(Math.floor(value / 0x100000000), this.filled + 4);
    this.filled += 8;
  }

  /** A NAR string: its length, its bytes, zero padding to 8. */
  str(bytes: Uint8Array): void {
    this.u64(bytes.length);
    this.put(bytes);
    this.pad(bytes.length);
  }

  pad(length: number): void {
    const pad = (8 - (length % 8)) % 8;
    if (pad) this.put(ZEROS.subarray(0, pad));
  }

  /** Exactly `size` bytes of the file at `path`: the NAR header already announced that length. */
  async file(path: Buffer, size: number): Promise<void> {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new StoreError(`cannot read ${path.toString()}: ${(e as Error).message}`, [path.toString()], undefined, { cause: e });
    }
    try {
      const heads = this.heads;
      const want = heads && size >= heads.minSize ? Math.min(heads.bytes, size) : 0;
      let done = 0;
      while (done < size) {
        if (this.filled === this.buf.length) {
          this.flush();
          if (this.sinceTurn >= BYTES_PER_TURN) await this.turn();
        }
        const n = readSync(fd, this.buf, this.filled, Math.min(this.buf.length - this.filled, size - done), null);
        if (n === 0) break;
        if (done < want) {
          this.buf.copy(this.head!, done, this.filled, this.filled + Math.min(n, want - done));
          if (done + n >= want) heads!.take(path, this.head!.subarray(0, want));
        }
        this.filled += n;
        done += n;
      }
      if (done !== size) {
        throw new StoreError(`${path.toString()} changed while it was read (expected ${size} bytes, read ${done}); store paths must not change`, [path.toString()]);
      }
    } finally {
      closeSync(fd);
    }
  }

  flush(): void {
    if (this.filled === 0) return;
    this.sink(this.buf.subarray(0, this.filled));
    this.sinceTurn += this.filled;
    this.filled = 0;
  }

  turn(): Promise<void> {
    this.sinceTurn = 0;
    return new Promise((resolve) => setImmediate(resolve));
  }
}

const ZEROS = Buffer.alloc(8);

/** `sha256:<nix-base32>` of the NAR serialisation of `fsPath`, computed by streaming. */
export async function narHashOf(fsPath: string, node?: NarNode): Promise<{ narHash: string; narSize: number }> {
  const tree = node ?? (await readNarTree(fsPath));
  const h = createHash('sha256');
  let size = 0;
  await dumpNar(fsPath, tree, (chunk) => {
    size += chunk.length;
    h.update(chunk);
  });
  return { narHash: `sha256:${nixBase32Encode(h.digest())}`, narSize: size };
}
