// The spec fields for Nix users (issue 18): perms, exclude, nixUid/nixGid — what is refused and
// what a rule resolves to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSpec } from '../builder/spec/resolve.js';
import { specProblems } from './helpers/spec-problems.js';

const file = '/specs/image.yaml';
const BB = '/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1';

function problems(input: Record<string, unknown>): string[] {
  return specProblems({ name: 'app', ...input }, { file, env: {} });
}

test('a perms rule that sets nothing, a bad regex, mode or path, and an exclude outside the store are refused', () => {
  assert.deepEqual(problems({ perms: [{ path: BB, regex: '.*' }] }), ['perms[0]: sets nothing: give at least one of mode, uid, gid, uname, gname']);
  // (V8 words the reason; the field and the pattern are ours.)
  const [bad, ...rest] = problems({ perms: [{ path: BB, regex: '(', mode: '0755' }] });
  assert.match(bad!, /^perms\[0\]\.regex: "\(" is not a regular expression: /);
  assert.deepEqual(rest, []);
  assert.deepEqual(problems({ perms: [{ path: BB, regex: '.*', mode: '9' }] }), ['perms[0].mode: "9" is not an octal mode like "0644" or "1777"']);
  assert.deepEqual(problems({ perms: [{ path: '/opt/x', regex: '.*', uid: 1 }] }), ['perms[0].path: "/opt/x" is not a store path (<storeDir>/<32-char nix-base32 hash>-<name>)']);
  assert.deepEqual(problems({ exclude: ['/gnu/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1'] }), ['exclude[0]: "/gnu/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1" is not in the store dir /nix/store']);
  assert.deepEqual(problems({ nixUid: -1 }).map((p) => p.split(':')[0]), ['nixUid']);
});

test('a rule resolves its mode to a number and names a uid from users (else an empty name); nixUid stays undefined unless given', () => {
  const spec = resolveSpec(
    { name: 'app', users: [{ name: 'app', uid: 1000 }], perms: [{ path: BB, regex: '/bin/sh$', mode: '4755', uid: 1000, gid: 5 }, { path: BB, regex: 'x', uname: 'n' }] },
    { file, env: {} },
  );
  assert.deepEqual(spec.perms, [
    { path: BB, regex: '/bin/sh$', mode: 0o4755, uid: 1000, uname: 'app', gid: 5, gname: '', field: 'perms[0]' },
    { path: BB, regex: 'x', uname: 'n', field: 'perms[1]' },
  ]);
  assert.deepEqual([spec.nixUid, spec.nixGid, spec.exclude], [undefined, undefined, []]);
});

test('a platform part may give its own perms and exclude (store paths differ per platform)', () => {
  const spec = resolveSpec(
    { name: 'app', platforms: [{ architecture: 'amd64', exclude: [BB] }, { architecture: 'arm64', perms: [{ path: BB, regex: '.*', uid: 1 }] }] },
    { file, env: {} },
  );
  assert.deepEqual(spec.platforms!.map((p) => [p.exclude, p.perms.length]), [[[BB], 0], [[], 1]]);
});
