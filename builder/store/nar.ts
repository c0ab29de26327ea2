import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { StoreError } from '../errors.js';
import { nixBase32Encode } from './nix-base32.js';

/**
 * The file tree of a store path as the NAR format sees it. Names and symlink targets are raw
 * bytes (Nix sorts entries by bytes and hashes them as bytes, whatever their encoding).
 */
export type NarNode =
  | { type: 'regular'; size: number; executable: boolean; mtimeMs: number; ctimeMs: number }
  | { type: 'symlink'; target: Buffer }
  | { type: 'directory'; entries: Array<[name: Buffer, node: NarNode]> };

const SLASH = Buffer.from('/');

/**
 * Walks `fsPath` (lstat, never following symlinks) into a NarNode tree, entries sorted by name bytes.
 * The walk uses synchronous fs calls on purpose: a store holds many small files, and a thread-pool
 * round trip per lstat/readdir costs several times the syscall itself (measured in bench/scan.ts).
 */
export async function readNarTree(fsPath: string | Buffer): Promise<NarNode> {
  return readNarTreeSync(typeof fsPath === 'string' ? Buffer.from(fsPath) : fsPath);
}

function readNarTreeSync(path: Buffer): NarNode {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    throw new StoreError(`cannot read ${path.toString()}: ${(e as Error).message}`, [path.toString()], undefined, {
      cause: e,
    });
  }
  if (st.isSymbolicLink()) return { type: 'symlink', target: readlinkSync(path, { encoding: 'buffer' }) };
  if (st.isFile()) {
    // Nix marks a file executable when its owner may execute it.
    return { type: 'regular', size: st.size, executable: (st.mode & 0o100) !== 0, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
  }
  if (st.isDirectory()) {
    const names = readdirSync(path, { encoding: 'buffer' });
    names.sort(Buffer.compare);
    const entries: Array<[Buffer, NarNode]> = [];
    for (const name of names) entries.push([name, readNarTreeSync(Buffer.concat([path, SLASH, name]))]);
    return { type: 'directory', entries };
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

const ZEROS = Buffer.alloc(8);

/** Receives the NAR bytes in order. A chunk is only valid during the call (buffers are reused). */
export type NarSink = (chunk: Buffer) => void;

export const NAR_READ_CHUNK = 1 << 20;

/**
 * Streams the NAR serialisation of the tree `node` (read from `fsPath`) into `sink`, reading
 * file contents in 1 MiB chunks. A file whose size changed since the tree was read is an error:
 * the NAR would not match the size announced in its header.
 */
export async function dumpNar(fsPath: string | Buffer, node: NarNode, sink: NarSink): Promise<void> {
  const buf = Buffer.allocUnsafe(NAR_READ_CHUNK);
  sink(T.magic);
  await dumpNode(typeof fsPath === 'string' ? Buffer.from(fsPath) : fsPath, node, sink, buf);
}

async function dumpNode(path: Buffer, node: NarNode, sink: NarSink, buf: Buffer): Promise<void> {
  sink(T.open);
  sink(T.type);
  switch (node.type) {
    case 'regular': {
      sink(T.regular);
      if (node.executable) {
        sink(T.executable);
        sink(T.empty);
      }
      sink(T.contents);
      const len = Buffer.alloc(8);
      len.writeUInt32LE(node.size % 0x100000000, 0);
      len.writeUInt32LE(Math.floor(node.size / 0x100000000), 4);
      sink(len);
      await dumpContents(path, node.size, sink, buf);
      const pad = (8 - (node.size & 7)) & 7;
      if (pad) sink(ZEROS.subarray(0, pad));
      break;
    }
    case 'symlink':
      sink(T.symlink);
      sink(T.target);
      sink(strBytes(node.target));
      break;
    case 'directory':
      sink(T.directory);
      for (const [name, child] of node.entries) {
        sink(T.entry);
        sink(T.open);
        sink(T.name);
        sink(strBytes(name));
        sink(T.node);
        await dumpNode(Buffer.concat([path, SLASH, name]), child, sink, buf);
        sink(T.close);
      }
      break;
  }
  sink(T.close);
}

/**
 * Reads a file in 1 MiB chunks with synchronous reads (see readNarTree), yielding to the event
 * loop between chunks of big files so that a long scan does not starve timers and I/O.
 */
async function dumpContents(path: Buffer, size: number, sink: NarSink, buf: Buffer): Promise<void> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new StoreError(`cannot read ${path.toString()}: ${(e as Error).message}`, [path.toString()], undefined, {
      cause: e,
    });
  }
  try {
    let done = 0;
    // Reads exactly `size` bytes: the NAR header already announced that length.
    while (done < size) {
      const bytesRead = readSync(fd, buf, 0, Math.min(buf.length, size - done), null);
      if (bytesRead === 0) break;
      done += bytesRead;
      sink(buf.subarray(0, bytesRead));
      if (done < size && done % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
    }
    if (done !== size) {
      throw new StoreError(
        `${path.toString()} changed while it was read (expected ${size} bytes, read ${done}); store paths must not change`,
        [path.toString()],
      );
    }
  } finally {
    closeSync(fd);
  }
}

/** Bytes read between two yields to the event loop (a power of two, a multiple of the chunk). */
const YIELD_EVERY = 16 * NAR_READ_CHUNK;

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
