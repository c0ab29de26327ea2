// The customisation layer through real consumers: umoci resolves the image's `User` against the
// generated /etc/passwd and /etc/group, runc runs busybox (linked into / by copyToRoot) as that
// user, and busybox reads the account files, modes and owners back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImage } from '../builder/build/build-image.js';
import { writeOciLayout } from '../builder/transports/oci-layout.js';
import { loadSpec } from '../builder/spec/load.js';
import { tool } from './helpers/cli.js';
import { tempDir } from './helpers/tmp.js';
import { needTool, toolPath } from './helpers/tools.js';

const BUSYBOX = '/nix/store/fzv3dba84r2c4v55n5p85xwykrff8kl3-busybox-1.35.0';

test('runc runs busybox as the spec user; id, stat and cat see the generated accounts, modes and files', async (t) => {
  if (!needTool(t, 'busybox', 'umoci', 'runc')) return;
  const work = await tempDir('imgbuild-custom-runc-');

  // A one-path store holding Debian's static busybox and the applets the test uses.
  const pkg = join(work, 'store', BUSYBOX.slice('/nix/store/'.length));
  await mkdir(join(pkg, 'bin'), { recursive: true });
  await copyFile(toolPath('busybox'), join(pkg, 'bin/busybox'));
  await chmod(join(pkg, 'bin/busybox'), 0o555);
  for (const applet of ['sh', 'id', 'stat', 'cat']) await symlink('busybox', join(pkg, 'bin', applet));

  await mkdir(join(work, 'scripts'));
  await writeFile(join(work, 'scripts/hello.sh'), '#!/bin/sh\necho "hello from $0"\n');
  await chmod(join(work, 'scripts/hello.sh'), 0o755);

  const specFile = join(work, 'image.yaml');
  await writeFile(
    specFile,
    [
      'name: imgbuild-test/accounts',
      'tag: "1"',
      'store: { dir: ./store }',
      `contents: [${BUSYBOX}]`,
      `copyToRoot: [${BUSYBOX}]`,
      'users:',
      '  - { name: app, uid: 1000, home: /home/app, description: The App }',
      'groups:',
      '  - { name: wheel, gid: 10, members: [app] }',
      'directories:',
      '  - { path: /tmp, mode: 1777 }',
      '  - { path: /home/app, mode: 0700, uid: 1000, gid: 1000 }',
      'files:',
      '  - { path: /etc/motd, content: "welcome\\n" }',
      '  - { path: /app/hello.sh, source: scripts/hello.sh }',
      'symlinks:',
      '  - { path: /usr/bin/env, target: /bin/busybox }',
      'config:',
      '  User: app',
      '  Env: [PATH=/bin]',
      "  Cmd: [/bin/sh, -c, 'id; stat -c \"%A %U %G %n\" /tmp /home/app /etc/passwd /etc/shadow /app/hello.sh; cat /etc/motd; /app/hello.sh']",
      '',
    ].join('\n'),
  );

  const spec = await loadSpec(specFile, {});
  const { image } = await buildImage(spec, { cacheDir: join(work, 'cache') });
  const layout = join(work, 'accounts.oci');
  await writeOciLayout(image, layout);

  const bundle = join(work, 'bundle');
  await tool('umoci', ['unpack', '--image', `${layout}:1`, bundle]);
  const configPath = join(bundle, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8'));
  // umoci resolved `User: app` through the image's /etc/passwd and /etc/group.
  assert.deepEqual(config.process.user, { uid: 1000, gid: 1000, additionalGids: [10] });
  config.process.terminal = false;
  await writeFile(configPath, JSON.stringify(config));

  const stdout = await tool('runc', ['run', '--bundle', bundle, `imgbuild-custom-${process.pid}`]);
  assert.equal(
    stdout,
    [
      'uid=1000(app) gid=1000(app) groups=10(wheel)',
      'drwxrwxrwt root root /tmp',
      'drwx------ app app /home/app',
      '-rw-r--r-- root root /etc/passwd',
      '-rw-r----- root root /etc/shadow',
      '-rwxr-xr-x root root /app/hello.sh',
      'welcome',
      'hello from /app/hello.sh',
      '',
    ].join('\n'),
  );
});
