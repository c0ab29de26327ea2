import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImgbuildError, SpecError } from '../builder/errors.js';
import { SpecValidationError } from '../builder/spec/errors.js';
import { resolveSpec } from '../builder/spec/resolve.js';
import { specProblems } from './helpers/spec-problems.js';

const file = '/specs/image.yaml';
const BB = '/nix/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1';

/** The problems a spec has, as `field: message` lines. */
function problems(input: unknown, storeDir?: string): string[] {
  return specProblems(input, { file, env: {}, overrides: storeDir ? { store: { storeDir } } : {} });
}
const one = (extra: Record<string, unknown>) => problems({ name: 'app', ...extra });

test('an unknown key suggests the closest known key', () => {
  assert.deepEqual(one({ maxLayer: 5 }), ['maxLayer: unknown key; did you mean `maxLayers`?']);
  assert.deepEqual(one({ maxlayers: 5 }), ['maxlayers: unknown key; did you mean `maxLayers`?']);
  assert.deepEqual(one({ config: { cmd: ['x'] } }), ['config.cmd: unknown key; did you mean `Cmd`?']);
  assert.deepEqual(one({ config: { Entrypiont: ['x'] } }), ['config.Entrypiont: unknown key; did you mean `Entrypoint`?']);
  assert.deepEqual(one({ files: [{ path: '/a', content: 'x', sorce: 'y' }] }), ['files[0].sorce: unknown key; did you mean `source`?']);
  assert.deepEqual(one({ layering: { strategy: 'auto', pin: [] } }), ['layering.pin: unknown key; did you mean `pinned`?']);
});

test('an unknown key with nothing close lists the known keys', () => {
  assert.deepEqual(one({ store: { dir: 'x', banana: 1 } }), ['store.banana: unknown key; known keys: kind, dir, storeDir, closureFile, verify, url, publicKeys']);
});

test('dockerTools arguments imgbuild does not take say what to do instead', () => {
  assert.deepEqual(one({ fakeRootCommands: 'chown 1000 /data' }), [
    'fakeRootCommands: `fakeRootCommands` is not supported: imgbuild runs no build scripts; set owners and modes per entry in `files` and `directories`',
  ]);
});

test('wrong types say what was expected and what was found', () => {
  assert.deepEqual(problems({ name: 42 }), ['name: expected a string, got a number (42); write it in quotes']);
  assert.deepEqual(one({ tag: 1.0 }), ['tag: expected a string, got a number (1); write it in quotes']);
  assert.deepEqual(one({ contents: BB }), [`contents: expected a list, got a string ("${BB.slice(0, 37)}...")`]);
  assert.deepEqual(one({ includeStorePaths: 'yes' }), ['includeStorePaths: expected true or false, got a string ("yes")']);
  assert.deepEqual(one({ config: { Env: ['A=1', 2] } }), ['config.Env[1]: expected a string, got a number (2); write it in quotes']);
  assert.deepEqual(one({ config: { ExposedPorts: [8080, 70000] } }), ['config.ExposedPorts[1]: must be at most 65535, got 70000']);
  assert.deepEqual(one({ config: { ExposedPorts: 8080 } }), ['config.ExposedPorts: expected a list or an object, got a number (8080)']);
  assert.deepEqual(one({ uid: 1.5 }), ['uid: expected a whole number, got a number (1.5)']);
  assert.deepEqual(problems([{ name: 'a' }]), ['expected an object, got a list']);
});

test('a missing name is required', () => {
  assert.deepEqual(problems({}), ['name: is required (a string)']);
});

test('maxLayers 0 and 200 are refused with the allowed range', () => {
  assert.deepEqual(one({ maxLayers: 0 }), ["maxLayers: must be a whole number from 2 to 125, got 0 (containerd's overlay limit is 127 layers)"]);
  assert.deepEqual(one({ maxLayers: 200 }), ["maxLayers: must be a whole number from 2 to 125, got 200 (containerd's overlay limit is 127 layers)"]);
  assert.deepEqual(one({ maxLayers: 125 }), []);
  assert.deepEqual(one({ maxLayers: 2 }), []);
});

test('invalid tags', () => {
  assert.deepEqual(one({ tag: '-latest' }), ['tag: "-latest" is not a valid tag (letters, digits, "_", "." and "-", not starting with "." or "-")']);
  assert.deepEqual(one({ tag: 'v1:2' }), ['tag: "v1:2" is not a valid tag (letters, digits, "_", "." and "-", not starting with "." or "-")']);
  assert.deepEqual(one({ tag: 'x'.repeat(129) }), ['tag: must be at most 128 characters, got 129']);
  assert.deepEqual(one({ tag: '' }), ['tag: must not be empty (leave `tag` out to derive it from the content)']);
  assert.deepEqual(one({ tag: 'V1.2_3-rc.1' }), []);
});

test('invalid names', () => {
  assert.deepEqual(problems({ name: 'MyApp' }), ['name: must be lowercase ("myapp")']);
  assert.deepEqual(problems({ name: 'ghcr.io/Acme/App' }), ['name: must be lowercase ("ghcr.io/acme/app")']);
  assert.deepEqual(problems({ name: 'app:1.0' }), ['name: "app:1.0" contains a tag; put the tag in `tag` (name "app", tag "1.0")']);
  assert.deepEqual(problems({ name: 'app@sha256:abc' }), ['name: "app@sha256:abc" contains a digest; a name is a repository only']);
  assert.deepEqual(problems({ name: 'a//b' }), ['name: "a//b" has an empty path component']);
  assert.deepEqual(problems({ name: 'my_-app' }), ['name: "my_-app" is not a valid name component (lowercase letters and digits, separated by ".", "_", "__" or "-")']);
  assert.deepEqual(problems({ name: 'bad_host.io:x/app' }), ['name: "bad_host.io:x" is not a valid registry host[:port]']);
  assert.deepEqual(problems({ name: '' }), ['name: must not be empty']);
});

test('valid names: with a registry host and port, localhost, nested paths, separators', () => {
  for (const name of ['app', 'library/alpine', 'ghcr.io/acme/app', 'localhost:5000/a/b/c', '127.0.0.1:5000/x', 'my-app__v2/x_y.z', 'registry.example.com/a--b']) {
    assert.deepEqual(problems({ name }), [], name);
  }
});

test('a file with both content and source, or neither', () => {
  assert.deepEqual(one({ files: [{ path: '/a', content: 'x', source: 'x.txt' }] }), ['files[0]: has both `content` and `source`; give exactly one']);
  assert.deepEqual(one({ files: [{ path: '/a' }] }), ['files[0]: needs `content` or `source`']);
});

test('paths in the image must be absolute and normalised', () => {
  assert.deepEqual(one({ files: [{ path: 'etc/motd', content: '' }] }), ['files[0].path: "etc/motd" is not an absolute path (it must start with "/")']);
  assert.deepEqual(one({ directories: [{ path: '/var/../etc' }] }), ['directories[0].path: "/var/../etc" is not normalised (contains "..")']);
  assert.deepEqual(one({ symlinks: [{ path: '/usr//bin', target: 'x' }] }), ['symlinks[0].path: "/usr//bin" contains an empty component ("//")']);
  assert.deepEqual(one({ directories: [{ path: '/srv/' }] }), ['directories[0].path: "/srv/" must not end with "/"']);
  assert.deepEqual(one({ directories: [{ path: '/' }] }), ['directories[0].path: must not be "/" itself']);
  assert.deepEqual(one({ directories: [{ path: '/bad\ud800' }] }), ['directories[0].path: is not valid Unicode (a lone surrogate cannot be written as UTF-8)']);
  assert.deepEqual(one({ config: { WorkingDir: 'srv' } }), ['config.WorkingDir: "srv" is not an absolute path (it must start with "/")']);
});

test('modes: octal strings or numbers up to 0o7777', () => {
  assert.deepEqual(one({ directories: [{ path: '/a', mode: '0989' }] }), ['directories[0].mode: "0989" is not an octal mode like "0644" or "1777"']);
  assert.deepEqual(one({ directories: [{ path: '/a', mode: 0o17777 }] }), ['directories[0].mode: must be a mode from 0 to 0o7777 (4095), got 8191; write it as an octal string like "0644"']);
  assert.deepEqual(one({ directories: [{ path: '/a', mode: true }] }), ['directories[0].mode: expected a string or a number, got true']);
});

test('store paths: shape, and inside the store dir', () => {
  assert.deepEqual(one({ contents: ['/nix/store/hello'] }), ['contents[0]: "/nix/store/hello" is not a store path (<storeDir>/<32-char nix-base32 hash>-<name>)']);
  assert.deepEqual(one({ contents: ['/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x'] }), [
    'contents[0]: "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x" is not a store path (<storeDir>/<32-char nix-base32 hash>-<name>)',
  ]);
  assert.deepEqual(one({ copyToRoot: ['/opt/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1'] }), [
    'copyToRoot[0]: "/opt/store/0c8lrcsiwxqqjl2ymh7gs0kcq4abpc24-busybox-1.36.1" is not in the store dir /nix/store',
  ]);
  assert.deepEqual(problems({ name: 'a', contents: [BB] }, '/opt/store'), [`contents[0]: "${BB}" is not in the store dir /opt/store`]);
  assert.deepEqual(one({ layering: { layers: [[BB], []] } }), ['layering.layers[1]: must have at least 1 item']);
});

test('config values: Env entries, ports, signals, healthchecks', () => {
  assert.deepEqual(one({ config: { Env: ['PATH'] } }), ['config.Env[0]: "PATH" is not of the form "KEY=value"']);
  assert.deepEqual(one({ config: { Env: ['=x'] } }), ['config.Env[0]: an environment variable name must not be empty']);
  assert.deepEqual(one({ config: { Env: { 'A=B': 'x' } } }), ['config.Env["A=B"]: "A=B" contains "="']);
  assert.deepEqual(one({ config: { ExposedPorts: ['http'] } }), ['config.ExposedPorts[0]: "http" is not a port like "8080", "8080/tcp", "53/udp" or "9/sctp"']);
  assert.deepEqual(one({ config: { ExposedPorts: { '70000/tcp': {} } } }), ['config.ExposedPorts["70000/tcp"]: "70000/tcp" is not a port like "8080", "8080/tcp", "53/udp" or "9/sctp"']);
  assert.deepEqual(one({ config: { StopSignal: 'sigterm' } }), ['config.StopSignal: "sigterm" is not a signal name like "SIGTERM" or a number']);
  assert.deepEqual(one({ config: { Healthcheck: { Test: ['curl', 'x'] } } }), ['config.Healthcheck.Test: must be ["NONE"], ["CMD", program, args...] or ["CMD-SHELL", command]']);
  assert.deepEqual(one({ config: { Healthcheck: { Interval: '30 seconds' } } }), ['config.Healthcheck.Interval: "30 seconds" is not a duration like "30s", "1m30s" or "500ms" (or a number of nanoseconds)']);
});

test('enums and platforms', () => {
  assert.deepEqual(one({ compressor: 'xz' }), ['compressor: must be one of "gzip", "none", "zstd", got "xz"']);
  assert.deepEqual(one({ layering: { strategy: 'size' } }), ['layering.strategy: must be one of "popularity", "auto", "stable", got a string ("size")']);
  assert.deepEqual(one({ architecture: 'x86_64' }), ['architecture: "x86_64" is not a Go architecture name; did you mean "amd64"?']);
  assert.deepEqual(one({ architecture: 'AMD64' }), ['architecture: "AMD64" is not a Go architecture name; did you mean "amd64"?']);
  assert.deepEqual(one({ os: 'macos' }), ['os: "macos" is not a Go OS name; did you mean "darwin"?']);
});

test('users and groups: names, duplicates, members that are not users', () => {
  assert.deepEqual(one({ users: [{ name: 'a:b', uid: 1 }] }), ['users[0].name: "a:b" is not a valid name (a letter or "_", then letters, digits, ".", "_", "-"; at most 32 characters)']);
  assert.deepEqual(one({ users: [{ name: 'app', uid: 1 }, { name: 'app', uid: 2 }] }), ['users[1].name: user "app" is already defined by users[0]']);
  assert.deepEqual(one({ groups: [{ name: 'g', gid: 1 }, { name: 'g', gid: 2 }] }), ['groups[1].name: group "g" is already defined by groups[0]']);
  assert.deepEqual(one({ users: [{ name: 'app', uid: 1 }], groups: [{ name: 'wheel', gid: 10, members: ['app', 'bob'] }] }), ['groups[0].members[1]: "bob" is not a user (define it in `users`)']);
  assert.deepEqual(one({ users: [{ name: 'app', uid: -1 }] }), ['users[0].uid: must be at least 0, got -1']);
  assert.deepEqual(one({ users: [{ name: 'app', uid: 1, home: 'home/app' }] }), ['users[0].home: home must be an absolute path without ":" or a newline']);
  assert.deepEqual(one({ users: [{ name: 'app', uid: 1, description: 'a:b' }] }), ['users[0].description: description must not contain ":", a newline or NUL']);
});

test('every problem is reported at once, and the error is a SpecError naming the file', () => {
  try {
    resolveSpec({ name: 'App', maxLayers: 200, config: { Env: ['A=1', 'B'] }, tagg: 'x' }, { file, env: {} });
    assert.fail('expected an error');
  } catch (e) {
    assert.ok(e instanceof SpecValidationError);
    assert.ok(e instanceof SpecError);
    assert.ok(e instanceof ImgbuildError);
    assert.equal(e.code, 'spec');
    assert.equal(e.file, file);
    assert.equal(
      e.message,
      [
        '/specs/image.yaml: 4 problems:',
        '  name: must be lowercase ("app")',
        '  config.Env[1]: "B" is not of the form "KEY=value"',
        "  maxLayers: must be a whole number from 2 to 125, got 200 (containerd's overlay limit is 127 layers)",
        '  tagg: unknown key; did you mean `tag`?',
      ].join('\n'),
    );
  }
});

test('a single problem reads as file: field: message', () => {
  assert.throws(() => resolveSpec({ name: 'app', maxLayers: 0 }, { file, env: {} }), {
    message: "/specs/image.yaml: maxLayers: must be a whole number from 2 to 125, got 0 (containerd's overlay limit is 127 layers)",
    field: 'maxLayers',
  });
});
