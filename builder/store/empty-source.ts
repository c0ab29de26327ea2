import type { ClosureGraph } from '../../layering/types.js';
import { StoreError } from '../errors.js';
import { normaliseStoreDir } from './store-path.js';
import type { StoreSource } from './types.js';

/** The store of a spec that names no store path (a base image plus files, say): an empty closure. */
export class EmptyStoreSource implements StoreSource {
  readonly storeDir: string;
  readonly description = 'no store (the spec names no store path)';

  constructor(storeDir = '/nix/store') {
    this.storeDir = normaliseStoreDir(storeDir);
  }

  fsPath(storePath: string): string {
    throw new StoreError(`${storePath}: the spec names no store to take store paths from`, [storePath], 'set store.dir in the spec, or pass --store <dir>, --nix or --closure-file <file>');
  }

  /** No store, no files: no architecture. */
  async pathArchitectures(): Promise<Record<string, string>> {
    return {};
  }

  async closure(roots: string[]): Promise<ClosureGraph> {
    if (roots.length > 0) this.fsPath(roots[0]!);
    return { storeDir: this.storeDir, roots: [], paths: [] };
  }
}
