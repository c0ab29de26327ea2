// stdout is a contract: the result alone (a digest, a pinned reference, or one --json document,
// the error document when a command fails), everything else on stderr; exit codes 0, 1, 2, 130 (141 when stdout is closed: cli-stdout-closed.test.ts)
// and nothing else; errors a user can fix are said as such, with a hint naming a real flag.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { RegistryNetworkError, RegistryTlsError } from '../registry-client/errors.js';
import { ImgbuildError } from '../builder/errors.js';
import { describeFailure } from '../builder/commands/failure.js';
import { shellWord } from '../builder/commands/shell-word.js';
import { runCli, runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const hello = join(repoRoot, 'examples/hello');
const HELLO = 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580';
let work: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  work = await tempDir('imgbuild-cli-output-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
});

test('DIGEST=$(imgbuild build ...) is exactly one line, the manifest digest; what was written goes to stderr', async () => {
  const out = join(work, 'hello.oci');
  const script = `DIGEST=$("$0" "$1" build "$2" -o "$3") && printf '%s' "$DIGEST" | wc -l && printf '%s\\n' "$DIGEST"`;
  const r = await runCommand('sh', ['-c', script, process.execPath, cliPath, hello, out], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), `0\n${HELLO}\n`, 'no newline inside the captured value: one line');
  assert.match(r.stderr, new RegExp(`^wrote oci ${out} \\(imgbuild-examples/hello:2\\.12\\.1, 5 layers\\)$`, 'm'));
  assert.match(r.stderr, /^look inside: imgbuild inspect /m);
  const again = await runCli(['build', hello, '-o', join(work, 'again.oci')], { env });
  assert.equal(again.stdout.toString(), `${HELLO}\n`);
});

test("shellWord: a word a POSIX shell reads as itself stays as it is; any other is single-quoted, each ' written '\\''", () => {
  for (const plain of ['/tmp/out.oci', 'oci:/tmp/a/b.oci:tag', 'hello_1.2-3@x%y+z,w', 'a=b', 'ü/дом/出力.oci']) assert.equal(shellWord(plain), plain);
  const quoted: [string, string][] = [
    ['', "''"],
    ['sp ace/out ü.oci', "'sp ace/out ü.oci'"],
    ["it's", "'it'\\''s'"],
    ["''", "''\\'''\\'''"],
    ['$HOME/x', "'$HOME/x'"],
    ['a\nb', "'a\nb'"],
    ['~/x', "'~/x'"],
    ['=x', "'=x'"],
    ...['*', '?', '[', ']', '!', '#', '&', ';', '|', '<', '>', '(', ')', '{', '}', '`', '"', '\\', '\t'].map((c): [string, string] => [`a${c}b`, `'a${c}b'`]),
  ];
  for (const [text, word] of quoted) assert.equal(shellWord(text), word, JSON.stringify(text));
});

test('the "look inside" commands after a build quote a path as a shell needs it, and pasted into sh they work', async () => {
  const dir = join(work, "it's a $HOME dir\nwith a newline");
  await mkdir(dir);
  const out = join(dir, 'out ü.oci');
  const r = await runCli(['build', hello, '-o', out], { env });
  assert.equal(r.code, 0, r.stderr);
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const inspect = `imgbuild inspect ${q(out)}`;
  assert.ok(r.stderr.endsWith(`\nlook inside: ${inspect}   or   skopeo inspect ${q(`oci:${out}`)}\n`), r.stderr);
  const pasted = await runCommand('sh', ['-c', 'imgbuild() { "$IB_NODE" "$IB_CLI" "$@"; }; eval "$1"', 'sh', `${inspect} --json`], { env: { ...env, IB_NODE: process.execPath, IB_CLI: cliPath } });
  assert.equal(pasted.code, 0, pasted.stderr);
  assert.equal(JSON.parse(pasted.stdout.toString()).digest, HELLO);
});

test('the "look inside" commands print a path that needs no quoting as it is', async () => {
  const out = join(work, 'plain.oci');
  const r = await runCli(['build', hello, '-o', out], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`^look inside: imgbuild inspect ${out}   or   skopeo inspect oci:${out}$`, 'm'));
});

test('build --json prints one document: schemaVersion 1, digest, platform, configDigest, layers, format and output', async () => {
  const out = join(work, 'json.oci');
  const r = await runCli(['build', hello, '-o', out, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout.toString());
  assert.deepEqual(Object.keys(doc), ['schemaVersion', 'name', 'tag', 'digest', 'mediaType', 'platform', 'configDigest', 'layers', 'format', 'output']);
  assert.deepEqual([doc.schemaVersion, doc.digest, doc.platform, doc.format, doc.output], [1, HELLO, 'linux/amd64', 'oci', out]);
  const inspected = JSON.parse((await runCli(['inspect', out, '--json'], { env })).stdout.toString());
  assert.deepEqual([inspected.schemaVersion, inspected.digest, inspected.configDigest, inspected.platform], [1, HELLO, doc.configDigest, 'linux/amd64']);
});

test('--json and --stream together are a usage error: both would write to stdout', async () => {
  const r = await runCli(['build', hello, '--stream', '--json'], { env });
  assert.equal(r.code, 2);
  assert.equal(JSON.parse(r.stdout.toString()).error.code, 'usage');
  assert.match(r.stderr, /^error\[usage\]: --json and --stream both write to stdout$/m);
});

test('a failing command with --json prints the error document on stdout (and the error on stderr), exit 1', async () => {
  const cases: [string[], string, RegExp][] = [
    [['build', join(work, 'nope.json'), '--json'], 'spec', /no such file or directory/],
    [['inspect', join(work, 'nope.oci'), '--json'], 'image-ref', /no such file or directory/],
    [['closure', join(work, 'nope.json'), '--json'], 'spec', /no such file or directory/],
    [['plan', join(work, 'nope.json'), '--json'], 'spec', /no such file or directory/],
    [['push', join(work, 'nope.oci'), '127.0.0.1:9/x:1', '--json'], 'image-ref', /no such file or directory/],
    [['index', 'create', '127.0.0.1:9/x:1', join(work, 'nope.oci'), '--json'], 'image-ref', /no such file or directory/],
  ];
  for (const [args, code, message] of cases) {
    const r = await runCli(args, { env });
    assert.equal(r.code, 1, args.join(' '));
    const doc = JSON.parse(r.stdout.toString());
    assert.deepEqual(Object.keys(doc), ['schemaVersion', 'error']);
    assert.deepEqual(Object.keys(doc.error), ['code', 'message', 'hint']);
    assert.equal(doc.error.code, code, args.join(' '));
    assert.match(doc.error.message, message);
    assert.match(r.stderr, new RegExp(`^error\\[${code}\\]: `, 'm'));
  }
});

test('diff and verify that cannot check exit 2 with the error document; a usage error exits 2 with code usage', async () => {
  for (const args of [['diff', join(work, 'a.oci'), join(work, 'b.oci'), '--json'], ['verify', join(work, 'nope.json'), '--json']]) {
    const r = await runCli(args, { env });
    assert.equal(r.code, 2, args.join(' '));
    assert.notEqual(JSON.parse(r.stdout.toString()).error.code, 'usage');
  }
  const r = await runCli(['build', hello, '--no-such-option', '--json'], { env });
  assert.equal(r.code, 2);
  assert.deepEqual(JSON.parse(r.stdout.toString()).error, { code: 'usage', message: "unknown option '--no-such-option'", hint: 'see imgbuild build --help' });
  assert.equal(r.stderr, "error[usage]: unknown option '--no-such-option'\nhint: see imgbuild build --help\n", "commander's message, once, as every usage error");
});

/** Every command and subcommand, read from the help. */
async function commands(prefix: string[] = []): Promise<string[][]> {
  const help = (await runCli([...prefix, '--help'])).stdout.toString();
  const section = help.split(/^Commands:$/m)[1];
  if (!section) return [prefix];
  const names = [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
  return (await Promise.all(names.map((n) => commands([...prefix, n])))).flat();
}

test('exit codes: --help 0, an unknown option or a missing argument 2, for every command', async () => {
  const all = await commands();
  assert.ok(all.length >= 10, all.map((c) => c.join(' ')).join(', '));
  for (const c of all) {
    assert.equal((await runCli([...c, '--help'])).code, 0, `${c.join(' ')} --help`);
    const unknown = await runCli([...c, '--no-such-option', 'x', 'y'], { env });
    assert.equal(unknown.code, 2, `${c.join(' ')} --no-such-option: ${unknown.stderr}`);
    // error[usage] and a hint naming the command's help, not commander's `error:` and the whole help.
    assert.equal(unknown.stderr, `error[usage]: unknown option '--no-such-option'\nhint: see imgbuild ${c.join(' ')} --help\n`);
    const usage = (await runCli([...c, '--help'])).stdout.toString().split('\n')[0]!;
    const argument = /<([^>]+?)(?:\.\.\.)?>/.exec(usage)?.[1];
    if (argument) {
      const missing = await runCli(c, { env });
      assert.equal(missing.code, 2, `${c.join(' ')} with no argument`);
      assert.equal(missing.stderr, `error[usage]: missing required argument '${argument}'\nhint: see imgbuild ${c.join(' ')} --help\n`);
    }
  }
  assert.equal((await runCli(['--version'])).code, 0);
  assert.equal((await runCli(['no-such-command'])).code, 2);
  assert.equal((await runCli(['cache', 'prune', '--max-size', 'lots'], { env })).code, 2, 'a bad option value is a usage error too');
});

test('a push to a registry that does not resolve exits 1 with error[network], a hint, and no stack; with --json the error document', async () => {
  const out = join(work, 'dns.oci');
  assert.equal((await runCli(['build', hello, '-o', out], { env })).code, 0);
  const r = await runCli(['push', out, 'registry.invalid/ux/greeter:1'], { env });
  assert.equal(r.code, 1, r.stderr);
  // The registry client says it (RegistryNetworkError) before the CLI's own DNS mapping would.
  assert.match(r.stderr, /^error\[network\]: connect to registry\.invalid: cannot reach registry\.invalid: the name registry\.invalid does not resolve/m);
  assert.match(r.stderr, /^hint: check the registry name in the reference, and this machine's DNS$/m);
  assert.doesNotMatch(r.stderr, /internal error|^\s+at /m);
  assert.equal(r.stdout.toString(), '');
  const j = await runCli(['build', hello, '--push', 'registry.invalid/ux/greeter:1', '--json'], { env });
  assert.equal(j.code, 1);
  assert.equal(JSON.parse(j.stdout.toString()).error.code, 'network');
});

test('failures are described for a person: DNS and connection failures down the cause chain, usage, interrupts, bugs', () => {
  const errno = (code: string, extra: object = {}) => Object.assign(new Error(`getaddrinfo ${code} ghcr.example`), { code, ...extra });
  const dns = describeFailure(errno('ENOTFOUND', { hostname: 'ghcr.example' }));
  assert.deepEqual([dns.code, dns.message, dns.exitCode], ['network', 'cannot resolve the host ghcr.example', 1]);
  assert.match(dns.hint!, /host name/);
  const again = describeFailure(new TypeError('fetch failed', { cause: errno('EAI_AGAIN', { hostname: 'ghcr.example' }) }));
  assert.deepEqual([again.code, again.message], ['network', 'cannot resolve the host ghcr.example (a temporary DNS failure)']);
  // The registry client's network error after its retries: its own message, the hint from its cause.
  const wrapped = describeFailure(new RegistryNetworkError('ghcr.example', 'connect to ghcr.example', 'EAI_AGAIN', { cause: errno('EAI_AGAIN') }));
  assert.equal(wrapped.code, 'network');
  assert.match(wrapped.hint!, /host name/);
  const refused = describeFailure(new RegistryNetworkError('registry.example:5000', 'connect', 'ECONNREFUSED', { cause: errno('ECONNREFUSED') }));
  assert.match(refused.hint!, /--insecure-registry <host\[:port\]>/);
  // A loopback registry is tried over plain HTTP without a flag: the hint does not ask for one.
  const refusedHere = describeFailure(new RegistryNetworkError('127.0.0.1:5000', 'connect', 'ECONNREFUSED', { cause: errno('ECONNREFUSED') }));
  assert.equal(refusedHere.hint, 'check that the registry is running and listening on that port (a registry on this machine needs no --insecure-registry)');
  assert.equal(describeFailure(new ImgbuildError('usage', 'bad')).exitCode, 2);
  assert.equal(describeFailure(new ImgbuildError('spec', 'bad')).exitCode, 1);
  assert.equal(describeFailure(new ImgbuildError('spec', 'bad'), true).exitCode, 2, 'diff and verify: could not check');
  assert.equal(describeFailure(Object.assign(new Error('aborted'), { name: 'AbortError' })).exitCode, 130);
  const bug = describeFailure(new Error('undefined is not a function'));
  assert.deepEqual([bug.code, bug.exitCode], ['internal', 1]);
  assert.match(bug.stack!, /undefined is not a function/);
  assert.match(new RegistryTlsError('r.example', 'self-signed certificate').hint!, /--ca-file <pem>.*--insecure-registry r\.example/);
});

/** Flags of other programs that imgbuild's sources name (commands it runs, tools it mentions). */
const FOREIGN_FLAGS = new Set([
  // nix, nix-store, nix-instantiate, nix copy
  '--dump-db', '--load-db', '--query', '--references', '--requisites', '--size', '--hash', '--realise', '--recursive',
  '--eval', '--expr', '--extra-experimental-features', '--no-link', '--print-out-paths', '--to', '--add',
  // nix-store --generate-binary-cache-key, nix store sign --key-file (named in binary-cache hints)
  '--generate-binary-cache-key', '--key-file',
  // GNU tar
  '--sort',
  // V8's, once set by the CLI for registry-only commands (startup.ts says why no longer)
  '--liftoff-only', '--wasm-tiering-budget',
  // V8's, set by the CLI for build (startup.ts limitHeapGrowth)
  '--heap-growing-percent',
  // Node's, under which store/lstat-values.ts keeps away from process.binding
  '--pending-deprecation', '--throw-deprecation',
]);

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('every flag the sources name (in hints, messages, help) is a flag of the CLI, or of a tool it runs', async () => {
  const real = new Set<string>();
  for (const c of [[], ...(await commands())]) {
    const help = (await runCli([...c, '--help'])).stdout.toString();
    for (const m of help.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)) real.add(m[1]!);
  }
  assert.ok(real.has('--ca-file') && real.has('--insecure-registry') && real.has('--json'));
  const unknown: string[] = [];
  for (const file of [...(await sources(join(repoRoot, 'builder'))), ...(await sources(join(repoRoot, 'registry-client')))]) {
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines.forEach((line, i) => {
      for (const m of line.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)) {
        if (!real.has(m[0]) && !FOREIGN_FLAGS.has(m[0])) unknown.push(`${relative(repoRoot, file)}:${i + 1}: ${m[0]}`);
      }
    });
  }
  assert.deepEqual(unknown, [], 'flags no command has');
});

test('a malformed registry reference is a usage error (exit 2, error[usage]) for every command that takes one', async () => {
  const out = join(work, 'refs.oci');
  assert.equal((await runCli(['build', hello, '-o', out], { env })).code, 0);
  const bad = '127.0.0.1:9/Upper/app:1';
  const cases: [string[], string][] = [
    [['build', hello, '--push', bad], `--push: invalid image reference "${bad}": repository name must be lowercase`],
    [['build', hello, '--push', '127.0.0.1:9/app:bad~tag'], '--push: invalid image reference "127.0.0.1:9/app:bad~tag": invalid tag "bad~tag"'],
    [['build', hello, '-o', join(work, 'never.oci'), '--previous', `docker://${bad}`], `--previous: invalid image reference "${bad}": repository name must be lowercase`],
    [['plan', hello, '--previous', `docker://${bad}`], `--previous: invalid image reference "${bad}"`],
    [['verify', hello, '--against', `docker://${bad}`], `--against: invalid image reference "${bad}"`],
    [['push', out, bad], `invalid image reference "${bad}"`],
    [['push', `docker://${bad}`, '127.0.0.1:9/app:1'], `invalid image reference "${bad}"`],
    [['index', 'create', bad, out], `invalid image reference "${bad}"`],
    [['index', 'create', '127.0.0.1:9/app:1', `docker://${bad}`], `invalid image reference "${bad}"`],
    [['tag', `docker://${bad}`, 'latest'], `invalid image reference "${bad}"`],
    [['ls', '127.0.0.1:9/Upper/app'], 'invalid image reference "127.0.0.1:9/Upper/app"'],
    [['login', 'bad_host', '--creds', 'a:b'], '"bad_host" is not a registry host'],
    ...['inspect', 'digest', 'manifest', 'config', 'referrers'].map((c): [string[], string] => [[c, `docker://${bad}`], `invalid image reference "${bad}"`]),
    [['diff', `docker://${bad}`, out], `invalid image reference "${bad}"`],
  ];
  for (const [args, message] of cases) {
    const r = await runCli([...args, '--json'], { env });
    const what = args.join(' ');
    assert.equal(r.code, 2, `${what}: ${r.stderr}`);
    const { error } = JSON.parse(r.stdout.toString());
    assert.equal(error.code, 'usage', what);
    assert.ok(error.message.startsWith(message), `${what}: ${error.message}`);
    assert.ok(error.hint, what);
    assert.ok(r.stderr.startsWith(`error[usage]: ${message}`), what);
  }
  // sbom has no --json: its stdout is the SBOM.
  const sbom = await runCli(['sbom', `docker://${bad}`], { env });
  assert.equal(sbom.code, 2, sbom.stderr);
  assert.ok(sbom.stderr.startsWith(`error[usage]: invalid image reference "${bad}": repository name must be lowercase\nhint: `), sbom.stderr);
  assert.equal(sbom.stdout.toString(), '');
});

test('a registry reference with user:password@ in front is a usage error that masks it (***@), on stderr and in --json, however the image is named', async () => {
  const out = join(work, 'userinfo.oci');
  assert.equal((await runCli(['build', hello, '-o', out], { env })).code, 0);
  const secret = 'alice:S3cretPW!x';
  const bad = `${secret}@127.0.0.1:9/x:1`;
  const message = 'invalid image reference "***@127.0.0.1:9/x:1": user info (user:password@) does not go in a reference';
  const cases: [string[], string][] = [
    [['push', out, bad], message],
    [['push', bad, '127.0.0.1:9/app:1'], message],
    [['push', out, `docker://${bad}`], message],
    [['build', hello, '--push', bad], `--push: ${message}`],
    ...['inspect', 'digest', 'manifest', 'config', 'referrers'].map((c): [string[], string] => [[c, bad], message]),
    [['diff', out, `docker://${bad}`], message],
  ];
  for (const [args, expected] of cases) {
    const r = await runCli([...args, '--json'], { env });
    const what = args.join(' ');
    assert.equal(r.code, 2, `${what}: ${r.stderr}`);
    assert.ok(!(r.stdout.toString() + r.stderr).includes('S3cretPW'), `${what}: ${r.stdout}${r.stderr}`);
    assert.equal(JSON.parse(r.stdout.toString()).error.message, expected, what);
    assert.equal(r.stderr.split('\n')[0], `error[usage]: ${expected}`, what);
  }
});

test('a bad value of a choice option (build -f, sbom --format) is an error[usage] with a hint, as every bad flag value, not commander\'s help', async () => {
  const cases: [string[], string][] = [
    [['build', hello, '-f', 'tar'], 'error[usage]: -f "tar" is not an output format\nhint: use -f oci, -f oci-archive or -f docker-archive\n'],
    [['sbom', hello, '--format', 'bogus'], 'error[usage]: --format "bogus" is not an SBOM format\nhint: use --format spdx or --format cyclonedx\n'],
    [['sbom', hello, '--format', 'spdx,cyclonedx'], 'error[usage]: --format names one format here: the SBOM goes to stdout\nhint: run imgbuild sbom once per format, or build --sbom spdx,cyclonedx to attach both\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = await runCli(args, { env });
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr, stderr);
    assert.equal(r.stdout.toString(), '');
  }
});

/** The options of a command's help: each one's flags (`-o, --output <path>`), and whether its help calls it repeatable. */
function helpOptions(help: string): { flags: string; long: string; value: boolean; repeatable: boolean }[] {
  const section = help.split(/^Options:$/m)[1]!.split(/^\S/m)[0]!;
  const out: { flags: string; long: string; value: boolean; repeatable: boolean }[] = [];
  for (const block of section.split(/^(?= {2}-)/m).filter((b) => b.startsWith('  -'))) {
    const flags = /^ {2}(\S.*?)(?: {2,}|$)/m.exec(block)![1]!;
    const long = /--[a-z][a-z0-9-]*/.exec(flags)![0];
    out.push({ flags, long, value: flags.includes('<'), repeatable: /repeatable/.test(block.replace(/\s+/g, ' ')) });
  }
  return out;
}

/** `run` over `items`, `n` at a time (the CLI runs of a test that has many). */
async function inBatches<T>(items: readonly T[], n: number, run: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += n) await Promise.all(items.slice(i, i + n).map(run));
}

test('an option that takes one value, given twice with different values, is a usage error in every command (commander kept the last); the repeatable ones repeat', async () => {
  const all = await commands();
  const helps = await Promise.all(all.map(async (c) => helpOptions((await runCli([...c, '--help'])).stdout.toString()).filter((o) => o.value && o.long !== '--help')));
  const seen = new Set<string>();
  const cases: { c: string[]; o: ReturnType<typeof helpOptions>[number] }[] = [];
  all.forEach((c, i) => {
    let triedHere = false;
    for (const o of helps[i]!) {
      // Each flag once, and one that takes one value in each command: the check is the CLI's, not a command's.
      if (seen.has(o.long) && (triedHere || o.repeatable)) continue;
      seen.add(o.long);
      if (!o.repeatable) triedHere = true;
      cases.push({ c, o });
    }
  });
  for (const repeatable of ['--tag', '--platform', '--label', '--annotation', '--insecure-registry', '--ca-file', '--trusted-public-key']) {
    assert.ok(cases.some(({ o }) => o.long === repeatable && o.repeatable), repeatable);
  }
  await inBatches(cases, 4, async ({ c, o }) => {
    const r = await runCli([...c, o.long, 'a', o.long, 'b'], { env });
    const what = `${c.join(' ')} ${o.long} a ${o.long} b`;
    assert.equal(r.code, 2, `${what}: ${r.stderr}`);
    if (o.repeatable) {
      assert.doesNotMatch(r.stderr, /given twice/, what);
      return;
    }
    const shown = o.flags.startsWith('-') && !o.flags.startsWith('--') ? `${o.flags.slice(0, 2)}/${o.long}` : o.long;
    assert.equal(r.stderr, `error[usage]: ${shown} given twice, with different values: it takes one\nhint: give ${shown} once (the options that repeat say "repeatable" in imgbuild ${c.join(' ')} --help)\n`, what);
  });
});

test('--push given twice is refused before anything is built or pushed, with the error document under --json', async () => {
  const r = await runCli(['build', hello, '--push', '127.0.0.1:9/a:1', '--push', '127.0.0.1:9/b:1', '--json'], { env });
  assert.equal(r.code, 2);
  assert.deepEqual(JSON.parse(r.stdout.toString()).error, { code: 'usage', message: '--push given twice, with different values: it takes one', hint: 'give --push once (the options that repeat say "repeatable" in imgbuild build --help)' });
  assert.equal(r.stderr, 'error[usage]: --push given twice, with different values: it takes one\nhint: give --push once (the options that repeat say "repeatable" in imgbuild build --help)\n');
});

test('an option given twice with the same value is given once: build -o x -o x writes x', async () => {
  const out = join(work, 'same-twice.oci');
  const r = await runCli(['build', hello, '-o', out, '--output', out], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), `${HELLO}\n`);
});

test('--ci-metadata with --no-ci-metadata is a usage error naming both, in the order given', async () => {
  for (const [first, second] of [['--ci-metadata', '--no-ci-metadata'], ['--no-ci-metadata', '--ci-metadata']]) {
    const r = await runCli(['build', hello, '-o', join(work, 'never.oci'), first!, second!], { env });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `error[usage]: ${first} and ${second} both given\nhint: give one of them (see imgbuild build --help)\n`);
  }
});

test('imgbuild help <command> prints its help; an unknown one is an error[usage] saying so (was: the main help, exit 2)', async () => {
  const build = await runCli(['help', 'build']);
  assert.equal(build.code, 0);
  assert.equal(build.stdout.toString(), (await runCli(['build', '--help'])).stdout.toString());
  const cases: [string[], string][] = [
    [['help', 'nosuch'], "error[usage]: unknown command 'nosuch'\nhint: see imgbuild --help\n"],
    [['help', 'biuld'], "error[usage]: unknown command 'biuld'\nhint: did you mean build? see imgbuild --help\n"],
    [['cache', 'help', 'nosuch'], "error[usage]: unknown command 'nosuch'\nhint: see imgbuild cache --help\n"],
    [['cache', 'nosuch'], "error[usage]: unknown command 'nosuch'\nhint: see imgbuild cache --help\n"],
    [['biuld', hello], "error[usage]: unknown command 'biuld'\nhint: did you mean build? see imgbuild --help\n"],
  ];
  for (const [args, stderr] of cases) {
    const r = await runCli(args, { env });
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr, stderr, args.join(' '));
    assert.equal(r.stdout.toString(), '', args.join(' '));
  }
});

test("commander's suggestion for a mistyped option goes into the hint", async () => {
  const r = await runCli(['build', hello, '--pussh', '127.0.0.1:9/a:1'], { env });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "error[usage]: unknown option '--pussh'\nhint: did you mean --push? see imgbuild build --help\n");
});

test('malformed registry flags are usage errors before anything is read or sent: --creds without user:, a --ca-file that is no file (the --creds value is never printed)', async () => {
  const out = join(work, 'flags.oci');
  assert.equal((await runCli(['build', hello, '-o', out], { env })).code, 0);
  const creds = 'error[usage]: --creds takes user:password, and the value given has no ":"\nhint: e.g. --creds ci-bot:"$TOKEN" (with a token: a user name the registry accepts, ":", then the token)\n';
  const caHint = "hint: give the file holding the registry's CA certificate in PEM, e.g. --ca-file ./ca.pem\n";
  const missing = join(work, 'no-such-ca.pem');
  const cases: [string[], string][] = [
    [['push', out, '127.0.0.1:9/x:1', '--creds', 'T0kenALONE'], creds],
    [['build', hello, '--push', '127.0.0.1:9/x:1', '--creds', 'T0kenALONE'], creds],
    [['login', '127.0.0.1:9', '--creds', 'T0kenALONE'], creds],
    [['push', out, '127.0.0.1:9/x:1', '--creds', ':T0kenALONE'], creds.replace('has no ":"', 'has no user before its ":"')],
    [['digest', '127.0.0.1:9/x:1', '--ca-file', missing], `error[usage]: --ca-file ${missing}: no such file\n${caHint}`],
    [['push', out, '127.0.0.1:9/x:1', '--ca-file', work], `error[usage]: --ca-file ${work}: is a directory\n${caHint}`],
  ];
  for (const [args, stderr] of cases) {
    const r = await runCli(args, { env });
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr, stderr, args.join(' '));
  }
});

test('store add --name that is no store path name is a usage error naming --name, with a hint', async () => {
  const r = await runCli(['store', 'add', hello, '--store', join(work, 'store-bad-name'), '--name', 'bad/name'], { env });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'error[usage]: --name "bad/name" is not a store path name: the name contains the character "/" (allowed: A-Z a-z 0-9 + - . _ ? =)\nhint: a name is 1 to 211 of A-Z a-z 0-9 + - . _ ? =, e.g. --name app-1.0\n');
});

test('IMGBUILD_CACHE_DIR naming a file (or a path under one) is a usage error naming the variable, not ENOTDIR from mkdir', async () => {
  const file = join(work, 'cache-is-a-file');
  await writeFile(file, 'x');
  const r = await runCli(['build', hello, '-o', join(work, 'never.oci')], { env: { ...env, IMGBUILD_CACHE_DIR: file } });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `error[usage]: IMGBUILD_CACHE_DIR ${file} is not a directory\nhint: point IMGBUILD_CACHE_DIR at a directory (made when missing)\n`);
  const under = await runCli(['closure', hello], { env: { ...env, IMGBUILD_CACHE_DIR: join(file, 'sub') } });
  assert.equal(under.code, 2);
  assert.equal(under.stderr, `error[usage]: IMGBUILD_CACHE_DIR ${join(file, 'sub')} is under ${file}, which is not a directory\nhint: point IMGBUILD_CACHE_DIR at a directory (made when missing)\n`);
});

test('a SOURCE_DATE_EPOCH too late for a tar header is said to be out of range, with a hint (it is a whole number)', async () => {
  const r = await runCli(['build', hello, '-o', join(work, 'never.oci')], { env: { ...env, SOURCE_DATE_EPOCH: '99999999999999' } });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `error[spec]: ${join(hello, 'image.ts')}: SOURCE_DATE_EPOCH "99999999999999" is out of range: a tar header holds times up to 8589934591 (2242-03-16T12:56:31Z)\nhint: set SOURCE_DATE_EPOCH to the last commit's time (SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)), or unset it\n`);
});

test('build --plan naming a directory or nothing is a usage error naming --plan, not EISDIR', async () => {
  const hint = 'hint: name the file `imgbuild plan <spec> --json > plan.json` wrote, e.g. --plan plan.json\n';
  for (const [plan, what] of [[work, 'is a directory, not a plan file'], [join(work, 'no-plan.json'), 'no such file']]) {
    const r = await runCli(['build', hello, '--plan', plan!, '-o', join(work, 'never.oci')], { env });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `error[usage]: --plan ${plan}: ${what}\n${hint}`);
  }
});

test('a registry on this machine that cannot be reached: the hint asks for no --insecure-registry, even when the error comes wrapped', () => {
  const errno = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5000'), { code: 'ECONNREFUSED' });
  const direct = new RegistryNetworkError('127.0.0.1:5000', 'connect to 127.0.0.1:5000', 'ECONNREFUSED', { cause: errno });
  // As transports/registry.ts rethrows a registry's error (digest, inspect, diff, verify --against).
  const wrapped = new ImgbuildError(direct.code, direct.message, direct.hint, { cause: direct });
  for (const err of [direct, wrapped]) {
    assert.equal(describeFailure(err).hint, 'check that the registry is running and listening on that port (a registry on this machine needs no --insecure-registry)');
  }
  const remote = new RegistryNetworkError('registry.example:5000', 'connect', 'ECONNREFUSED', { cause: errno });
  assert.match(describeFailure(new ImgbuildError(remote.code, remote.message, remote.hint, { cause: remote })).hint!, /needs --insecure-registry <host\[:port\]>/);
});

test('--insecure-registry and IMGBUILD_INSECURE_REGISTRIES take host[:port]: anything else is a usage error (was: taken, never matching)', async () => {
  const out = join(work, 'insecure.oci');
  assert.equal((await runCli(['build', hello, '-o', out], { env })).code, 0);
  const hint = 'hint: name it as a reference does, host[:port]: e.g. --insecure-registry registry.local:5000\n';
  for (const bad of ['a b', '*', 'reg:99999', '']) {
    const r = await runCli(['digest', out, '--insecure-registry', bad], { env });
    assert.equal(r.code, 2, bad);
    assert.equal(r.stderr, `error[usage]: --insecure-registry ${JSON.stringify(bad)} is not a registry host\n${hint}`);
  }
  const fromEnv = await runCli(['digest', out], { env: { ...env, IMGBUILD_INSECURE_REGISTRIES: 'reg.local:5000, ,a b' } });
  assert.equal(fromEnv.code, 2);
  assert.equal(fromEnv.stderr, 'error[usage]: IMGBUILD_INSECURE_REGISTRIES names "a b", which is not a registry host\nhint: list host[:port] separated by commas: e.g. IMGBUILD_INSECURE_REGISTRIES=registry.local:5000,10.0.0.2 (or --insecure-registry <host[:port]>)\n');
  // The registry client drops a scheme (registry-client/reference.ts normaliseRegistry): these match.
  for (const good of ['reg.local:5000', '[::1]:5000', '10.0.0.2', 'http://reg.local:5000']) {
    const r = await runCli(['digest', out, '--insecure-registry', good], { env });
    assert.equal(r.code, 0, `${good}: ${r.stderr}`);
  }
});

test('build --platform that is not os/arch[/variant] in Go\'s names is said to be no platform, not "the spec builds …"', async () => {
  const cases: [string, string][] = [
    ['bogus', '"bogus" is not a Go architecture name'],
    ['bogus/amd64', '"bogus" is not a Go OS name'],
    ['linux/aarch64', '"aarch64" is not a Go architecture name; did you mean "arm64"?'],
  ];
  for (const [platform, why] of cases) {
    const r = await runCli(['build', hello, '--platform', platform, '-o', join(work, 'never.oci')], { env });
    assert.equal(r.code, 2, platform);
    assert.equal(r.stderr, `error[usage]: --platform ${JSON.stringify(platform)} is not a platform: ${why}\nhint: write os/arch[/variant] with Go's names, e.g. --platform linux/arm64 (the spec builds linux/amd64)\n`);
  }
  const other = await runCli(['build', hello, '--platform', 'linux/arm64', '-o', join(work, 'never.oci')], { env });
  assert.equal(other.code, 2);
  assert.match(other.stderr, /^error\[usage\]: --platform linux\/arm64: the spec builds linux\/amd64$/m, 'a platform the spec lacks is said as before');
});

test("build --sbom '' is a usage error (was: nothing attached, exit 0)", async () => {
  const r = await runCli(['build', hello, '--sbom', '', '-o', join(work, 'never.oci')], { env });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'error[usage]: --sbom names no format\nhint: use spdx, cyclonedx (comma-separated for both)\n');
});

for (const [flag, what] of [
  ['--plan', 'a file'],
  ['--digest-file', 'a file'],
  ['--previous', 'an image'],
  ['--cache-ref', 'an image reference'],
  ['--store', 'a directory'],
  ['--closure-file', 'a file'],
  ['--substituter', 'a binary cache URL'],
] as const) {
  test(`build ${flag} '' (an unset variable in a script) is a usage error, not the flag left out`, async () => {
    const out = join(work, `empty${flag}.oci`);
    const r = await runCli(['build', hello, flag, '', '-o', out], { env });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `error[usage]: ${flag} is empty: it needs ${what}\nhint: give ${flag} ${what}, or leave it out (in a script, an unset variable gives "")\n`);
    assert.equal(r.stdout.toString(), '');
  });
}

test("push '' <target>: the empty image argument is a usage error", async () => {
  const r = await runCli(['push', '', 'localhost:1/x/y:1'], { env });
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'error[usage]: the image argument is empty: it needs an image\nhint: name one (in a script, an unset variable gives "")\n');
});

test('the README says which commands take --json: every command but build --stream and sbom, whose stdout is the SBOM', async () => {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  assert.match(readme, /\*\*`--json`\*\* \(every command but `build --stream` and `sbom`/);
  const without: string[] = [];
  for (const c of await commands()) {
    if (!helpOptions((await runCli([...c, '--help'])).stdout.toString()).some((o) => o.long === '--json')) without.push(c.join(' '));
  }
  assert.deepEqual(without, ['sbom']);
});
