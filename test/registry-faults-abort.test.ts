// An interrupt while the client retries a registry that cannot be reached, or waits on one that
// never answers: the abort ends the backoff wait and the connection at once (the /v2/ ping
// included), rejects with the signal's reason, never retries after it, and the CLI exits 130.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryClient, RegistryError } from '../registry-client/index.js';
import { cliPath } from './helpers/paths.js';
import { makeImage, makeLayer } from './helpers/registry.js';
import { writeLayout } from './helpers/hostile-registry.js';
import { tempDir } from './helpers/tmp.js';

/** A TCP server on 127.0.0.1 that resets every connection (`reset`) or holds it without a byte (`hang`), counting them. */
interface FakeServer {
  host: string;
  mode: 'reset' | 'hang';
  connections: number;
  open: Set<Socket>;
  server: Server;
}

async function fakeServer(mode: 'reset' | 'hang'): Promise<FakeServer> {
  const s: FakeServer = { host: '', mode, connections: 0, open: new Set(), server: createServer() };
  s.server.on('connection', (socket) => {
    s.connections++;
    socket.on('error', () => undefined);
    if (s.mode === 'reset') {
      socket.resetAndDestroy();
      return;
    }
    s.open.add(socket);
    socket.on('close', () => s.open.delete(socket));
    socket.resume();
  });
  s.server.listen(0, '127.0.0.1');
  await once(s.server, 'listening');
  s.host = `127.0.0.1:${(s.server.address() as { port: number }).port}`;
  return s;
}

const servers: FakeServer[] = [];
let work: string;
before(async () => {
  work = await tempDir('imgbuild-faults-abort-');
});
after(async () => {
  for (const s of servers) {
    for (const socket of s.open) socket.destroy();
    s.server.close();
  }
});

async function start(mode: 'reset' | 'hang'): Promise<FakeServer> {
  const s = await fakeServer(mode);
  servers.push(s);
  return s;
}

/** Whether a rejection is `signal`'s reason (looked at once rejected: the signal has aborted by then). */
const isAbort = (signal: AbortSignal) => (e: unknown) => {
  assert.ok(signal.aborted);
  assert.equal(e, signal.reason, `rejected with the signal's reason, not ${String(e)}`);
  assert.ok(!(e instanceof RegistryError), 'not reported as a registry (network) error');
  return true;
};

for (const where of ['client', 'request'] as const) {
  test(`an abort (the ${where}'s signal) during the /v2/ ping's backoff ends it: no attempt after it`, async () => {
    const s = await start('reset');
    const abort = new AbortController();
    let notices = 0;
    let seenAtAbort = -1;
    const client = new RegistryClient({
      credentials: async () => undefined,
      // Short backoffs: without the abort, the ping would make its 5 retries within ~0.1 s.
      retry: { retries: 5, baseDelayMs: 20, maxDelayMs: 20 },
      onRetry: () => {
        notices++;
        // The first failed attempt is told before its backoff: abort there.
        seenAtAbort = s.connections;
        abort.abort();
      },
      ...(where === 'client' ? { signal: abort.signal } : {}),
    });
    try {
      await assert.rejects(client.getManifest({ registry: s.host, repository: 'abort/ping' }, 'latest', where === 'request' ? abort.signal : undefined), isAbort(abort.signal));
      assert.equal(notices, 1, 'one retry notice: the wait the abort ended');
      // Ten backoffs' worth of time: nothing more may come.
      await sleep(300);
      assert.equal(s.connections, seenAtAbort, 'no connection attempt after the abort');
    } finally {
      await client.close();
    }
  });
}

test('an abort while a connection waits for an answer closes it at once, and the request rejects with the reason', async () => {
  const s = await start('hang');
  const abort = new AbortController();
  const client = new RegistryClient({ credentials: async () => undefined, signal: abort.signal, timeouts: { responseMs: 120_000, connectMs: 120_000 } });
  try {
    const asked = client.listTags({ registry: s.host, repository: 'abort/hang' });
    asked.catch(() => undefined);
    while (s.open.size === 0) await sleep(5);
    const socket = [...s.open][0]!;
    const closed = once(socket, 'close');
    abort.abort();
    await assert.rejects(asked, isAbort(abort.signal));
    // The server sees the connection closed by the client, not after the 2-minute response timeout.
    await closed;
    await sleep(100);
    assert.equal(s.connections, 1, 'no other connection after the abort');
    assert.equal(s.open.size, 0);
  } finally {
    await client.close();
  }
});

test('a caller aborting while it waits on the /v2/ ping another started ends only its own wait', async () => {
  const s = await start('hang');
  const first = new AbortController();
  const second = new AbortController();
  const client = new RegistryClient({ credentials: async () => undefined, retry: { retries: 0 }, timeouts: { responseMs: 120_000 } });
  try {
    const a = client.getManifest({ registry: s.host, repository: 'abort/a' }, 'latest', second.signal).catch((e: unknown) => e);
    const b = client.getManifest({ registry: s.host, repository: 'abort/b' }, 'latest', first.signal).catch((e: unknown) => e);
    while (s.open.size === 0) await sleep(5);
    // `a` started the ping under its signal; `b` waits on it under its own: only `b` ends.
    first.abort();
    assert.equal(await b, first.signal.reason);
    await sleep(100);
    assert.equal(s.open.size, 1, 'the ping of the caller whose signal did not abort goes on');
    second.abort();
    assert.equal(await a, second.signal.reason);
  } finally {
    await client.close();
  }
});

test('Ctrl-C while imgbuild push retries an unreachable registry exits 130 at once, saying only "interrupted"', async () => {
  const s = await start('reset');
  const img = await makeImage([await makeLayer({ 'data/abort': 'abort' })]);
  const layout = await writeLayout(join(work, 'push.oci'), img);
  const cache = await tempDir('imgbuild-faults-abort-cache-');
  const child = spawn(process.execPath, [cliPath, 'push', `oci:${layout}`, `${s.host}/abort/push:1`], {
    // A long response timeout: an attempt the interrupt did not end would wait for it.
    env: { ...process.env, IMGBUILD_CACHE_DIR: cache, CI: 'true', IMGBUILD_RESPONSE_TIMEOUT: '120s', IMGBUILD_CONNECT_TIMEOUT: '120s' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let interruptedAt = 0;
  child.stdout!.resume();
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/^waiting: /m.test(stderr) && s.mode === 'reset') {
        // Retrying: from now on a connection is held without an answer, so an attempt made before
        // the signal lands must be ended by it too (not by a timeout).
        s.mode = 'hang';
        interruptedAt = Date.now();
        child.kill('SIGINT');
      }
    });
    const code = await Promise.race([exit, sleep(60_000).then(() => 'still running')]);
    assert.equal(code, 130, stderr);
    // A generous bound, well under the ~8 s the remaining backoffs add up to and the 120 s timeouts.
    assert.ok(interruptedAt > 0 && Date.now() - interruptedAt < 4_000, `exited ${Date.now() - interruptedAt} ms after SIGINT`);
  } finally {
    child.kill('SIGKILL');
  }
  const lines = stderr.trimEnd().split('\n').filter((l) => !l.startsWith('waiting: '));
  assert.deepEqual(lines.slice(-1), ['interrupted: nothing was written'], stderr);
  assert.doesNotMatch(stderr, /error\[/, stderr);
  assert.equal(s.open.size, 0, 'no connection left open');
});
