// The library's errors have one shape: every function of `imgbuild` rejects with an ImgbuildError
// (code, message, hint), a registry's failure included (the registry client's RegistryError is
// its `cause`), and a JavaScript caller passing the wrong thing gets error[usage] naming the
// function and the argument, with a hint naming the right call, never a TypeError from inside.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient, RegistryError, RegistryHttpError, RegistryNetworkError } from '../registry-client/index.js';
import {
  buildImage, defineImage, diffImages, imageReferrers, ImgbuildError, layerFiles, openArtifact, openImage, OutputError, pushImage, pushReferrers,
  readLayerFile, resolveSpec, streamDockerArchive, writeDockerArchive, writeImage, writeOciArchive, writeOciLayout, type Image,
} from '../builder/index.js';
import { freePort, makeImage, makeLayer } from './helpers/registry.js';
import { startHostileRegistry, writeLayout, type HostileServer } from './helpers/hostile-registry.js';
import { tempDir } from './helpers/tmp.js';

let work: string;
let image: Image;
const clients: RegistryClient[] = [];
const servers: HostileServer[] = [];
before(async () => {
  work = await tempDir('imgbuild-library-errors-');
  const layout = await writeLayout(join(work, 'app.oci'), await makeImage([await makeLayer({ 'etc/motd': 'hello\n' })]));
  image = await openImage(`oci:${layout}`);
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.stop()));
});

function client(): RegistryClient {
  const c = new RegistryClient({ credentials: async () => undefined, retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } });
  clients.push(c);
  return c;
}

/** An ImgbuildError of `code` whose cause is the registry client's error of that code (`cause` checks it further). */
function libraryError(code: string, cause: (e: RegistryError) => boolean = () => true) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof ImgbuildError, `an ImgbuildError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.cause instanceof RegistryError && e.cause.code === code && cause(e.cause), `caused by the registry client's ${code} error: ${String(e.cause)}`);
    assert.equal(e.message, e.cause.message);
    assert.equal(e.hint, e.cause.hint);
    return true;
  };
}

test('a registry nobody listens on: pushImage and openImage both reject with ImgbuildError code network (the RegistryNetworkError as its cause)', async () => {
  const host = `127.0.0.1:${await freePort()}`;
  await assert.rejects(pushImage(client(), `${host}/demo/app:1`, image), libraryError('network', (e) => e instanceof RegistryNetworkError));
  await assert.rejects(openImage(`docker://${host}/demo/app:1`, { registry: client() }), libraryError('network', (e) => e instanceof RegistryNetworkError));
});

test('a registry answering 500: pushImage, openImage, imageReferrers and pushReferrers all reject with ImgbuildError code registry-http', async () => {
  const broken = await startHostileRegistry((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"broken on purpose"}]}');
  });
  servers.push(broken);
  const is500 = (e: RegistryError) => e instanceof RegistryHttpError && e.status === 500;
  await assert.rejects(pushImage(client(), `${broken.host}/demo/app:1`, image), libraryError('registry-http', is500));
  await assert.rejects(openImage(`docker://${broken.host}/demo/app:1`, { registry: client() }), libraryError('registry-http', is500));
  await assert.rejects(imageReferrers(`docker://${broken.host}/demo/app:1`, image.descriptor.digest, { registry: client() }), libraryError('registry-http', is500));
  const { sbomArtifact } = await import('../builder/index.js');
  const artifact = sbomArtifact(image, 'spdx', Buffer.from('{}'), '2024-01-01T00:00:00Z');
  await assert.rejects(pushReferrers(client(), { registry: broken.host, repository: 'demo/app' }, [artifact]), libraryError('registry-http', is500));
});

test('a reference that is not one: pushImage rejects with ImgbuildError code reference (not the client\'s InvalidReferenceError)', async () => {
  await assert.rejects(pushImage(client(), 'Bad Ref!!', image), libraryError('reference'));
});

test('writeImage with an unknown format is an OutputError naming the format and the valid ones, and writes nothing', async () => {
  const out = join(work, 'unknown-format');
  await assert.rejects(writeImage(image, 'oci-layout' as never, out), (e: unknown) => {
    assert.ok(e instanceof OutputError, String(e));
    assert.equal(e.code, 'output');
    assert.match(e.message, /unknown output format 'oci-layout'/);
    assert.match(e.message, /oci, oci-archive, docker-archive/);
    assert.match(e.hint ?? '', /'oci', 'oci-archive', 'docker-archive'/);
    return true;
  });
  assert.equal(existsSync(out), false);
});

/** error[usage] from `fn`, its message naming `argument`, its hint matching `hint`. */
function usage(fn: string, argument: RegExp, hint: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof ImgbuildError && !(e instanceof TypeError), `an ImgbuildError, got ${String(e)}`);
    assert.equal(e.code, 'usage', e.message);
    assert.ok(e.message.startsWith(`${fn}(): `), e.message);
    assert.match(e.message, argument);
    assert.match(e.hint ?? '', hint);
    return true;
  };
}

test('buildImage of a spec that was not resolved says to pass it through resolveSpec() or loadSpec() first', async () => {
  const spec = defineImage({ name: 'demo/app', architecture: 'amd64' });
  await assert.rejects(buildImage(spec as never), usage('buildImage', /the spec is not resolved/, /resolveSpec\(\) or loadSpec\(\)/));
  await assert.rejects(buildImage(undefined as never), usage('buildImage', /the spec must be a resolved spec, got undefined/, /resolveSpec\(\)/));
});

test('resolveSpec without options.file says what it needs, not a TypeError from inside', () => {
  const spec = defineImage({ name: 'demo/app', architecture: 'amd64' });
  assert.throws(() => resolveSpec(spec, undefined as never), usage('resolveSpec', /options\.file must be the spec file's path .*, got undefined$/, /loadSpec\(file\)/));
  assert.throws(() => resolveSpec(spec, { file: '' }), usage('resolveSpec', /got an empty string$/, /resolveSpec\(spec, \{ file: /));
});

test('buildImage refuses context fields of the wrong kind, naming them, before it builds anything', async () => {
  const spec = resolveSpec(defineImage({ name: 'demo/app', architecture: 'amd64' }), { file: join(work, 'image.ts') });
  await assert.rejects(buildImage(spec, { workers: 'x' as never }), usage('buildImage', /context\.workers must be true, false or a whole number/, /workers/));
  await assert.rejects(buildImage(spec, { signal: 'x' as never }), usage('buildImage', /context\.signal must be an AbortSignal .*, got a string \("x"\)/, /signal/));
  await assert.rejects(buildImage(spec, { concurrency: 0 }), usage('buildImage', /context\.concurrency must be a whole number of at least 1/, /concurrency/));
  await assert.rejects(buildImage(spec, 'ctx' as never), usage('buildImage', /context must be an object/, /context/));
});

test('the image functions refuse a missing or wrong argument with error[usage] naming it', async () => {
  const layer = image.layers[0]!;
  const cases: [string, () => Promise<unknown>, RegExp, RegExp][] = [
    ['openImage', () => openImage(undefined as never), /the image argument must be a string .* got undefined/, /openImage\('oci:/],
    ['openImage', () => openImage(123 as never), /got a number \(123\)/, /parseImageRef/],
    ['openArtifact', () => openArtifact('oci:x', { signal: 'x' as never }), /options\.signal must be an AbortSignal/, /signal/],
    ['openImage', () => openImage('docker://localhost/x', { registry: 'x' as never }), /options\.registry must be a RegistryClient/, /RegistryClient/],
    ['diffImages', () => diffImages(image, undefined as never), /the second image must be an Image, got undefined/, /openImage\(\)/],
    ['layerFiles', () => layerFiles(undefined as never), /the layer must be a Layer, got undefined/, /\.layers\[i\]/],
    ['readLayerFile', () => readLayerFile(layer, 123 as never), /the path must be a non-empty string, got a number/, /readLayerFile\(layer, '\/etc/],
    ['pushImage', () => pushImage(undefined as never, 'localhost/x:1', image), /the client must be a RegistryClient, got undefined/, /new RegistryClient\(\)/],
    ['pushImage', () => pushImage(client(), undefined as never, image), /the reference must be a string/, /pushImage\(client,/],
    ['pushImage', () => pushImage(client(), 'localhost/x:1', undefined as never), /the image must be an Image or an Index, got undefined/, /openImage\(\)/],
    ['imageReferrers', () => imageReferrers('oci:x', 'latest' as never), /the subject must be an image's manifest digest/, /descriptor\.digest/],
    ['pushReferrers', () => pushReferrers(client(), 'localhost/x' as never, []), /the reference must be \{ registry, repository \}/, /repository/],
    ['writeOciLayout', () => writeOciLayout(image, ''), /the output path must be a non-empty string, got an empty string/, /writeOciLayout\(image, /],
    ['writeOciLayout', () => writeOciLayout(image, join(work, 'bad-ref.oci'), { ref: 'Bad Ref!!' }), /naming\.ref must be an image name and tag .*"Bad Ref!!"/, /registry\/repository:tag/],
    ['writeOciArchive', () => writeOciArchive(undefined as never, join(work, 'x.tar')), /the image must be an Image or an Index, got undefined/, /openImage\(\)/],
    ['writeDockerArchive', () => writeDockerArchive(image, join(work, 'x.tar'), { ref: 'demo/App:1' }), /naming\.ref.*must be lowercase/, /lowercase/],
    ['streamDockerArchive', () => streamDockerArchive(image, undefined as never), /the output must be a writable stream/, /process\.stdout/],
    ['writeImage', () => writeImage(image, 'oci', join(work, 'x.oci'), {}, { signal: {} as never }), /options\.signal must be an AbortSignal .*, got an object/, /signal/],
  ];
  for (const [fn, call, argument, hint] of cases) await assert.rejects(call(), usage(fn, argument, hint), `${fn}: ${argument}`);
  // Nothing was written for a refused ref, and a good one is written as given.
  assert.equal(existsSync(join(work, 'bad-ref.oci')), false);
  await writeOciLayout(image, join(work, 'good-ref.oci'), { ref: 'localhost:5000/demo/app:1.0' });
  assert.match(await readFile(join(work, 'good-ref.oci/index.json'), 'utf8'), /"org\.opencontainers\.image\.ref\.name":"1\.0"/);
});
