// The built-in example: a stand-in for GNU hello whose store paths are small text files in
// ./store, so it builds anywhere (no Nix, no network). Build it with:
//   imgbuild build examples/hello -o hello.oci
import { defineImage } from 'imgbuild';

const hello = '/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1';

export default defineImage({
  name: 'imgbuild-examples/hello',
  tag: '2.12.1',
  // Pinned (the default is the building machine's): the tests pin this image's digest on any host.
  architecture: 'amd64',
  // A directory laid out like a Nix store; its paths are written into the image as /nix/store/...
  store: { dir: './store' },
  contents: [hello],
  // Link hello's bin/ and share/ into / the way buildEnv does, so /bin/hello exists.
  copyToRoot: [hello],
  directories: [{ path: '/tmp', mode: '1777' }],
  groups: [{ name: 'nogroup', gid: 65534 }],
  users: [{ name: 'nobody', uid: 65534, gid: 65534, home: '/var/empty', shell: '/bin/false' }],
  config: {
    Cmd: ['/bin/hello'],
    Env: ['PATH=/bin'],
    User: 'nobody',
    WorkingDir: '/tmp',
    Labels: { 'org.opencontainers.image.title': 'hello' },
  },
});
