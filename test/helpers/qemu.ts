import { constants } from 'node:fs';
import { access, lstat, readFile, readlink } from 'node:fs/promises';
import { delimiter, join, posix } from 'node:path';
import { tool } from './cli.js';

/**
 * The host path of `path` inside an unpacked rootfs, following symlinks the way the image would:
 * absolute targets (`/bin/sh -> /nix/store/…/bin/sh`) are read relative to the rootfs, not the
 * host, and `..` never leaves it. Throws when a link chain is longer than 40 or a part is missing.
 */
export async function resolveInRoot(rootfs: string, path: string): Promise<string> {
  let pending = posix.normalize(`/${path}`).split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = join(rootfs, ...done, part);
    const st = await lstat(host);
    if (!st.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    if (++links > 40) throw new Error(`too many symlinks resolving ${path} in ${rootfs}`);
    const target = await readlink(host);
    const rest = target.split('/').filter(Boolean);
    if (target.startsWith('/')) done.length = 0;
    pending = [...rest, ...pending];
  }
  return join(rootfs, ...done);
}

export interface QemuOptions {
  /** The program's environment (default: `PATH=/bin`, nothing from the host). */
  env?: NodeJS.ProcessEnv;
  /** The qemu-user binary (default: qemu-aarch64-static, from Debian's qemu-user-static). */
  qemu?: string;
}

/**
 * Runs `argv` from an unpacked arm64 rootfs with qemu-aarch64-static and resolves to its stdout
 * (rejects with its stderr when it fails). `argv[0]` is a path in the image (`/bin/sh`,
 * `/bin/busybox`); it is resolved inside the rootfs and passed to qemu as the program, with
 * `-0 argv[0]` so that busybox picks its applet from the name, and `-L rootfs` so that absolute
 * paths the program opens are looked up in the rootfs first (no chroot, no binfmt_misc needed).
 *
 * What works: static binaries (busybox-static), shell builtins (`sh -c 'echo …'`), busybox applets
 * called directly (`['/bin/cat', '/etc/passwd']`). What does not: a shell that executes another
 * program (`sh -c 'cat f'` runs `cat` by execve, which the host kernel cannot run without
 * binfmt_misc, or runs the host's own `cat`).
 */
export async function runUnderQemu(rootfs: string, argv: string[], opts: QemuOptions = {}): Promise<string> {
  const [program, ...args] = argv;
  if (!program) throw new Error('runUnderQemu: empty argv');
  const hostPath = await resolveInRoot(rootfs, program);
  // qemu-user hands its own environment to the program: find qemu on the host's PATH first.
  const qemu = await onHostPath(opts.qemu ?? 'qemu-aarch64-static');
  return tool(qemu, ['-L', rootfs, '-0', program, hostPath, ...args], { env: opts.env ?? { PATH: '/bin' } });
}

/**
 * Runs an umoci-unpacked arm64 bundle the way runc would run it, but under qemu-aarch64-static:
 * the process args and env of its config.json (the image's Entrypoint/Cmd and Env), from its
 * rootfs. Resolves to stdout. Same limits as `runUnderQemu`.
 */
export async function runBundleUnderQemu(bundle: string, opts: Omit<QemuOptions, 'env'> = {}): Promise<string> {
  const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[]; env?: string[] } };
  const env: NodeJS.ProcessEnv = {};
  for (const kv of config.process.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return runUnderQemu(join(bundle, 'rootfs'), config.process.args, { ...opts, env });
}

async function onHostPath(cmd: string): Promise<string> {
  if (cmd.includes('/')) return cmd;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, cmd);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new Error(`${cmd} is not on PATH (apt-get install qemu-user-static)`);
}
