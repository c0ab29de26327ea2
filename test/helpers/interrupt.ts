import type { ChildProcess } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The temp blobs (`.tmp-*`) in a blob store's `sha256/` dir, with their sizes. */
export async function tempBlobs(blobRoot: string): Promise<{ name: string; size: number }[]> {
  const dir = join(blobRoot, 'sha256');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith('.tmp'));
  const out: { name: string; size: number }[] = [];
  for (const name of names) {
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st) out.push({ name, size: st.size });
  }
  return out;
}

/** The committed blobs (`<hex>`) in a blob store's `sha256/` dir, with their sizes. */
export async function committedBlobs(blobRoot: string): Promise<{ name: string; size: number }[]> {
  const dir = join(blobRoot, 'sha256');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
  return Promise.all(names.map(async (name) => ({ name, size: (await stat(join(dir, name))).size })));
}

/** Whether every thread of `pid` is stopped (state T or t in /proc). */
async function allThreadsStopped(pid: number): Promise<boolean> {
  const tasks = await readdir(`/proc/${pid}/task`);
  for (const tid of tasks) {
    const text = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // the thread exited
    // "pid (comm) S ...": the state follows the last ')' (comm may hold spaces and parentheses).
    const state = text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
    if (state !== 'T' && state !== 't') return false;
  }
  return true;
}

/**
 * Send SIGINT to a build in the middle of writing its layers, on an event rather than after a
 * delay. It waits until `layers` temp blobs under `blobRoot` (the cache's `blobs/`) each hold at
 * least `minBytes`, freezes the build (SIGSTOP, then waits until /proc shows every thread
 * stopped), and looks again: while it is frozen nothing can move, so the temp blobs still being
 * there, not renamed to their digest, proves each of those layers is part-written and unfinished.
 * Only then is SIGINT queued, and the build continued (SIGCONT): the kernel delivers the SIGINT
 * as the process resumes, at a point where each layer still has its size minus `minBytes` to go
 * (make the layers many deflate blocks larger than `minBytes`). Throws, naming what happened,
 * when the build exits first or a layer was finished before it could be frozen.
 */
export async function interruptMidLayer(
  child: ChildProcess,
  blobRoot: string,
  opts: { layers: number; minBytes: number; stderr: () => string },
): Promise<{ frozen: { name: string; size: number }[] }> {
  const pid = child.pid;
  if (pid === undefined) throw new Error('the build did not start');
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const partWritten = async () => (await tempBlobs(blobRoot)).filter((b) => b.size >= opts.minBytes);

  while ((await partWritten()).length < opts.layers) {
    if (exited()) throw new Error(`the build exited (${child.exitCode ?? child.signalCode}) before ${opts.layers} layer(s) had ${opts.minBytes} bytes written:\n${opts.stderr()}`);
    await sleep(5);
  }

  process.kill(pid, 'SIGSTOP');
  for (let i = 0; !(await allThreadsStopped(pid)); i++) {
    if (i > 2000) throw new Error(`the build (pid ${pid}) did not stop within 10 s of SIGSTOP`);
    await sleep(5);
  }
  const frozen = await partWritten();
  if (frozen.length < opts.layers) {
    process.kill(pid, 'SIGCONT');
    throw new Error(`a layer was finished before the build could be frozen (part-written: ${JSON.stringify(frozen)}): make the layers larger`);
  }
  process.kill(pid, 'SIGINT');
  process.kill(pid, 'SIGCONT');
  return { frozen };
}
