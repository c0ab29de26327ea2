// A registry that is silent, stalls or never stops sending: each ends in the right digest or a
// clear error within the timeouts, saying on stderr what it waits for (docs/reliability.md,
// "Registry faults"). Tests lower the timeouts for speed; the defaults are checked, not waited.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_TIMEOUTS, DigestMismatchError, RegistryClient, parseReference, pullImage, pushImage, resolveRetry, worstCaseSilenceMs,
  type RetryNotice, type TimeoutOptions,
} from '../registry-client/index.js';
import { MAX_TIMER_MS, timerDelay } from '../registry-client/timer.js';
import { timeoutOptions } from '../builder/commands/registry-flags.js';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { blobOf, makeImage, makeLayer, noise, proxiedRegistryFixture } from './helpers/registry.js';
import { startSilentServer, writeLayout, type HostileServer } from './helpers/hostile-registry.js';
import { tempDir } from './helpers/tmp.js';

const fixture = proxiedRegistryFixture();
let work: string;
let silent: (HostileServer & { connections(): number }) | undefined;
const clients: RegistryClient[] = [];

before(async () => {
  work = await tempDir('imgbuild-faults-timeouts-');
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await silent?.stop();
});

/** A client of the proxy with fast retries and short timeouts, recording its retry notices. */
function fastClient(timeouts: TimeoutOptions, notices: RetryNotice[] = []): RegistryClient {
  const c = new RegistryClient({ credentials: async () => undefined, retry: { retries: 4, baseDelayMs: 10, maxDelayMs: 50 }, timeouts, onRetry: (n) => notices.push(n) });
  clients.push(c);
  return c;
}

test('the default timeouts are the documented ones, and a silent registry fails with them in under 2 minutes', async () => {
  assert.deepEqual({ ...DEFAULT_TIMEOUTS }, { connectMs: 10_000, responseMs: 30_000, idleMs: 30_000, blobBaseMs: 60_000, blobMinBytesPerSecond: 256 * 1024 });
  // 10 s (TLS handshake, loopback) + 3 × 30 s + the backoffs between.
  const worst = worstCaseSilenceMs(DEFAULT_TIMEOUTS, resolveRetry());
  assert.ok(worst < 120_000, `worst case ${worst} ms`);
  const docs = await readFile(join(repoRoot, 'docs/reliability.md'), 'utf8');
  for (const [flag, env, value] of [
    ['--connect-timeout', 'IMGBUILD_CONNECT_TIMEOUT', '10s'], ['--response-timeout', 'IMGBUILD_RESPONSE_TIMEOUT', '30s'], ['--idle-timeout', 'IMGBUILD_IDLE_TIMEOUT', '30s'],
    ['--blob-timeout', 'IMGBUILD_BLOB_TIMEOUT', '60s'], ['--min-speed', 'IMGBUILD_MIN_SPEED', '256KiB'],
  ]) {
    assert.match(docs, new RegExp(`\\| \`${flag}\` \\| \`${env}\` \\| ${value} \\|`), `docs/reliability.md: ${flag}`);
  }
  const help = (await runCli(['push', '--help'])).stdout.toString();
  for (const d of ['(default 10s', '(default 30s', '(default 60s', '(default 256KiB']) assert.ok(help.replace(/\s+/g, ' ').includes(d), `push --help: ${d}`);
  // A client given nothing uses them.
  assert.deepEqual({ ...new RegistryClient({ credentials: async () => undefined }).transport.timeouts }, { ...DEFAULT_TIMEOUTS });
});

test('the timeout flags win over their environment variables, which win over the defaults', () => {
  assert.deepEqual(timeoutOptions({}, {}), {});
  assert.deepEqual(timeoutOptions({}, { IMGBUILD_RESPONSE_TIMEOUT: '5s', IMGBUILD_MIN_SPEED: '1MiB' }), { responseMs: 5_000, blobMinBytesPerSecond: 1024 * 1024 });
  assert.deepEqual(timeoutOptions({ responseTimeout: '1m30s', connectTimeout: '500ms' }, { IMGBUILD_RESPONSE_TIMEOUT: '5s' }), { responseMs: 90_000, connectMs: 500 });
  assert.throws(() => timeoutOptions({ idleTimeout: '30' }, {}), /--idle-timeout "30" is not a duration/);
  assert.throws(() => timeoutOptions({}, { IMGBUILD_BLOB_TIMEOUT: 'soon' }), /IMGBUILD_BLOB_TIMEOUT "soon" is not a duration/);
});

test('a delay given to a timer is at most 2^31 - 1 ms, the longest Node keeps (about 24.8 days); shorter ones are as given', () => {
  assert.equal(MAX_TIMER_MS, 2_147_483_647);
  assert.equal(timerDelay(3_600_000_000), 2_147_483_647);
  assert.equal(timerDelay(Infinity), 2_147_483_647);
  assert.equal(timerDelay(2_147_483_647), 2_147_483_647);
  assert.equal(timerDelay(30_000), 30_000);
});

test('timeouts longer than a timer holds (1000h) are waited out as no limit, not fired after 1 ms: the registry image is read', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const img = await makeImage([await makeLayer({ 'etc/patient': 'waited for\n' })]);
  await pushImage(fastClient({}), parseReference(`${proxy.host}/faults/patient:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
  const env = { ...process.env, IMGBUILD_RESPONSE_TIMEOUT: '1000h', IMGBUILD_IDLE_TIMEOUT: '1000h' };
  const r = await runCli(['inspect', `${proxy.host}/faults/patient:1`, '--connect-timeout', '1000h', '--blob-timeout', '1000h', '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no TimeoutOverflowWarning, no retry');
  assert.equal(JSON.parse(r.stdout.toString()).digest, img.manifestDigest);
});

test('--min-speed 1 gives a 3 MB layer a budget of 35 days, past what a timer holds: no limit, the push goes through', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const layer = await makeLayer({ 'data/min-speed': noise(3_000_000, 'min-speed') });
  const img = await makeImage([layer]);
  const layout = await writeLayout(join(work, 'min-speed.oci'), img);
  const r = await runCli(['push', `oci:${layout}`, `${proxy.host}/faults/min-speed:1`, '--min-speed', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), `${proxy.host}/faults/min-speed@${img.manifestDigest}\n`);
  assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning|error\[/);
});

test('a registry that accepts connections and never answers fails the push, saying what it waited for; no digest file', async () => {
  silent = await startSilentServer();
  const img = await makeImage([await makeLayer({ 'etc/silent': 'never answered\n' })]);
  const layout = await writeLayout(join(work, 'silent.oci'), img);
  const digestFile = join(work, 'silent.digest');
  const r = await runCli(['push', `oci:${layout}`, `${silent.host}/faults/silent:1`, '--digest-file', digestFile, '--connect-timeout', '1s', '--response-timeout', '1s']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.toString(), '');
  const waited = `no answer to GET http://${silent.host}/v2/ within 1 s`;
  assert.match(r.stderr, new RegExp(`^waiting: connect to ${silent.host}: ${waited}; retrying in \\d+ ms \\(attempt 2 of 3\\)$`, 'm'));
  assert.match(r.stderr, new RegExp(`^error\\[network\\]: connect to ${silent.host}: cannot reach ${silent.host}: ${waited} \\(3 attempts\\)$`, 'm'));
  assert.match(r.stderr, /^hint: the registry did not answer in time; .*--response-timeout/m);
  await assert.rejects(stat(digestFile), { code: 'ENOENT' });
});

test('a blob PUT the registry takes and never answers is given up after the response timeout and sent again: right digest', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const layer = await makeLayer({ 'data/hung': noise(256 * 1024, 'hung') });
  const img = await makeImage([layer]);
  const notices: RetryNotice[] = [];
  const client = fastClient({ responseMs: 500 }, notices);
  proxy.clearLog();
  proxy.inject({ match: (r) => r.method === 'PUT' && r.query.includes(layer.digest), times: 1, fault: { kind: 'hang' } });
  const result = await pushImage(client, parseReference(`${proxy.host}/faults/hung:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
  assert.equal(result.digest, img.manifestDigest);
  const puts = proxy.requests().filter((r) => r.method === 'PUT' && r.query.includes(layer.digest));
  assert.deepEqual(puts.map((r) => [r.status, r.clientClosed]), [['hang', true], [201, false]]);
  assert.ok(notices.some((n) => n.what.startsWith(`upload blob ${layer.digest}`) && /^no answer to PUT http:\/\/.*\/blobs\/uploads\/.* within 500 ms$/.test(n.reason)), JSON.stringify(notices));
  assert.equal((await client.getManifest({ registry: proxy.host, repository: 'faults/hung' }, '1')).digest, img.manifestDigest);
});

test('a blob PUT whose body the registry stops reading is given up after the idle timeout and sent again: right digest', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  // Larger than the loopback socket buffers, so the stalled reader blocks the writer.
  const big = { ...blobOf(noise(24 * 1024 * 1024, 'stalled-body')), diffId: `sha256:${'0'.repeat(64)}` };
  const img = await makeImage([big]);
  // From a file, read in 64 KiB pieces as a cached layer is.
  const file = join(work, 'stalled-body.blob');
  await writeFile(file, big.bytes);
  const blobs = img.blobs.map((b) => (b.digest === big.digest ? { digest: b.digest, size: b.size, path: file } : b));
  const notices: RetryNotice[] = [];
  const client = fastClient({ idleMs: 500, responseMs: 60_000 }, notices);
  proxy.clearLog();
  proxy.inject({ match: (r) => r.method === 'PUT' && r.query.includes(big.digest), times: 1, fault: { kind: 'stall-request-after', bytes: 1024 * 1024 } });
  const result = await pushImage(client, parseReference(`${proxy.host}/faults/stalled:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs });
  assert.equal(result.digest, img.manifestDigest);
  assert.deepEqual(proxy.requests().filter((r) => r.method === 'PUT' && r.query.includes(big.digest)).map((r) => r.status), ['hang', 201]);
  assert.ok(notices.some((n) => n.reason === 'the registry took no byte of the request body for 500 ms'), JSON.stringify(notices));
});

test('a blob download that stops in the middle is given up after the idle timeout and fetched again: right digest', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const layer = await makeLayer({ 'data/stops': noise(512 * 1024, 'stops') });
  const img = await makeImage([layer]);
  const ref = parseReference(`${proxy.host}/faults/stops:1`);
  const notices: RetryNotice[] = [];
  const client = fastClient({ idleMs: 500 }, notices);
  await pushImage(client, ref, { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
  proxy.clearLog();
  proxy.inject({ match: (r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`), times: 1, fault: { kind: 'stall-response-after', bytes: 100_000 } });
  const blobDir = join(work, 'stops-blobs');
  const pulled = await pullImage(client, ref, { blobDir });
  assert.deepEqual(pulled.layers.map((l) => l.digest), [layer.digest]);
  assert.equal((await stat(join(blobDir, 'sha256', layer.digest.slice(7)))).size, layer.size);
  assert.deepEqual((await readdir(join(blobDir, 'sha256'))).filter((n) => n.includes('.tmp')), []);
  assert.ok(notices.some((n) => n.what.startsWith(`download blob ${layer.digest}`)), JSON.stringify(notices));
});

test('a registry that keeps sending a blob past its size is cut at the size: an error, nothing written, one GET', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const layer = await makeLayer({ 'etc/endless': 'a 358-byte layer, more or less\n' });
  const img = await makeImage([layer]);
  const ref = parseReference(`${proxy.host}/faults/endless:1`);
  const client = fastClient({});
  await pushImage(client, ref, { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
  proxy.clearLog();
  proxy.inject({ match: (r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`), times: 100, fault: { kind: 'endless-body' } });
  const blobDir = join(work, 'endless-blobs');
  await assert.rejects(pullImage(client, ref, { blobDir }), (e: unknown) =>
    e instanceof DigestMismatchError && e.message === `download blob ${layer.digest} from ${proxy.host}/faults/endless: size: expected ${layer.size}, got more than ${layer.size} bytes (the registry kept sending; stopped)`);
  proxy.clearFaults();
  const files = await readdir(join(blobDir, 'sha256'));
  assert.ok(!files.includes(layer.digest.slice(7)) && files.every((n) => !n.includes('.tmp')), files.join(' '));
  assert.equal(proxy.requests().filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`)).length, 1);
});

test('a 429 with Retry-After is waited out with a line on stderr saying so', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const img = await makeImage([await makeLayer({ 'etc/ratelimited': 'wait\n' })]);
  const layout = await writeLayout(join(work, 'ratelimited.oci'), img);
  proxy.inject({
    match: (r) => r.method === 'PUT' && r.path === '/v2/faults/ratelimited/manifests/1', times: 1,
    fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' },
  });
  const r = await runCli(['push', `oci:${layout}`, `${proxy.host}/faults/ratelimited:1`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), `${proxy.host}/faults/ratelimited@${img.manifestDigest}\n`);
  assert.match(r.stderr, new RegExp(`^waiting: put manifest ${img.manifestDigest} as ${proxy.host}/faults/ratelimited:1: the registry answered 429; the registry asked to wait 1 s \\(Retry-After\\) \\(attempt 2 of 6\\)$`, 'm'));
});

test('a layer streamed from one registry to another that stops coming is asked for again, then error[network] after the idle timeouts; no tag at the target', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy, registry } = fixture;
  const layer = await makeLayer({ 'data/through': noise(512 * 1024, 'through') });
  const img = await makeImage([layer]);
  await pushImage(fastClient({}), parseReference(`${proxy.host}/faults/through:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
  proxy.inject({ match: (r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`), times: 100, fault: { kind: 'stall-response-after', bytes: 100_000 } });
  // From the proxy's host to the registry's own (another host:port, so no mount): the layer streams through.
  const r = await runCli(['push', `docker://${proxy.host}/faults/through:1`, `${registry.host}/faults/copied:1`, '--idle-timeout', '500ms']);
  proxy.clearFaults();
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[network\\]: get blob ${layer.digest} from ${proxy.host}/faults/through: the download broke off after \\d+ bytes: the answer stopped coming \\(no byte within the idle timeout\\) \\(3 attempts\\)$`, 'm'));
  // Each new attempt is said first (timeouts: 2 retries).
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith(`waiting: get blob ${layer.digest} from ${proxy.host}/faults/through: the download broke off after `)).length, 2);
  const c = fastClient({});
  await assert.rejects(c.getManifest({ registry: registry.host, repository: 'faults/copied' }, '1'), /answered 404/);
});

test('a timeout that does not parse is a usage error before anything is built or sent', async () => {
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '--push', '127.0.0.1:9/never/reached:1', '--response-timeout', 'soon']);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, 'error[usage]: --response-timeout "soon" is not a duration\nhint: e.g. --response-timeout 30s (units: ms, s, m, h)\n');
});
