import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { customisationEntries } from '../builder/customisation/entries.js';
import { SpecError } from '../builder/errors.js';
import type { LayerEntry } from '../builder/layer/types.js';
import { resolveSpec } from '../builder/spec/resolve.js';
import type { ImageSpec } from '../builder/spec/types.js';
import { repoRoot } from './helpers/paths.js';

const fixtures = join(repoRoot, 'test/fixtures/spec');
const fixtureStore = join(fixtures, 'store');
const BUSYBOX = '/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1';
const HELLO = '/nix/store/9x3l1dx4mmgkgyl5pxhq8j2dzbsbz2ns-hello-2.12.1';
const specFile = join(fixtures, 'image.json');

function spec(input: ImageSpec) {
  return resolveSpec(input, { file: specFile, env: {} });
}

/** Store paths live in a directory on disk under their base names. */
const inDir = (dir: string) => (storePath: string) => join(dir, basename(storePath));

const dir = (path: string, mode = 0o755, extra: Partial<LayerEntry> = {}): LayerEntry => ({ kind: 'directory', path, mode, ...extra }) as LayerEntry;
const link = (path: string, target: string): LayerEntry => ({ kind: 'symlink', path, target });
const text = (path: string, content: string, mode = 0o644): LayerEntry => ({ kind: 'file', path, mode, content: { from: 'bytes', data: Buffer.from(content) } });

test('copyToRoot + users/groups + /tmp 1777 give exactly these entries, in tar order', async () => {
  const entries = await customisationEntries(
    spec({
      name: 'demo',
      copyToRoot: [BUSYBOX, HELLO],
      users: [{ name: 'app', uid: 1000 }],
      groups: [{ name: 'wheel', gid: 10, members: ['app'] }],
      directories: [{ path: '/tmp', mode: '1777' }, { path: '/home/app', uid: 1000, gid: 1000 }],
      files: [{ path: '/etc/motd', content: 'hi\n' }],
      symlinks: [{ path: '/usr/bin/env', target: '/bin/busybox' }],
    }),
    inDir(fixtureStore),
  );
  assert.deepEqual(entries, [
    dir('bin'),
    link('bin/busybox', `${BUSYBOX}/bin/busybox`),
    link('bin/hello', `${HELLO}/bin/hello`),
    link('bin/ls', `${BUSYBOX}/bin/ls`),
    link('bin/sh', `${BUSYBOX}/bin/sh`),
    dir('etc'),
    text('etc/group', 'root:x:0:\nwheel:x:10:app\napp:x:1000:\nnobody:x:65534:\n'),
    link('etc/hello.conf', `${HELLO}/etc/hello.conf`),
    text('etc/motd', 'hi\n'),
    text(
      'etc/nsswitch.conf',
      'passwd:    files\ngroup:     files\nshadow:    files\nhosts:     files dns\nnetworks:  files\nprotocols: files\nservices:  files\nethers:    files\nrpc:       files\n',
    ),
    text('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/var/empty:/bin/sh\nnobody:x:65534:65534:nobody:/var/empty:/bin/sh\n'),
    text('etc/shadow', 'root:!:::::::\napp:!:::::::\nnobody:!:::::::\n', 0o640),
    dir('home'),
    dir('home/app', 0o755, { uid: 1000, uname: 'app', gid: 1000, gname: 'app' }),
    dir('share'),
    dir('share/doc'),
    dir('share/doc/hello'),
    link('share/doc/hello/README', `${HELLO}/share/doc/hello/README`),
    dir('tmp', 0o1777),
    dir('usr'),
    dir('usr/bin'),
    link('usr/bin/env', '/bin/busybox'),
  ]);
});

test('a spec without copyToRoot, users or groups has an empty customisation layer', async () => {
  assert.deepEqual(await customisationEntries(spec({ name: 'empty' }), inDir(fixtureStore)), []);
});

test('pathsToLink links only the named subtrees, with their parents as directories', async () => {
  const entries = await customisationEntries(spec({ name: 'x', copyToRoot: [HELLO], pathsToLink: ['/bin', '/share/doc'] }), inDir(fixtureStore));
  assert.deepEqual(entries, [
    dir('bin'),
    link('bin/hello', `${HELLO}/bin/hello`),
    dir('share'),
    dir('share/doc'),
    dir('share/doc/hello'),
    link('share/doc/hello/README', `${HELLO}/share/doc/hello/README`),
  ]);
});

test('siblings are ordered by name bytes, depth first: a, a/x, a.txt, b', async () => {
  const entries = await customisationEntries(
    spec({ name: 'x', files: [{ path: '/b', content: '' }, { path: '/a.txt', content: '' }, { path: '/a/x', content: '' }, { path: '/a-1', content: '' }] }),
    inDir(fixtureStore),
  );
  assert.deepEqual(
    entries.map((e) => e.path),
    ['a', 'a/x', 'a-1', 'a.txt', 'b'],
  );
});

test('files: mode as octal string, per-entry owner named from users, unknown ids get an empty name', async () => {
  const entries = await customisationEntries(
    spec({
      name: 'x',
      users: [{ name: 'web', uid: 33, gid: 33 }],
      files: [
        { path: '/srv/a', content: 'a', mode: '0600', uid: 33, gid: 33 },
        { path: '/srv/b', content: 'b', mode: 0o4755, uid: 4242 },
      ],
    }),
    inDir(fixtureStore),
  );
  const srv = entries.filter((e) => e.path.startsWith('srv/'));
  assert.deepEqual(srv, [
    { ...text('srv/a', 'a', 0o600), uid: 33, uname: 'web', gid: 33, gname: 'web' },
    { ...text('srv/b', 'b', 0o4755), uid: 4242, uname: '' },
  ]);
});

test('files from the host: relative to the spec, 0755 when owner-executable, else 0644, size recorded', async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'imgbuild-spec-'));
  t.after(() => rm(tmp, { recursive: true, force: true }));
  await writeFile(join(tmp, 'run.sh'), '#!/bin/sh\n');
  await chmod(join(tmp, 'run.sh'), 0o700);
  await writeFile(join(tmp, 'data.txt'), 'twelve bytes');
  await chmod(join(tmp, 'data.txt'), 0o600);
  const resolved = resolveSpec(
    { name: 'x', files: [{ path: '/app/run.sh', source: 'run.sh' }, { path: '/app/data.txt', source: './data.txt' }] },
    { file: join(tmp, 'spec.yaml'), env: {} },
  );
  const entries = await customisationEntries(resolved, inDir(fixtureStore));
  assert.deepEqual(entries, [
    dir('app'),
    { kind: 'file', path: 'app/data.txt', mode: 0o644, content: { from: 'disk', fsPath: join(tmp, 'data.txt'), size: 12 } },
    { kind: 'file', path: 'app/run.sh', mode: 0o755, content: { from: 'disk', fsPath: join(tmp, 'run.sh'), size: 10 } },
  ]);
});

test('a missing source file is a SpecError naming the field and the host path', async () => {
  const resolved = spec({ name: 'x', files: [{ path: '/a', source: 'nope.txt' }] });
  await assert.rejects(customisationEntries(resolved, inDir(fixtureStore)), (e: unknown) => {
    assert.ok(e instanceof SpecError);
    assert.equal(e.message, `${specFile}: files[0].source: ${join(fixtures, 'nope.txt')}: no such file`);
    return true;
  });
});

test('a spec entry replaces what copyToRoot linked at the same path', async () => {
  const entries = await customisationEntries(
    spec({ name: 'x', copyToRoot: [HELLO], pathsToLink: ['/etc'], files: [{ path: '/etc/hello.conf', content: 'greeting = hi\n' }] }),
    inDir(fixtureStore),
  );
  assert.deepEqual(entries, [dir('etc'), text('etc/hello.conf', 'greeting = hi\n')]);
});

test('a directories entry sets the mode of a directory copyToRoot creates', async () => {
  const entries = await customisationEntries(spec({ name: 'x', copyToRoot: [HELLO], pathsToLink: ['/bin'], directories: [{ path: '/bin', mode: '0555' }] }), inDir(fixtureStore));
  assert.deepEqual(entries, [dir('bin', 0o555), link('bin/hello', `${HELLO}/bin/hello`)]);
});

async function rejectsWith(input: ImageSpec, message: string, fsPathOf = inDir(fixtureStore)) {
  await assert.rejects(customisationEntries(spec(input), fsPathOf), (e: unknown) => {
    assert.ok(e instanceof SpecError, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

test('two spec entries for one path: an error naming both', async () => {
  await rejectsWith(
    { name: 'x', files: [{ path: '/etc/hosts', content: '' }], symlinks: [{ path: '/etc/hosts', target: '/run/hosts' }] },
    `${specFile}: files[0] and symlinks[0] both define /etc/hosts`,
  );
});

test('a file at a generated /etc path is a conflict, not a silent override', async () => {
  await rejectsWith(
    { name: 'x', users: [{ name: 'app', uid: 1 }], files: [{ path: '/etc/passwd', content: 'x' }] },
    `${specFile}: the /etc/passwd generated from \`users\`/\`groups\` and files[0] both define /etc/passwd`,
  );
});

test('an entry inside a file or a symlink: an error naming both', async () => {
  await rejectsWith(
    { name: 'x', symlinks: [{ path: '/opt', target: '/usr' }], files: [{ path: '/opt/app', content: '' }] },
    `${specFile}: files[0] puts /opt/app inside /opt, which symlinks[0] makes a symlink`,
  );
  await rejectsWith(
    { name: 'x', copyToRoot: [HELLO], files: [{ path: '/bin/hello/x', content: '' }] },
    `${specFile}: files[0] puts /bin/hello/x inside /bin/hello, which copyToRoot ${HELLO} makes a symlink`,
  );
});

test('replacing a copyToRoot directory with a file is refused (its links would be orphaned)', async () => {
  await rejectsWith(
    { name: 'x', copyToRoot: [HELLO], pathsToLink: ['/bin'], files: [{ path: '/bin', content: '' }] },
    `${specFile}: copyToRoot ${HELLO} puts /bin/hello inside /bin, which files[0] makes a file`,
  );
});

async function tempStore(t: { after: (fn: () => Promise<void>) => void }) {
  const root = await mkdtemp(join(tmpdir(), 'imgbuild-store-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return root;
}

const A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a';
const B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b';
const C = '/nix/store/cccccccccccccccccccccccccccccccc-c';

test('two packages providing the same file: an error naming both', async (t) => {
  const root = await tempStore(t);
  for (const [p, body] of [[A, 'one'], [B, 'two']] as const) {
    await mkdir(join(root, basename(p), 'bin'), { recursive: true });
    await writeFile(join(root, basename(p), 'bin/tool'), body);
  }
  await rejectsWith(
    { name: 'x', copyToRoot: [A, B] },
    `${specFile}: copyToRoot: /bin/tool is provided by both ${A} and ${B}; remove one from copyToRoot or narrow pathsToLink`,
    inDir(root),
  );
});

test('identical collisions are allowed: same bytes, or symlinks to the same target; the first package wins', async (t) => {
  const root = await tempStore(t);
  for (const p of [A, B, C]) await mkdir(join(root, basename(p), 'bin'), { recursive: true });
  await writeFile(join(root, basename(A), 'bin/same'), 'identical');
  await writeFile(join(root, basename(B), 'bin/same'), 'identical');
  await symlink(`${C}/bin/real`, join(root, basename(A), 'bin/shared'));
  await symlink(`${C}/bin/real`, join(root, basename(B), 'bin/shared'));
  const entries = await customisationEntries(spec({ name: 'x', copyToRoot: [A, B] }), inDir(root));
  assert.deepEqual(entries, [dir('bin'), link('bin/same', `${A}/bin/same`), link('bin/shared', `${A}/bin/shared`)]);
});

test('a path that is a directory in one package and a file in another: an error naming both', async (t) => {
  const root = await tempStore(t);
  await mkdir(join(root, basename(A), 'lib'), { recursive: true });
  await mkdir(join(root, basename(B)), { recursive: true });
  await writeFile(join(root, basename(B), 'lib'), '');
  await rejectsWith(
    { name: 'x', copyToRoot: [A, B] },
    `${specFile}: copyToRoot: /lib is a directory in ${A} but not in ${B}; they cannot both be linked into /`,
    inDir(root),
  );
});

test('a copyToRoot path missing from the store, or a single file, is an error', async (t) => {
  const root = await tempStore(t);
  await writeFile(join(root, basename(B)), 'just a file');
  await rejectsWith({ name: 'x', copyToRoot: [A] }, `${specFile}: copyToRoot: ${A} is not in the store (looked at ${join(root, basename(A))})`, inDir(root));
  await rejectsWith({ name: 'x', copyToRoot: [B] }, `${specFile}: copyToRoot: ${B} is a single file, not a directory; there is nothing to link into /`, inDir(root));
});

test('like buildEnv, Nix metadata, info/dir, MIME caches, perllocal.pod and log are never linked', async (t) => {
  const root = await tempStore(t);
  for (const p of [A, B]) {
    const pkg = join(root, basename(p));
    for (const d of ['nix-support', 'bin', 'share/info', 'share/mime/packages', 'share/mime/text', 'lib/perl5', 'var/log']) await mkdir(join(pkg, d), { recursive: true });
    await writeFile(join(pkg, 'nix-support/propagated-build-inputs'), p);
    await writeFile(join(pkg, 'propagated-build-inputs'), p);
    await writeFile(join(pkg, 'share/info/dir'), p);
    await writeFile(join(pkg, 'share/mime/mime.cache'), p);
    await writeFile(join(pkg, 'share/mime/text/plain.xml'), p);
    await writeFile(join(pkg, 'lib/perl5/perllocal.pod'), p);
    await writeFile(join(pkg, `bin/tool-${basename(p).slice(-1)}`), '');
  }
  await writeFile(join(root, basename(A), 'share/mime/packages/a.xml'), '');
  const entries = await customisationEntries(spec({ name: 'x', copyToRoot: [A, B] }), inDir(root));
  assert.deepEqual(entries, [
    dir('bin'),
    link('bin/tool-a', `${A}/bin/tool-a`),
    link('bin/tool-b', `${B}/bin/tool-b`),
    dir('lib'),
    dir('lib/perl5'),
    dir('share'),
    dir('share/info'),
    dir('share/mime'),
    dir('share/mime/packages'),
    link('share/mime/packages/a.xml', `${A}/share/mime/packages/a.xml`),
    dir('var'),
  ]);
});

test('a copyToRoot file whose name is not valid UTF-8 is the store layer\'s layer-content error, with its bytes', async (t) => {
  const root = await tempStore(t);
  const bin = join(root, basename(A), 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'good'), '');
  await writeFile(Buffer.concat([Buffer.from(`${bin}/bad-`), Buffer.from([0xff, 0xfe])]), 'x');
  await assert.rejects(customisationEntries(spec({ name: 'x', copyToRoot: [A] }), inDir(root)), {
    name: 'LayerContentError',
    code: 'layer-content',
    message: `${bin}/bad-\u00ff\u00fe has a name that is not valid UTF-8 (bytes 6261642dfffe); layer paths must be UTF-8`,
  });
});

test('a copyToRoot symlink whose target is not valid UTF-8 is a layer-content error', async (t) => {
  const root = await tempStore(t);
  const bin = join(root, basename(A), 'bin');
  await mkdir(bin, { recursive: true });
  await symlink(Buffer.from([0x78, 0xff]), join(bin, 'tool'));
  await assert.rejects(customisationEntries(spec({ name: 'x', copyToRoot: [A] }), inDir(root)), {
    name: 'LayerContentError',
    message: `symlink ${bin}/tool has a target that is not valid UTF-8 (bytes 78ff)`,
  });
});
