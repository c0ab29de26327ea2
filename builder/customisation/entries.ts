import { stat } from 'node:fs/promises';
import { SpecError } from '../errors.js';
import type { LayerEntry } from '../layer/types.js';
import { SpecValidationError, type SpecIssue } from '../spec/errors.js';
import { formatField } from '../spec/issues.js';
import { imagePathProblem } from '../spec/schema.js';
import { storeShadowProblem } from '../spec/store-shadow.js';
import type { ResolvedSpec } from '../spec/types.js';
import { linkCopyToRoot } from './copy-to-root.js';
import { generatedEtcFiles } from './etc-files.js';
import { CustomisationTree, TreeConflict, type TreeNode } from './tree.js';

/**
 * The entries of the customisation layer (the top layer of the image), in tar order: depth-first,
 * parents before children, siblings by name bytes; paths relative (`etc/passwd`).
 *
 * Sources, in override order (see tree.ts): copyToRoot links; then what the spec defines — the
 * /etc files generated from `users`/`groups`, `directories`, `files`, `symlinks`. A spec entry
 * replaces a copyToRoot link or directory at its path; two spec entries for one path are an error
 * naming both (so `files` cannot silently replace the generated /etc/passwd). Parent directories
 * nobody defines get mode 0755. Owners not given per entry are left to the layer writer (the
 * spec's uid/gid/uname/gname); a per-entry uid/gid carries the matching user/group name from
 * `users`/`groups`, or an empty name (so tar never maps it to a different id by name).
 *
 * `fsPathOf` maps a logical store path to where it is on this machine (StoreSource.fsPath).
 */
export async function customisationEntries(
  spec: ResolvedSpec,
  fsPathOf: (storePath: string) => string,
  onPermMatch?: (index: number) => void,
  storeDir: string = spec.store.storeDir,
): Promise<LayerEntry[]> {
  const tree = new CustomisationTree();
  try {
    await linkCopyToRoot(spec, fsPathOf, tree, onPermMatch);
    for (const node of await specNodes(spec)) tree.put(node);
    checkStoreLeftAlone(spec, tree, storeDir);
    return tree.entries();
  } catch (e) {
    if (e instanceof TreeConflict) throw new SpecError(spec.file, undefined, e.message);
    throw e;
  }
}

/**
 * The layer sits on the store layers: nothing in it may replace the store dir or a directory
 * above it, or go inside the store dir (spec/store-shadow.ts). The spec's own entries were
 * checked with the spec when its store dir was known then; this also sees what copyToRoot links
 * and the store dir a Nix store reports. Every problem at once, each naming its field.
 */
function checkStoreLeftAlone(spec: ResolvedSpec, tree: CustomisationTree, storeDir: string): void {
  const refused = [...tree.all()].filter((node) => storeShadowProblem(node.entry.path, node.entry.kind, storeDir) !== undefined);
  const paths = new Set(refused.map((node) => node.entry.path));
  const issues: SpecIssue[] = [];
  for (const node of refused) {
    // What a refused directory holds is not listed again (a package's whole nix/store/ tree).
    if (ancestors(node.entry.path).some((p) => paths.has(p))) continue;
    const path = node.at ?? [];
    const by = node.layer === 'copyToRoot' ? `${node.origin.replace(/^copyToRoot /, '')} links ${node.entry.path} (${kindOf(node.entry)}): ` : '';
    issues.push({ field: formatField(path), path, message: `${by}${storeShadowProblem(node.entry.path, node.entry.kind, storeDir)!}` });
  }
  if (issues.length > 0) throw new SpecValidationError(spec.file, issues);
}

function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) out.push(path.slice(0, i));
  return out;
}

function kindOf(entry: LayerEntry): string {
  return entry.kind === 'directory' ? 'a directory' : entry.kind === 'file' ? 'a file' : 'a symlink';
}

/** Every entry the spec itself defines, in override order. */
async function specNodes(spec: ResolvedSpec): Promise<TreeNode[]> {
  const userName = new Map<number, string>();
  for (const u of [...spec.users].reverse()) userName.set(u.uid, u.name);
  const groupName = new Map<number, string>();
  for (const g of [...spec.groups].reverse()) groupName.set(g.gid, g.name);
  const owner = (uid: number | undefined, gid: number | undefined) => ({
    ...(uid !== undefined ? { uid, uname: userName.get(uid) ?? '' } : {}),
    ...(gid !== undefined ? { gid, gname: groupName.get(gid) ?? '' } : {}),
  });
  const checkPath = (path: string, field: string) => {
    const problem = imagePathProblem(path);
    if (problem) throw new SpecError(spec.file, `${field}.path`, problem);
  };

  const nodes: TreeNode[] = [];
  for (const g of generatedEtcFiles(spec)) {
    nodes.push({
      entry: { kind: 'file', path: g.path, mode: g.mode, content: { from: 'bytes', data: Buffer.from(g.text, 'utf8') } },
      layer: 'spec',
      origin: `the ${g.path} generated from \`users\`/\`groups\``,
      at: [spec.users.length > 0 ? 'users' : 'groups'],
    });
  }
  for (const d of spec.directories) {
    checkPath(d.path, d.field);
    nodes.push({ entry: { kind: 'directory', path: d.path, mode: d.mode, ...owner(d.uid, d.gid) }, layer: 'spec', origin: d.field, at: fieldPath(d.field) });
  }
  for (const f of spec.files) {
    checkPath(f.path, f.field);
    let entry: LayerEntry;
    if (f.content.kind === 'text') {
      entry = { kind: 'file', path: f.path, mode: f.mode ?? 0o644, content: { from: 'bytes', data: Buffer.from(f.content.text, 'utf8') } };
    } else {
      const fsPath = f.content.fsPath;
      let st;
      try {
        st = await stat(fsPath);
      } catch (e) {
        const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
        throw new SpecError(spec.file, `${f.field}.source`, `${fsPath}: ${why}`);
      }
      if (!st.isFile()) throw new SpecError(spec.file, `${f.field}.source`, `${fsPath} is not a regular file`);
      const mode = f.mode ?? (st.mode & 0o100 ? 0o755 : 0o644);
      entry = { kind: 'file', path: f.path, mode, content: { from: 'disk', fsPath, size: st.size } };
    }
    nodes.push({ entry: { ...entry, ...owner(f.uid, f.gid) }, layer: 'spec', origin: f.field, at: fieldPath(f.field) });
  }
  for (const s of spec.symlinks) {
    checkPath(s.path, s.field);
    nodes.push({ entry: { kind: 'symlink', path: s.path, target: s.target }, layer: 'spec', origin: s.field, at: fieldPath(s.field) });
  }
  return nodes;
}

/** `files[2]` → `['files', 2, 'path']`: where an entry's path is in the spec. */
function fieldPath(field: string): PropertyKey[] {
  const m = /^([A-Za-z]+)\[(\d+)\]$/.exec(field);
  return m ? [m[1]!, Number(m[2]), 'path'] : [field, 'path'];
}
