/**
 * Buffers of one size kept on this thread between the layers it writes, for the next layer to
 * take instead of a fresh allocation: a fresh buffer per layer was memory to fault in and external
 * memory that set off V8's collections. At most `max` are kept, and only while layers follow each
 * other: all are dropped once none was given back for `idleMs` (the timer holds no process open).
 */
export class SpareBuffers {
  private readonly spare: Buffer[] = [];
  private dropTimer: NodeJS.Timeout | undefined;

  constructor(readonly size: number, readonly max: number, readonly idleMs: number) {}

  /** A kept buffer of `size` bytes when one is there, else a new one (of any size asked). */
  take(size = this.size): Buffer {
    return (size === this.size ? this.spare.pop() : undefined) ?? Buffer.allocUnsafe(size);
  }

  /** Keeps those of `bufs` that have this pool's size, up to `max`. */
  give(bufs: Iterable<Buffer>): void {
    for (const b of bufs) if (b.length === this.size && this.spare.length < this.max) this.spare.push(b);
    if (this.spare.length === 0) return;
    if (this.dropTimer) this.dropTimer.refresh();
    else
      this.dropTimer = setTimeout(() => {
        this.dropTimer = undefined;
        this.spare.length = 0;
      }, this.idleMs).unref();
  }

  /** Buffers kept now (for tests). */
  get count(): number {
    return this.spare.length;
  }
}
