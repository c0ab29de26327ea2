import { resolve } from 'node:path';
import { ImgbuildError } from '../errors.js';
import { addToStore } from '../store/store-add.js';
import { checkStorePathName, normaliseStoreDir } from '../store/store-path.js';
import { printJson } from './print.js';
import { checkStoreDirFlag } from './store-dir-flag.js';

export interface StoreAddFlags {
  store?: string;
  storeDir?: string;
  name?: string;
  json?: boolean;
}

/**
 * `imgbuild store add <dir-or-file> --store <dir>`: `nix-store --add` for a directory store, with
 * no Nix. Prints the store path (for a spec's `contents`); says on stderr whether it was added.
 */
export async function runStoreAdd(source: string, flags: StoreAddFlags): Promise<void> {
  if (!flags.store) throw new ImgbuildError('usage', 'store add needs the directory store to add to: --store <dir>', 'e.g. imgbuild store add ./app --store ./store');
  // As Nix does, a trailing "/" is dropped (store-path.ts normaliseStoreDir); what is left must be a store dir.
  checkStoreDirFlag(flags.storeDir === undefined ? undefined : normaliseStoreDir(flags.storeDir));
  if (flags.name !== undefined) {
    const why = checkStorePathName(flags.name);
    if (why) throw new ImgbuildError('usage', `--name ${JSON.stringify(flags.name)} is not a store path name: ${why}`, 'a name is 1 to 211 of A-Z a-z 0-9 + - . _ ? =, e.g. --name app-1.0');
  }
  const storeDir = flags.storeDir ?? '/nix/store';
  const r = await addToStore(source, { dir: flags.store, storeDir, ...(flags.name !== undefined ? { name: flags.name } : {}) });
  if (flags.json) {
    printJson({ schemaVersion: 1, path: r.path, store: resolve(flags.store), storeDir, fsPath: r.fsPath, narHash: r.narHash, narSize: r.narSize, added: r.added });
    return;
  }
  process.stdout.write(`${r.path}\n`);
  process.stderr.write(`${r.added ? 'added' : 'already there'}: ${r.fsPath} (${r.narHash})\n`);
}
