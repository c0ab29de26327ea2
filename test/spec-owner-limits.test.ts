// Owner ids and names are validated against what a tar header holds (the layer writer's limits):
// a spec that validates never fails mid-build on an owner, and one that would is refused with the
// spec file and the field.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeHeader, MAX_ID, type TarHeaderFields } from '../builder/layer/tar-header.js';
import { MAX_OWNER_ID, MAX_OWNER_NAME, ownerNameProblem } from '../builder/spec/schema.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { specProblems } from './helpers/spec-problems.js';

const file = '/specs/image.json';
const NAME_31 = 'a'.repeat(31);
const NAME_32 = 'b'.repeat(32);

/** The problems of a spec, as `field: message` lines. */
function problems(input: Record<string, unknown>): string[] {
  return specProblems({ name: 'app', ...input }, { file, env: {} });
}

const header: TarHeaderFields = { path: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 1, size: 0 };

test("the spec's owner id limit is the tar writer's", () => {
  assert.equal(MAX_OWNER_ID, MAX_ID);
  assert.doesNotThrow(() => encodeHeader({ ...header, uid: MAX_OWNER_ID, gid: MAX_OWNER_ID }));
  assert.throws(() => encodeHeader({ ...header, uid: MAX_OWNER_ID + 1 }));
});

test("the spec's owner name rule is the tar writer's: 31 ASCII characters pass both, 32, non-ASCII or NUL neither", () => {
  for (const name of ['', 'root', NAME_31, '\x7f']) {
    assert.equal(ownerNameProblem(name), undefined, name);
    assert.doesNotThrow(() => encodeHeader({ ...header, uname: name, gname: name }), name);
  }
  for (const name of [NAME_32, 'üser', 'a\0b']) {
    assert.notEqual(ownerNameProblem(name), undefined, name);
    assert.throws(() => encodeHeader({ ...header, uname: name }), name);
  }
  assert.equal(MAX_OWNER_NAME, 31);
});

test('every owner id field is refused above 2097151, saying why', () => {
  const why = 'must be at most 2097151 (the largest owner id a tar header holds), got 2097152';
  assert.deepEqual(
    problems({
      uid: 2097152,
      gid: 2097152,
      nixUid: 2097152,
      nixGid: 2097152,
      files: [{ path: '/f', content: '', uid: 2097152, gid: 2097152 }],
      directories: [{ path: '/d', uid: 2097152, gid: 2097152 }],
      perms: [{ path: '/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1', regex: '.*', uid: 2097152, gid: 2097152 }],
    }),
    ['uid', 'gid', 'files[0].uid', 'files[0].gid', 'directories[0].uid', 'directories[0].gid', 'perms[0].uid', 'perms[0].gid', 'nixUid', 'nixGid'].map((f) => `${f}: ${why}`),
  );
});

test('owner ids up to 2097151 are accepted', () => {
  assert.deepEqual(problems({ uid: 2097151, gid: 2097151, nixUid: 2097151, files: [{ path: '/f', content: '', uid: 2097151 }] }), []);
});

test('ids of users and groups only written to /etc/passwd and /etc/group keep the full 32-bit range', () => {
  assert.deepEqual(problems({ users: [{ name: 'big', uid: 4294967294 }], groups: [{ name: 'bigg', gid: 3000000 }] }), []);
});

test('uname/gname: non-ASCII or longer than 31 characters is refused, at the spec and in perms', () => {
  assert.deepEqual(problems({ uname: 'üser', gname: NAME_32, perms: [{ path: '/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1', regex: '.*', uname: NAME_32 }] }), [
    'uname: "üser" is not ASCII: a tar header holds an ASCII owner name',
    `gname: "${NAME_32}" has 32 characters: a tar header holds an owner name of at most 31`,
    `perms[0].uname: "${NAME_32}" has 32 characters: a tar header holds an owner name of at most 31`,
  ]);
});

test('uname of 31 ASCII characters is accepted', () => {
  assert.deepEqual(problems({ uname: NAME_31, gname: NAME_31 }), []);
});

test('a 32-character user name is valid in users, as documented, while it owns no entry', () => {
  assert.deepEqual(problems({ users: [{ name: NAME_32, uid: 1000 }], files: [{ path: '/f', content: '' }] }), []);
});

test('a 32-character user or group name cannot own an entry: refused at the uid/gid that names it', () => {
  assert.deepEqual(
    problems({
      users: [{ name: NAME_32, uid: 1000 }],
      groups: [{ name: `g${NAME_31}`, gid: 2000 }],
      files: [{ path: '/f', content: '', uid: 1000, gid: 2000 }],
      directories: [{ path: '/d', gid: 1000 }],
      nixUid: 1000,
    }),
    [
      `files[0].uid: uid 1000 is user "${NAME_32}", whose name has 32 characters: a tar header holds an owner name of at most 31; shorten the user's name`,
      `files[0].gid: gid 2000 is group "g${NAME_31}", whose name has 32 characters: a tar header holds an owner name of at most 31; shorten the group's name`,
      `directories[0].gid: gid 1000 is group "${NAME_32}" (made for the user of that name), whose name has 32 characters: a tar header holds an owner name of at most 31; shorten the user's name`,
      `nixUid: uid 1000 is user "${NAME_32}", whose name has 32 characters: a tar header holds an owner name of at most 31; shorten the user's name`,
    ],
  );
});

test("a perms rule naming its own uname does not take the user's long name", () => {
  const perms = [{ path: '/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1', regex: '.*', uid: 1000, uname: 'app' }];
  assert.deepEqual(problems({ users: [{ name: NAME_32, uid: 1000 }], perms }), []);
});

let work: string;
before(async () => {
  work = await tempDir('imgbuild-owner-limits-');
});

async function build(spec: Record<string, unknown>) {
  const dir = join(work, `case-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir);
  const specFile = join(dir, 'image.json');
  await writeFile(specFile, JSON.stringify({ name: 'owners/case', architecture: 'amd64', ...spec }, null, 2));
  const r = await runCli(['build', specFile, '-o', join(dir, 'out.oci')], { env: { ...process.env, IMGBUILD_CACHE_DIR: await tempDir('imgbuild-owner-limits-cache-') } });
  return { ...r, specFile };
}

test('the CLI: uid 2097152 is error[spec] naming the spec file and the field, not a layer error mid-build', async () => {
  const r = await build({ files: [{ path: '/f', content: 'x', uid: 2097152 }] });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error[spec]: ${r.specFile}: files[0].uid: must be at most 2097151 (the largest owner id a tar header holds), got 2097152 (line 8)\n`);
});

test('the CLI: the largest owner id and name the spec accepts build', async () => {
  const r = await build({ uid: 2097151, gid: 2097151, uname: NAME_31, gname: NAME_31, users: [{ name: NAME_31, uid: 1000 }], files: [{ path: '/f', content: 'x', uid: 1000, gid: 1000 }] });
  assert.equal(r.code, 0, r.stderr);
});
