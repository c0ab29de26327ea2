import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSpec } from '../builder/spec/resolve.js';
import { hostArchitecture } from '../builder/spec/platform.js';
import { defineImage } from '../builder/spec/schema.js';

const file = '/work/specs/app/image.yaml';
const resolve = (input: unknown, env: NodeJS.ProcessEnv = {}) => resolveSpec(input, { file, env });

test('a spec with only a name gets every default', () => {
  assert.deepEqual(resolve({ name: 'app' }), {
    file,
    name: 'app',
    tag: undefined,
    contents: [],
    store: { kind: 'directory', dir: undefined, storeDir: '/nix/store', storeDirGiven: false, closureFile: undefined, verify: false },
    config: {},
    created: '1970-01-01T00:00:01Z',
    mtime: 1,
    uid: 0,
    gid: 0,
    uname: 'root',
    gname: 'root',
    maxLayers: 100,
    architecture: hostArchitecture(),
    architectureGiven: false,
    os: 'linux',
    variant: undefined,
    includeStorePaths: true,
    includeNixDB: false,
    compressor: 'gzip',
    layering: { strategy: 'auto', layers: [], pinned: [] },
    fromImage: undefined,
    copyToRoot: [],
    pathsToLink: ['/'],
    files: [],
    directories: [],
    symlinks: [],
    users: [],
    groups: [],
    perms: [],
    exclude: [],
    nixUid: undefined,
    nixGid: undefined,
  });
});

test('the default architecture is the Go name of this machine', () => {
  assert.equal(hostArchitecture('x64', 'LE'), 'amd64');
  assert.equal(hostArchitecture('arm64', 'LE'), 'arm64');
  assert.equal(hostArchitecture('ia32', 'LE'), '386');
  assert.equal(hostArchitecture('ppc64', 'LE'), 'ppc64le');
  assert.equal(hostArchitecture('ppc64', 'BE'), 'ppc64');
  assert.equal(hostArchitecture('s390x', 'BE'), 's390x');
  assert.equal(hostArchitecture('riscv64', 'LE'), 'riscv64');
});

test('store.dir is made absolute relative to the spec file; storeDir defaults to /nix/store', () => {
  assert.deepEqual(resolve({ name: 'a', store: { dir: '../store' } }).store, { kind: 'directory', dir: '/work/specs/store', storeDir: '/nix/store', storeDirGiven: false, closureFile: undefined, verify: false });
  assert.deepEqual(resolve({ name: 'a', store: { dir: '/abs/store', storeDir: '/opt/store' } }).store, { kind: 'directory', dir: '/abs/store', storeDir: '/opt/store', storeDirGiven: true, closureFile: undefined, verify: false });
});

test('the command line overrides store.dir (relative to the current directory) and storeDir', () => {
  const r = resolveSpec({ name: 'a', store: { dir: 'store' } }, { file, env: {}, overrides: { store: { dir: 'ci/store', storeDir: '/gnu/store' } } });
  assert.deepEqual(r.store, { kind: 'directory', dir: `${process.cwd()}/ci/store`, storeDir: '/gnu/store', storeDirGiven: true, closureFile: undefined, verify: false });
});

test('a closure file makes the store a closure-file store; the command line can choose Nix', () => {
  const r = resolve({ name: 'a', store: { closureFile: 'closure.json', verify: true } });
  assert.deepEqual(r.store, { kind: 'closure-file', dir: undefined, storeDir: '/nix/store', storeDirGiven: false, closureFile: '/work/specs/app/closure.json', verify: true });
  const n = resolveSpec({ name: 'a', contents: ['nixpkgs#hello'] }, { file, env: {}, overrides: { store: { kind: 'nix' } } });
  assert.deepEqual([n.store.kind, n.contents], ['nix', ['nixpkgs#hello']]);
});

test('every field given is kept', () => {
  const input = {
    name: 'ghcr.io/acme/app',
    tag: 'v1.2.3',
    contents: ['/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1'],
    uid: 1000,
    gid: 100,
    uname: 'app',
    gname: 'users',
    maxLayers: 2,
    architecture: 'arm64',
    os: 'linux',
    variant: 'v8',
    includeStorePaths: false,
    includeNixDB: true,
    compressor: 'none',
    layering: { strategy: 'popularity', pinned: ['/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1'] },
    fromImage: 'docker.io/library/alpine:3.20',
    pathsToLink: ['/bin', '/etc'],
  };
  const r = resolve(input);
  assert.equal(r.name, 'ghcr.io/acme/app');
  assert.equal(r.tag, 'v1.2.3');
  assert.deepEqual([r.uid, r.gid, r.uname, r.gname], [1000, 100, 'app', 'users']);
  assert.deepEqual([r.maxLayers, r.architecture, r.os, r.variant], [2, 'arm64', 'linux', 'v8']);
  assert.deepEqual([r.includeStorePaths, r.includeNixDB, r.compressor], [false, true, 'none']);
  assert.deepEqual(r.layering, { strategy: 'popularity', layers: [], pinned: input.layering.pinned });
  assert.equal(r.fromImage, 'docker.io/library/alpine:3.20');
  assert.deepEqual(r.pathsToLink, ['/bin', '/etc']);
});

test('config: ports and volumes as lists become objects, a bare port is tcp, Env as an object becomes KEY=value', () => {
  const r = resolve({
    name: 'a',
    config: {
      Cmd: ['/bin/app', '--serve'],
      Entrypoint: ['/bin/tini', '--'],
      Env: { PATH: '/bin', LANG: 'C.UTF-8' },
      WorkingDir: '/srv',
      User: '1000:1000',
      ExposedPorts: ['8080', '53/udp', 9090],
      Volumes: ['/data'],
      Labels: { 'org.opencontainers.image.title': 'app' },
      StopSignal: 'SIGINT',
      Healthcheck: { Test: ['CMD', '/bin/check'], Interval: '30s', Timeout: 5_000_000_000, StartPeriod: '1m30s', Retries: 3 },
    },
  });
  assert.deepEqual(r.config, {
    Cmd: ['/bin/app', '--serve'],
    Entrypoint: ['/bin/tini', '--'],
    Env: ['PATH=/bin', 'LANG=C.UTF-8'],
    WorkingDir: '/srv',
    User: '1000:1000',
    ExposedPorts: { '8080/tcp': {}, '53/udp': {}, '9090/tcp': {} },
    Volumes: { '/data': {} },
    Labels: { 'org.opencontainers.image.title': 'app' },
    StopSignal: 'SIGINT',
    Healthcheck: { Test: ['CMD', '/bin/check'], Interval: 30_000_000_000, Timeout: 5_000_000_000, StartPeriod: 90_000_000_000, Retries: 3 },
  });
});

test('config: ports and volumes as objects are kept; Env as a list is kept in order', () => {
  const r = resolve({ name: 'a', config: { ExposedPorts: { '80/tcp': {} }, Volumes: { '/var/lib/db': {} }, Env: ['B=2', 'A=1'] } });
  assert.deepEqual(r.config, { ExposedPorts: { '80/tcp': {} }, Volumes: { '/var/lib/db': {} }, Env: ['B=2', 'A=1'] });
});

test('files, directories and symlinks: modes parsed, sources made absolute, each remembers its field', () => {
  const r = resolve({
    name: 'a',
    files: [
      { path: '/etc/motd', content: 'hi', mode: '0600', uid: 1, gid: 2 },
      { path: '/bin/run', source: '../scripts/run.sh' },
    ],
    directories: [{ path: '/tmp', mode: '1777' }, { path: '/srv' }, { path: '/x', mode: 0o700 }],
    symlinks: [{ path: '/bin/sh', target: 'busybox' }],
  });
  assert.deepEqual(r.files, [
    { path: '/etc/motd', content: { kind: 'text', text: 'hi' }, mode: 0o600, uid: 1, gid: 2, field: 'files[0]' },
    { path: '/bin/run', content: { kind: 'host', fsPath: '/work/specs/scripts/run.sh' }, mode: undefined, uid: undefined, gid: undefined, field: 'files[1]' },
  ]);
  assert.deepEqual(r.directories, [
    { path: '/tmp', mode: 0o1777, uid: undefined, gid: undefined, field: 'directories[0]' },
    { path: '/srv', mode: 0o755, uid: undefined, gid: undefined, field: 'directories[1]' },
    { path: '/x', mode: 0o700, uid: undefined, gid: undefined, field: 'directories[2]' },
  ]);
  assert.deepEqual(r.symlinks, [{ path: '/bin/sh', target: 'busybox', field: 'symlinks[0]' }]);
});

test('users: defaults (gid = uid, home /var/empty, shell /bin/sh), root and nobody added, a private group per user, sorted by id', () => {
  const r = resolve({ name: 'a', users: [{ name: 'zed', uid: 2000 }, { name: 'app', uid: 1000, gid: 100, home: '/srv', shell: '/bin/bash', description: 'The App' }], groups: [{ name: 'users', gid: 100 }] });
  assert.deepEqual(r.users, [
    { name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/sh', description: 'root' },
    { name: 'app', uid: 1000, gid: 100, home: '/srv', shell: '/bin/bash', description: 'The App' },
    { name: 'zed', uid: 2000, gid: 2000, home: '/var/empty', shell: '/bin/sh', description: '' },
    { name: 'nobody', uid: 65534, gid: 65534, home: '/var/empty', shell: '/bin/sh', description: 'nobody' },
  ]);
  assert.deepEqual(r.groups, [
    { name: 'root', gid: 0, members: [] },
    { name: 'users', gid: 100, members: [] },
    { name: 'zed', gid: 2000, members: [] },
    { name: 'nobody', gid: 65534, members: [] },
  ]);
});

test('a spec that defines root or nobody itself replaces the built-in one', () => {
  const r = resolve({ name: 'a', users: [{ name: 'root', uid: 0, home: '/root', shell: '/bin/bash' }], groups: [{ name: 'nobody', gid: 65533 }] });
  assert.deepEqual(r.users.map((u) => `${u.name}:${u.uid}:${u.shell}`), ['root:0:/bin/bash', 'nobody:65534:/bin/sh']);
  // nobody's gid 65534 has no group any more, so nobody gets no private group: the name is taken.
  assert.deepEqual(r.groups.map((g) => `${g.name}:${g.gid}`), ['root:0', 'nobody:65533']);
});

test('a spec account with a built-in id replaces the built-in one (nogroup for gid 65534, admin for uid 0)', () => {
  const r = resolve({ name: 'a', users: [{ name: 'admin', uid: 0 }, { name: 'nobody', uid: 65534 }], groups: [{ name: 'nogroup', gid: 65534 }] });
  assert.deepEqual(r.users.map((u) => `${u.name}:${u.uid}:${u.gid}`), ['admin:0:0', 'nobody:65534:65534']);
  assert.deepEqual(r.groups.map((g) => `${g.name}:${g.gid}`), ['root:0', 'nogroup:65534']);
});

test('groups alone also produce the account files (with root and nobody)', () => {
  const r = resolve({ name: 'a', groups: [{ name: 'docker', gid: 999 }] });
  assert.deepEqual(r.users.map((u) => u.name), ['root', 'nobody']);
  assert.deepEqual(r.groups.map((g) => g.name), ['root', 'docker', 'nobody']);
});

test('duplicate contents, copyToRoot and pinned paths are listed once, first occurrence kept', () => {
  const p = '/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1';
  const q = '/nix/store/9x3l1dx4mmgkgyl5pxhq8j2dzbsbz2ns-hello-2.12.1';
  const r = resolve({ name: 'a', contents: [q, p, q], copyToRoot: [p, p], layering: { pinned: [q, q] } });
  assert.deepEqual(r.contents, [q, p]);
  assert.deepEqual(r.copyToRoot, [p]);
  assert.deepEqual(r.layering.pinned, [q]);
});

test('defineImage returns its argument unchanged (objects and functions)', () => {
  const spec = { name: 'a' };
  assert.equal(defineImage(spec), spec);
  const factory = () => spec;
  assert.equal(defineImage(factory), factory);
});
