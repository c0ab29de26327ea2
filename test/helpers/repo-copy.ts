import { execFileSync } from 'node:child_process';
import { chmod, copyFile, lstat, mkdir, readlink, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { repoRoot } from './paths.js';

/**
 * Copy the repository's working tree as git sees it (tracked and untracked files, ignored ones
 * left out: no node_modules, dist, built images or example stores) into `dest`, symlinks as
 * symlinks and with their modes. What a fresh clone of the current work would hold, uncommitted
 * changes included. Uses git (callers ask for it with needTool).
 */
export async function copyWorkingTree(dest: string): Promise<void> {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, maxBuffer: 1 << 26 })
    .toString()
    .split('\0')
    .filter(Boolean);
  for (const rel of [...new Set(listed)]) {
    const from = join(repoRoot, rel);
    const to = join(dest, rel);
    let st;
    try {
      st = await lstat(from);
    } catch {
      continue; // tracked but deleted in the working tree
    }
    await mkdir(dirname(to), { recursive: true });
    if (st.isSymbolicLink()) await symlink(await readlink(from), to);
    else if (st.isFile()) {
      await copyFile(from, to);
      await chmod(to, st.mode & 0o777);
    }
  }
}

/** `git init` + one commit of everything in `dir` (a repository npm can install with git+file://). */
export function commitAll(dir: string, message = 'snapshot of the working tree'): string {
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=imgbuild tests', '-c', 'user.email=tests@imgbuild.invalid', '-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false', ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  git('init', '-q');
  git('add', '-A');
  git('commit', '-q', '-m', message);
  return git('rev-parse', 'HEAD').trim();
}
