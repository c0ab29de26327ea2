import { NarMismatchError } from '../store/binary-cache/errors.js';
import { storeLayerOutline } from './tree-entries.js';
import type { LayerEntry } from './types.js';

/**
 * Longest name or symlink target read from a NAR: Linux's PATH_MAX. A longer one is a malformed
 * (or hostile) NAR, and refusing it keeps memory bounded.
 */
const MAX_STRING = 4096;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The layer entries of one store path read from its NAR serialisation, as the bytes arrive: the
 * same entries `treeEntries` gives for the path's files on disk (Nix's canonical modes: files
 * 0444, or 0555 when executable; directories 0555; symlinks verbatim), in the same order (a NAR
 * lists a directory's entries sorted by name bytes, as the tree walk does).
 *
 * A file's entry carries its bytes as a stream (`content.from === 'stream'`): the consumer takes
 * them before it asks for the next entry, so memory is one chunk whatever the file's size. The
 * NAR is read to its end (so a source that checks a hash at the end has checked it before the
 * last entry is done). A malformed NAR is a NarMismatchError naming `what`.
 */
export async function* narEntries(nar: AsyncIterable<Uint8Array>, imagePath: string, what: string): AsyncGenerator<LayerEntry> {
  const r = new NarReader(nar[Symbol.asyncIterator](), what);
  try {
    if ((await r.str(32)) !== 'nix-archive-1') r.fail('it does not start with the NAR magic "nix-archive-1"');
    yield* nodes(r, imagePath);
    await r.end();
  } finally {
    await r.close();
  }
}

/**
 * A directory whose entries are being read: its name (the root's: its whole path), the name of
 * the entry read last (they must be sorted), and its path while it is the innermost one open.
 */
interface OpenDirectory {
  name: string;
  previous: Buffer | undefined;
  path: string | undefined;
}

/**
 * The root node and every node below it, in NAR order, with an explicit stack of the directories
 * open: a NAR can nest directories as deep as it likes (a path on disk cannot pass PATH_MAX, a
 * NAR from a binary cache can), and a generator per level (`yield*` of a recursive one) overflowed
 * the stack past ~2,500 levels. The tokens are read in the same order, with the same checks and
 * messages, as a recursive descent would. Only the innermost directory keeps its path (an outer
 * one's is joined again from the names when it is innermost again): the paths of every directory
 * open were as many bytes as the square of the depth (a NAR 20,000 deep took 640 MB).
 */
async function* nodes(r: NarReader, rootPath: string): AsyncGenerator<LayerEntry> {
  const open: OpenDirectory[] = [];
  const pathOf = (k: number): string => (open[k]!.path ??= open.slice(0, k + 1).map((d) => d.name).join('/'));
  let name = rootPath;
  let path: string | undefined = rootPath;
  while (path !== undefined) {
    // The node at `path`: `(` `type` <type> ... `)`.
    await r.expect('(');
    await r.expect('type');
    const type = await r.str(16);
    switch (type) {
      case 'regular': {
        let tag = await r.str(16);
        let executable = false;
        if (tag === 'executable') {
          executable = true;
          await r.expect('');
          tag = await r.str(16);
        }
        if (tag !== 'contents') r.fail(`expected "contents" in the file ${path}, found ${JSON.stringify(tag)}`);
        const size = await r.u64();
        const stream = r.stream(size);
        yield { kind: 'file', path, mode: executable ? 0o555 : 0o444, content: { from: 'stream', size, read: () => stream } };
        // The consumer should have taken every byte; whatever it left is skipped here.
        for await (const _ of stream);
        await r.pad(size);
        await r.expect(')');
        break;
      }
      case 'symlink': {
        await r.expect('target');
        const target = decode(r, await r.bytes(MAX_STRING), `the target of the symlink ${path}`);
        yield { kind: 'symlink', path, target };
        await r.expect(')');
        break;
      }
      case 'directory':
        yield { kind: 'directory', path, mode: 0o555 };
        if (open.length > 0) open[open.length - 1]!.path = undefined;
        open.push({ name, previous: undefined, path });
        break;
      default:
        r.fail(`unknown node type ${JSON.stringify(type)} at ${path}`);
    }
    if (type !== 'directory' && open.length > 0) await r.expect(')'); // the `)` of the entry holding the node
    path = undefined;
    // The next entry of the innermost open directory, or its end (its `)`), until a node is next.
    while (path === undefined && open.length > 0) {
      const dir = open[open.length - 1]!;
      const tag = await r.str(16);
      if (tag === ')') {
        open.pop();
        if (open.length > 0) await r.expect(')'); // the `)` of the entry holding the directory
        continue;
      }
      const dirPath = pathOf(open.length - 1);
      if (tag !== 'entry') r.fail(`expected "entry" or ")" in the directory ${dirPath}, found ${JSON.stringify(tag)}`);
      await r.expect('(');
      await r.expect('name');
      const raw = await r.bytes(255);
      if (raw.length === 0 || raw.includes(0x2f) || raw.includes(0) || raw.equals(DOT) || raw.equals(DOTDOT)) {
        r.fail(`the directory ${dirPath} holds an entry named ${JSON.stringify(raw.toString('latin1'))}`);
      }
      if (dir.previous && Buffer.compare(dir.previous, raw) >= 0) r.fail(`the entries of the directory ${dirPath} are not sorted by name`);
      dir.previous = raw;
      await r.expect('node');
      name = decode(r, raw, `a name in ${dirPath}`);
      path = `${dirPath}/${name}`;
    }
  }
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

function decode(r: NarReader, raw: Buffer, what: string): string {
  try {
    return strictUtf8.decode(raw);
  } catch {
    return r.fail(`${what} is not valid UTF-8 (bytes ${raw.toString('hex')}); layer paths must be UTF-8`);
  }
}

/** Reads NAR tokens from chunks of any size. */
class NarReader {
  private chunk: Uint8Array = new Uint8Array(0);
  private off = 0;
  private done = false;
  /** Bytes of the NAR consumed so far (for messages). */
  private pos = 0;

  constructor(
    private readonly it: AsyncIterator<Uint8Array>,
    private readonly what: string,
  ) {}

  fail(why: string): never {
    throw new NarMismatchError(`the NAR of ${this.what} is malformed at byte ${this.pos}: ${why}`, []);
  }

  /** Makes sure at least one unread byte is in `chunk`, unless the NAR has ended. */
  private async fill(): Promise<boolean> {
    while (this.off >= this.chunk.length) {
      if (this.done) return false;
      const next = await this.it.next();
      if (next.done) {
        this.done = true;
        return false;
      }
      this.chunk = next.value;
      this.off = 0;
    }
    return true;
  }

  /** Exactly `n` bytes, copied (n is small: a number, a name, padding). */
  async take(n: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) this.fail(`it ends ${n - got} bytes too early`);
      const k = Math.min(n - got, this.chunk.length - this.off);
      out.set(this.chunk.subarray(this.off, this.off + k), got);
      this.off += k;
      got += k;
      this.pos += k;
    }
    return out;
  }

  async u64(): Promise<number> {
    const b = await this.take(8);
    const high = b.readUInt32LE(4);
    if (high >= 0x200000) this.fail('a length does not fit in 2^53');
    return high * 0x100000000 + b.readUInt32LE(0);
  }

  async pad(length: number): Promise<void> {
    const n = (8 - (length % 8)) % 8;
    if (n > 0 && (await this.take(n)).some((x) => x !== 0)) this.fail('padding that is not zero');
  }

  /** A NAR string of at most `max` bytes. */
  async bytes(max: number): Promise<Buffer> {
    const n = await this.u64();
    if (n > max) this.fail(`a string of ${n} bytes where at most ${max} were expected`);
    const b = await this.take(n);
    await this.pad(n);
    return b;
  }

  async str(max: number): Promise<string> {
    return (await this.bytes(max)).toString('latin1');
  }

  async expect(token: string): Promise<void> {
    const got = await this.str(Math.max(16, token.length));
    if (got !== token) this.fail(`expected ${JSON.stringify(token)}, found ${JSON.stringify(got)}`);
  }

  /** The next `size` bytes as they arrive, without copying; iterated once. */
  async *stream(size: number): AsyncGenerator<Uint8Array> {
    let left = size;
    while (left > 0) {
      if (!(await this.fill())) this.fail(`it ends ${left} bytes into a file of ${size}`);
      const k = Math.min(left, this.chunk.length - this.off);
      const piece = this.chunk.subarray(this.off, this.off + k);
      this.off += k;
      this.pos += k;
      left -= k;
      yield piece;
    }
  }

  /** Reads to the end: nothing may follow the root node. */
  async end(): Promise<void> {
    if (await this.fill()) this.fail('bytes follow the end of the archive');
  }

  async close(): Promise<void> {
    if (!this.done) await this.it.return?.();
  }
}

/**
 * The entries of a store layer whose paths' files come as NARs (a binary cache): the same
 * entries, in the same order, as `storeLayerEntries` gives for the files on disk, so the layer's
 * bytes are the same. `openNar` gives a path's NAR bytes, checked by the source (a mismatch makes
 * the iteration fail, and with it the layer's write). One NAR is open at a time.
 */
export async function* storeLayerNarEntries(
  paths: string[],
  openNar: (storePath: string) => AsyncIterable<Uint8Array>,
  storeDir: string,
): AsyncGenerator<LayerEntry> {
  const { parents, sorted } = storeLayerOutline(paths, storeDir);
  yield* parents;
  for (const storePath of sorted) yield* narEntries(openNar(storePath), storePath.slice(1), storePath);
}
