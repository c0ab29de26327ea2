// For Nix users (issue 18): `perms`, `exclude` and `nixUid`/`nixGid` against a real (isolated)
// Nix 2.8 store, checked in what umoci unpacks.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { makeTestNix, shDrv, type TestNix } from './helpers/nix.js';
import { toolFixture } from './helpers/tools.js';

let nix: TestNix;
let app: string;
let lib: string;
let docs: string;

/** `app` references `lib` (needed) and `docs` (only named in a file: what one would exclude). */
const nixStore = toolFixture(['nix-store', 'nix-build'], () => {
  nix = makeTestNix();
  lib = nix.add('lib', { 'lib/libx': 'a library\n' });
  docs = nix.add('docs', { 'share/doc/README': 'documentation\n' });
  app = nix.build(
    `let
      lib = builtins.storePath ${JSON.stringify(lib)};
      docs = builtins.storePath ${JSON.stringify(docs)};
      app = ${shDrv(
        'app',
        'mkdir -p $out/bin $out/data $out/etc; printf "#!/bin/sh\\ncat ${lib}/lib/libx\\n" > $out/bin/app; chmod +x $out/bin/app; printf "${docs}\\n" > $out/etc/docs-at; printf x > $out/data/state',
      )};
    in { inherit app; }`,
    'app',
  );
});

after(() => nix?.cleanup());

let n = 0;
function spec(extra: Record<string, unknown>): string {
  const file = join(nix.root, `image-${n++}.json`);
  writeFileSync(file, JSON.stringify({ name: 'nix-users/app', architecture: 'amd64', tag: 'v1', store: { storeDir: nix.storeDir }, contents: [app], ...extra }));
  return file;
}

async function build(specFile: string, out: string): Promise<string> {
  const r = await runCli(['build', specFile, '--nix', '-o', out, '--json'], { env: nix.env });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout.toString()) as { digest: string }).digest;
}

async function unpack(out: string): Promise<string> {
  const bundle = `${out}-bundle`;
  await tool('umoci', ['unpack', '--image', `${out}:v1`, bundle]);
  return join(bundle, 'rootfs');
}

const PERMS = () => [
  { path: app, regex: '/bin/app$', mode: '4755', uid: 0, gid: 0 },
  { path: app, regex: '/data$', uid: 1000, gid: 1000 },
];

test('perms: after umoci unpack, the store file is 4755 owned by 0:0 and the store directory (and its copyToRoot twin) 1000:1000', async (t) => {
  if (!(await nixStore.need(t, 'umoci'))) return;
  const out = join(nix.root, 'perms.oci');
  await build(spec({ perms: PERMS(), copyToRoot: [app] }), out);
  const rootfs = await unpack(out);
  const file = lstatSync(join(rootfs, app, 'bin/app'));
  assert.equal(file.mode & 0o7777, 0o4755);
  assert.deepEqual([file.uid, file.gid], [0, 0]);
  const dir = lstatSync(join(rootfs, app, 'data'));
  assert.deepEqual([dir.isDirectory(), dir.uid, dir.gid, dir.mode & 0o7777], [true, 1000, 1000, 0o555]);
  // Only what the regex finds: the file inside the directory keeps the store's owner and mode.
  const inside = lstatSync(join(rootfs, app, 'data/state'));
  assert.deepEqual([inside.uid, inside.gid, inside.mode & 0o7777], [0, 0, 0o444]);
  // copyToRoot's /data directory came from the same store path: the rule applies to it too.
  const linkedDir = lstatSync(join(rootfs, 'data'));
  assert.deepEqual([linkedDir.isDirectory(), linkedDir.uid, linkedDir.gid], [true, 1000, 1000]);
  assert.equal(lstatSync(join(rootfs, 'bin/app')).isSymbolicLink(), true);
});

test('perms: two builds (each with an empty cache) give one digest, and another rule another digest', async (t) => {
  if (!(await nixStore.need(t))) return;
  const a = await build(spec({ perms: PERMS() }), join(nix.root, 'perms-a.oci'));
  const b = await build(spec({ perms: PERMS() }), join(nix.root, 'perms-b.oci'));
  assert.equal(a, b);
  const other = await build(spec({ perms: [{ ...PERMS()[0]!, mode: '0755' }, PERMS()[1]] }), join(nix.root, 'perms-c.oci'));
  assert.notEqual(other, a);
});

test('perms: a rule that matches nothing is refused, naming the rule, and nothing is written', async (t) => {
  if (!(await nixStore.need(t))) return;
  const out = join(nix.root, 'perms-none.oci');
  const r = await runCli(['build', spec({ perms: [PERMS()[0], { path: app, regex: '/bin/sudo$', mode: '4755' }] }), '--nix', '-o', out], { env: nix.env });
  assert.equal(r.code, 1);
  assert.match(r.stderr.toString(), /^error\[spec\]: .*: perms\[1\]: the rule \(path .*-app, regex "\/bin\/sudo\$"\) matches nothing: no file under .*-app matches the regex\nhint: /m);
  assert.equal(existsSync(out), false);
  // A rule for a store path that is not in the closure, too.
  const r2 = await runCli(['build', spec({ perms: [{ path: docs, regex: '.*', mode: '0700' }], exclude: [docs] }), '--nix', '-o', out], { env: nix.env });
  assert.equal(r2.code, 1);
  assert.match(r2.stderr.toString(), /perms\[0\]: the rule .* matches nothing: .*-docs is not in the image's closure \(it is in `exclude`\)/);
});

test('exclude: the excluded path is absent from the closure listing and the image; what it does not hold stays', async (t) => {
  if (!(await nixStore.need(t, 'umoci'))) return;
  const file = spec({ exclude: [docs] });
  const full = JSON.parse((await runCli(['closure', spec({}), '--nix', '--json'], { env: nix.env })).stdout.toString()) as { paths: { path: string }[] };
  assert.deepEqual(full.paths.map((p) => p.path).sort(), [app, docs, lib].sort());
  const listed = await runCli(['closure', file, '--nix', '--json'], { env: nix.env });
  assert.equal(listed.code, 0, listed.stderr);
  const closure = JSON.parse(listed.stdout.toString()) as { paths: { path: string; references: string[] }[] };
  assert.deepEqual(closure.paths.map((p) => p.path).sort(), [app, lib].sort());
  // References to it are dropped with it.
  assert.deepEqual(closure.paths.find((p) => p.path === app)!.references.filter((r) => r !== app), [lib]);
  assert.equal(closure.paths.some((p) => p.references.includes(docs)), false);
  const out = join(nix.root, 'exclude.oci');
  await build(file, out);
  const rootfs = await unpack(out);
  assert.equal(existsSync(join(rootfs, docs)), false);
  assert.equal(existsSync(join(rootfs, lib, 'lib/libx')), true);
  assert.equal(existsSync(join(rootfs, app, 'bin/app')), true);
});

test('exclude: a path copyToRoot needs, or one not in the closure, is refused naming it', async (t) => {
  if (!(await nixStore.need(t))) return;
  const needed = await runCli(['build', spec({ copyToRoot: [app], exclude: [lib] }), '--nix', '-o', join(nix.root, 'x.oci')], { env: nix.env });
  assert.equal(needed.code, 1);
  assert.match(needed.stderr.toString(), new RegExp(`exclude\\[0\\]: ${lib} cannot be excluded: copyToRoot needs it: ${app} → ${lib}`));
  const absent = await runCli(['closure', spec({ contents: [lib], exclude: [docs] }), '--nix'], { env: nix.env });
  assert.equal(absent.code, 1);
  assert.match(absent.stderr.toString(), new RegExp(`exclude\\[0\\]: ${docs} is not in the closure of contents and copyToRoot`));
});

test('nixUid/nixGid own /nix, /nix/store and the store entries; the customisation layer keeps uid/gid', async (t) => {
  if (!(await nixStore.need(t, 'umoci'))) return;
  const out = join(nix.root, 'nixuid.oci');
  await build(spec({ nixUid: 1000, nixGid: 100, copyToRoot: [app], files: [{ path: '/etc/motd', content: 'hi\n' }] }), out);
  const rootfs = await unpack(out);
  const owner = (p: string) => {
    const st = lstatSync(join(rootfs, p));
    return [st.uid, st.gid];
  };
  // The directories above the store (here the test store's, /tmp/…/store, in place of /nix/store).
  const parents = nix.storeDir.slice(1).split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  for (const p of [...parents, app.slice(1), `${app.slice(1)}/bin/app`, `${lib.slice(1)}/lib/libx`]) assert.deepEqual(owner(p), [1000, 100], p);
  for (const p of ['etc/motd', 'bin', 'data']) assert.deepEqual(owner(p), [0, 0], p);
});
