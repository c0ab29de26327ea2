#!/usr/bin/env node
import { Command } from 'commander';
import { outputFormats } from './transports/write.js';
import { describeFailure, reportFailure } from './commands/failure.js';
import { ImgbuildError } from './errors.js';
import { ignoreStderrErrors, watchStdoutErrors } from './commands/stdout-errors.js';
import { availableParallelism } from 'node:os';
import { packageVersion } from './install-paths.js';
import { limitHeapGrowth } from './startup.js';

// Layers deflate on the libuv pool, two blocks per core (layer/gzip.ts), and file writes need
// threads too. The pool starts at its first job (no import above queues one), so setting the
// size here takes effect.
watchStdoutErrors();
ignoreStderrErrors();

process.env.UV_THREADPOOL_SIZE ??= String(Math.min(1024, Math.max(4, 2 * availableParallelism() + 2)));

/**
 * A command's module is loaded when that command runs, so start-up only pays for what it uses
 * (a local build never loads the HTTP client; a JSON spec never loads the TS loader).
 */
function lazy<M extends Record<K, (...args: never[]) => Promise<void>>, K extends string>(load: () => Promise<M>, name: K) {
  return async (...args: Parameters<M[K]>): Promise<void> => (await load())[name](...args);
}

const program = new Command()
  .name('imgbuild')
  .description('Build reproducible OCI container images from a declarative spec (no Dockerfile, no daemon, no Nix evaluation).')
  .version(packageVersion(), '-V, --version')
  // Commander's errors (an unknown option, a missing argument) are thrown, not exited on, and
  // not printed by commander: the CLI prints them as every usage error, `error[usage]: …` with a
  // hint naming the command's --help, and exits 2 (failure.ts; finishCommands below says which
  // command). Subcommands inherit both.
  .exitOverride()
  .configureOutput({ outputError: () => {} })
  .addHelpText(
    'after',
    `
stdout carries the result alone: build prints the manifest digest; build --push, push and index
create print the pushed image pinned, <registry>/<repository>@<digest>; sbom prints the SBOM
(or writes it to -o); referrers one line per artifact; --json prints one
document (schemaVersion 1; on a failure {"schemaVersion":1,"error":{"code","message","hint"}}).
Everything else goes to stderr.

An option is given once unless its help says repeatable: given twice with different values
(--push a --push b), or both ways (--ci-metadata --no-ci-metadata), it is a usage error.

Exit codes: 0 success (diff, verify: the same); 1 an error (diff, verify: they differ);
2 a usage error (diff, verify: any error, "could not check"); 130 interrupted; 141 stdout
closed by its reader (| head), as for SIGPIPE.`,
  );

program.hook('preAction', async (_program, command) => {
  // Once the command is loaded and before it allocates anything of size (startup.ts): earlier,
  // the early build worker's start-up and the built-ins loaded meanwhile missed Node's code
  // caches (~40 ms more for the worker to start, ~10 ms on this thread).
  if (command.name() === 'build') limitHeapGrowth();
  // zod's parsers without their compiled fast path (same results): see commands/zod-jitless.ts.
  if (command.name() !== 'login' && command.name() !== 'help') await import('./commands/zod-jitless.js');
  // The registry flags' values, checked before the command does anything (a build would be
  // wasted before its push reads them): loaded only when one is given.
  const opts = command.opts<{ creds?: string; caFile?: string[]; insecureRegistry?: string[] }>();
  const takesInsecure = command.options.some((o) => o.long === '--insecure-registry');
  if (opts.creds !== undefined || opts.caFile !== undefined || opts.insecureRegistry !== undefined || (takesInsecure && process.env.IMGBUILD_INSECURE_REGISTRIES)) {
    (await import('./commands/arguments.js')).checkRegistryFlags(opts, takesInsecure ? process.env : {});
  }
});

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * In a command's own bundle (scripts/bundle-cli.mjs defines `globalThis.__imgbuildOnlyCommand`),
 * only that command is defined: the bin runs the bundle only when the command line names it.
 * Defining the other ~20 commands and their options cost a push ~2 ms of CPU (commander parses
 * every option's flags). In cli.js it is undefined: every command.
 */
const onlyCommand = (globalThis as { __imgbuildOnlyCommand?: string }).__imgbuildOnlyCommand;
const defines = (...names: string[]) => onlyCommand === undefined || names.includes(onlyCommand);

/** How long to wait for a registry (registry-flags.ts TIMEOUT_SETTINGS; defaults in docs/reliability.md). */
const timeoutOptions = (cmd: Command) =>
  cmd
    .option('--connect-timeout <duration>', 'give up on a connection (TLS included) not made in this time (default 10s; also IMGBUILD_CONNECT_TIMEOUT)')
    .option('--response-timeout <duration>', 'give up on a request not answered in this time (default 30s; also IMGBUILD_RESPONSE_TIMEOUT)')
    .option('--idle-timeout <duration>', 'give up on a body (sent or received) that moves no byte for this long (default 30s; also IMGBUILD_IDLE_TIMEOUT)')
    .option('--blob-timeout <duration>', "a blob's transfer may take this long plus its size at --min-speed (default 60s; also IMGBUILD_BLOB_TIMEOUT)")
    .option('--min-speed <size>', 'the slowest transfer a blob is given time for, per second (default 256KiB; also IMGBUILD_MIN_SPEED)');

const registryOptions = (cmd: Command) =>
  timeoutOptions(cmd)
    .option('--insecure-registry <host[:port]>', 'plain HTTP or unverified TLS for this registry only (repeatable; also IMGBUILD_INSECURE_REGISTRIES; localhost, 127.0.0.0/8 and [::1] may be plain HTTP without it)', collect)
    .option('--ca-file <pem>', 'trust this CA certificate for registries, besides the system roots (repeatable)', collect)
    .option('--creds <user:password>', 'credentials for the target registry (default: Docker config, then GITHUB_TOKEN for ghcr.io)')
    .option('--chunk-size <size>', 'upload blobs in PATCH chunks of this size (e.g. 4MiB); 0 = one PUT (default: 4MiB on ghcr.io, else 0)');

const storeOptions = (cmd: Command) =>
  cmd
    .option('--store <dir>', "directory holding the store paths (overrides the spec's store.dir)")
    .option('--store-dir <path>', 'logical store dir written into the image (default /nix/store)')
    .option('--nix', 'take store paths and their closure from the Nix installation (contents may be installables such as nixpkgs#hello)')
    .option('--closure-file <file>', 'take the closure from this file (nix path-info --json, exportReferencesGraph or closureInfo output) and the files from --store or the store dir')
    .option('--verify-store', 'check the NAR hashes the Nix store or closure file gives against the files')
    .option('--substituter <url>', 'take store paths and their closure from this Nix binary cache (https://…, http://…, file:///…): narinfos and NARs, checked and streamed into the layers, no Nix or /nix/store needed')
    .option('--trusted-public-key <key>', "with a binary cache: refuse every path not signed by one of these keys (Nix's name:base64 format, repeatable)", collect);

/** --annotation, --label, --ci-metadata: what build, verify and sbom take (the same flags give the same image). */
const metadataOptions = (cmd: Command) =>
  cmd
    .option('--annotation <key=value>', 'an OCI annotation on the manifest (and the index of a multi-platform image), over the spec\'s annotations; with any annotation, org.opencontainers.image.created and .base.name/.base.digest are filled too (repeatable)', collect)
    .option('--label <key=value>', 'a label in the image config (config.Labels), over the spec\'s (repeatable)', collect)
    .option('--ci-metadata', 'add org.opencontainers.image.source, .revision, .version and .url from the CI (GitHub Actions, GitLab CI) as labels and annotations; on by default when GITHUB_ACTIONS or GITLAB_CI is "true"')
    .option('--no-ci-metadata', 'do not add them, even in CI');

if (defines('build')) registryOptions(storeOptions(metadataOptions(
  program
    .command('build')
    .description('build the image a spec describes and write it out')
    .argument('<spec>', 'spec file (.ts .mts .cts .js .mjs .cjs .json .yaml .yml), or a directory holding image.<ext>')
    .option('-o, --output <path>', 'where to write the image (default: <name>.oci, <name>.oci.tar or <name>.docker.tar); may name the format: oci:<dir>, oci-archive:<file>, docker-archive:<file>')
    // Formats are checked by the command (build.ts), so a bad one is an error[usage] as every other bad flag value.
    .option('-f, --format <format>', `output format: ${outputFormats.join(', ')} (default: from -o: oci-archive for *.oci.tar, docker-archive for *.docker.tar, else oci)`)
    .option('--stream', 'write a docker-archive to stdout instead of a file (for `| docker load`)')
    .option('--json', 'print a machine-readable summary with every digest to stdout')
    .option('--previous <image>', 'the previous build (any image argument, e.g. oci:<dir> or docker://<ref>): keep its store layers that are still whole (stable layering)')
    .option('--plan <file>', 'follow this plan (`imgbuild plan --json` output) instead of planning; refused when it was made for other contents')
    .option('--platform <os/arch[/variant]>', "build only this platform of a multi-platform spec (repeatable); a docker-archive or --stream holds one", collect)
    .option('--push <reference>', 'push the image to a registry (e.g. ghcr.io/org/app:1.0); no file is written unless -o is given')
    .option('--tag <tag>', 'with --push: also push under this tag (repeatable; without --push, a usage error)', collect)
    .option('--digest-file <file>', 'write the digest build prints to this file (the manifest\'s, or the index\'s; with --push, the pushed one\'s)')
    .option('--cache-ref <repo[:tag]>', "keep layer records in this registry repository (default tag imgbuild-layers; overrides the spec's cache.ref): fetched before the build, so layers the --push target already holds are neither read from the store nor sent; pushed after it")
    .option('--sbom <formats>', 'make an SBOM of each image (spdx, cyclonedx, or spdx,cyclonedx) and attach it as an OCI 1.1 referrer in the output (oci, oci-archive) and the push (referrers API, else the sha256-<hex> tag)'),
))).action(lazy(() => import('./commands/build.js'), 'runBuild'));

if (defines('sbom')) registryOptions(storeOptions(metadataOptions(
  program
    .command('sbom')
    .description("print an SBOM: a spec's (made from its build: the same bytes build --sbom attaches) or an image's (the one attached to it, byte for byte; else one read back from the image, saying what it cannot know)")
    .argument('<spec|image>', 'a spec file or a directory holding image.<ext>; or an image: oci:<dir>[:tag], oci-archive:<file>[:tag], docker://<ref>, ...')
    .option('--format <format>', 'SBOM format: spdx or cyclonedx', 'spdx')
    .option('--platform <os/arch[/variant]>', 'of a multi-platform spec or image, this platform\'s image (required when it has several)')
    .option('-o, --output <file>', 'write the SBOM to this file instead of stdout'),
))).action(lazy(() => import('./commands/sbom.js'), 'runSbom'));

if (defines('referrers')) registryOptions(
  program
    .command('referrers')
    .description('list the artifacts attached to an image (OCI 1.1 referrers: SBOMs, signatures), one a line: digest, artifactType, size')
    .argument('<image>', 'docker://<ref> (the referrers API, else the sha256-<hex> tag), oci:<dir>[:tag] or oci-archive:<file>[:tag]')
    .option('--platform <os/arch[/variant]>', "of a multi-platform image, this platform's image's referrers (default: the index's)")
    .option('--json', 'print JSON: {schemaVersion, source, subject, via, referrers}'),
).action(lazy(() => import('./commands/sbom.js'), 'runReferrers'));

if (defines('push')) registryOptions(
  program
    .command('push')
    .description('push an image to a registry: one on disk, or one on a registry (a copy; blobs mounted or streamed, never written to disk)')
    .argument('<image>', 'oci:<dir>[:tag], oci-archive:<file>[:tag], docker-archive:<file>[:name:tag] (gzipped too), docker://<ref>, or a path')
    .argument('<reference>', 'where to push, e.g. ghcr.io/org/app:1.0 or localhost:5000/app:dev')
    .option('--tag <tag>', 'also push under this tag (repeatable)', collect)
    .option('--digest-file <file>', 'write the pushed manifest digest to this file')
    .option('--json', 'print JSON'),
).action(lazy(() => import('./commands/push.js'), 'runPush'));

if (defines('index')) registryOptions(
  program
    .command('index')
    .description('multi-platform images (OCI image indexes)')
    .command('create')
    .description('push an index over images already built (on a registry or on disk), each under the platform its config names; blobs the target holds are not moved')
    .argument('<reference>', 'where to push the index, e.g. ghcr.io/org/app:1.0')
    .argument('<image...>', 'the images, in order: docker://<ref>, oci:<dir>, ... (an index adds all of its images)')
    .option('--tag <tag>', 'also push under this tag (repeatable)', collect)
    .option('--digest-file <file>', 'write the index digest to this file')
    .option('--json', 'print JSON'),
).action(lazy(() => import('./commands/index.js'), 'runIndexCreate'));

if (defines('login')) registryOptions(
  program
    .command('login')
    .description("check credentials against a registry and store them in Docker's config (~/.docker/config.json or a credential helper)")
    .argument('<registry>', 'registry host, e.g. ghcr.io or localhost:5000')
    .option('-u, --username <name>', 'user name')
    .option('--password-stdin', 'read the password or token from standard input')
    .option('--json', 'print JSON'),
).action(lazy(() => import('./commands/login.js'), 'runLogin'));

if (defines('inspect')) registryOptions(
  program
    .command('inspect')
    .description('show the config, layers, sizes and store paths of an image (a registry image: its layers are not fetched)')
    .argument('<image>', 'oci:<dir>[:tag], oci-archive:<file>[:tag], docker-archive:<file>[:name:tag] (gzipped too), docker://<ref>, or a path')
    .option('--platform <os/arch[/variant]>', 'of a multi-platform image, show this platform\'s image (default: list the platforms)')
    .option('--json', 'print JSON'),
).action(lazy(() => import('./commands/inspect.js'), 'runInspect'));

if (defines('closure')) storeOptions(
  program
    .command('closure')
    .description('print the closure of a spec: every store path with its NAR size and references')
    .argument('<spec>', 'spec file, or a directory holding image.<ext>')
    .option('--platform <os/arch[/variant]>', "of a multi-platform spec, this platform's closure (required when it has several)")
    .option('--json', 'print JSON'),
).action(lazy(() => import('./commands/closure.js'), 'runClosure'));

if (defines('plan')) registryOptions(storeOptions(
  program
    .command('plan')
    .description('print the layer plan of a spec: each layer, its paths, size and why it is there')
    .argument('<spec>', 'spec file, or a directory holding image.<ext>')
    .option('--platform <os/arch[/variant]>', "of a multi-platform spec, this platform's plan (required when it has several)")
    .option('--json', 'print JSON')
    .option('--previous <image>', 'plan against a previous build: any image argument (stable layering)'),
)).action(lazy(() => import('./commands/plan.js'), 'runPlan'));

// crane's daily verbs (ls, tag, digest, manifest, config) and `store add`: one block.
if (defines('ls', 'tag', 'digest', 'manifest', 'config', 'store')) {
  /** --insecure-registry, --ca-file, --creds: what a command that reads a registry (or only PUTs manifests) takes. */
  const registryReadOptions = (cmd: Command) =>
    timeoutOptions(cmd)
      .option('--insecure-registry <host[:port]>', 'plain HTTP or unverified TLS for this registry only (repeatable; also IMGBUILD_INSECURE_REGISTRIES; localhost, 127.0.0.0/8 and [::1] may be plain HTTP without it)', collect)
      .option('--ca-file <pem>', 'trust this CA certificate for registries, besides the system roots (repeatable)', collect)
      .option('--creds <user:password>', "credentials for the image's registry (default: Docker config, then GITHUB_TOKEN for ghcr.io)");
  const IMAGE_ARG = 'oci:<dir>[:tag], oci-archive:<file>[:tag], docker-archive:<file>[:name:tag] (gzipped too), docker://<ref>, or a path';
  const PLATFORM = '<os/arch[/variant]>';

  registryReadOptions(
    program
      .command('ls')
      .description("list a registry repository's tags, one a line (every page of a long list)")
      .argument('<repo>', 'a repository, e.g. ghcr.io/org/app or localhost:5000/app (docker:// allowed)')
      .option('--json', 'print JSON: {schemaVersion, repository, tags}'),
  ).action(lazy(() => import('./commands/ls.js'), 'runLs'));

  registryReadOptions(
    program
      .command('tag')
      .description("give a registry image more tags in its repository: the same manifest bytes PUT under each tag (no blob moves)")
      .argument('<image>', 'a registry image: docker://<ref> or host/repo:tag (or @sha256:...)')
      .argument('<tag...>', 'tags to add, e.g. latest 1.2')
      .option('--json', 'print JSON: {schemaVersion, source, repository, digest, mediaType, tags, references}')
      .addHelpText('after', '\nExample: imgbuild tag ghcr.io/acme/app:1.2.3 1.2 1 latest   (prints ghcr.io/acme/app:<tag>@sha256:... for each)\nTo another repository or registry: imgbuild push docker://ghcr.io/acme/app:1.2.3 <reference>'),
  ).action(lazy(() => import('./commands/tag.js'), 'runTag'));

  registryReadOptions(
    program
      .command('digest')
      .description("print an image's manifest digest (an index's, for a multi-platform image), alone on a line")
      .argument('<image>', IMAGE_ARG)
      .option(`--platform ${PLATFORM}`, "of a multi-platform image, the digest of this platform's manifest")
      .option('--json', 'print JSON: {schemaVersion, source, digest, mediaType, size, platform}')
      .addHelpText('after', '\nExample: DIGEST=$(imgbuild digest docker://ghcr.io/acme/app:1.0)\n`imgbuild manifest <image> | sha256sum` gives the same digest: manifest and config print the bytes as stored.'),
  ).action(lazy(() => import('./commands/image-verbs.js'), 'runDigest'));

  registryReadOptions(
    program
      .command('manifest')
      .description("print an image's manifest (an index, for a multi-platform image) exactly as stored")
      .argument('<image>', IMAGE_ARG)
      .option(`--platform ${PLATFORM}`, "of a multi-platform image, print this platform's manifest")
      .option('--json', 'print JSON: {schemaVersion, source, digest, mediaType, size, platform, manifest}'),
  ).action(lazy(() => import('./commands/image-verbs.js'), 'runManifest'));

  registryReadOptions(
    program
      .command('config')
      .description("print an image's config exactly as stored")
      .argument('<image>', IMAGE_ARG)
      .option(`--platform ${PLATFORM}`, "of a multi-platform image, this platform's config (required when it has several)")
      .option('--json', "print JSON: {schemaVersion, source, digest (the image manifest's), configDigest, mediaType, size (the config's), platform, config}"),
  ).action(lazy(() => import('./commands/image-verbs.js'), 'runConfig'));

  program
    .command('store')
    .description('directory stores (a directory of <hash>-<name> store paths, no Nix needed)')
    .command('add')
    .description('copy a directory or file into a directory store under the path `nix-store --add` would give it (same hash; modes 0444/0555, dirs 0555) and print that path')
    .argument('<dir-or-file>', 'what to add')
    .option('--store <dir>', 'the directory store to add to (created when missing)')
    .option('--store-dir <path>', 'the logical store dir, part of the hash as in Nix (default /nix/store)')
    .option('--name <name>', "the store path's name (default: the base name of <dir-or-file>)")
    .option('--json', 'print JSON: {schemaVersion, path, store, storeDir, fsPath, narHash, narSize, added}')
    .addHelpText(
      'after',
      `
Example: imgbuild store add ./app --store ./store   prints /nix/store/<hash>-app, the path
\`nix-store --add ./app\` gives (the NAR's sha256 in Nix's fingerprint source:sha256:<hex>:<storeDir>:<name>,
folded to 20 bytes, nix-base32); its files are in ./store/<hash>-app. Name it in a spec's contents
or copyToRoot with store.dir ./store. A build warns when a file names a store path the store lacks.`,
    )
    .action(lazy(() => import('./commands/store-add.js'), 'runStoreAdd'));
}


/** Whether the command answers a question (diff, verify): then an error exits 2, "could not check" (failure.ts). */
let answeringCommand = false;

/**
 * `diff` and `verify` answer a question: exit 0 (the same) or 1 (they differ). An error there
 * exits 2, as diff(1) and cmp(1) do, so a CI job can tell "not reproducible" from "could not
 * check". Every other command exits 1 on an error (2 on a usage error).
 */
const answering = (cmd: Command) =>
  cmd.hook('preAction', () => {
    answeringCommand = true;
  });

if (defines('verify')) answering(registryOptions(storeOptions(metadataOptions(
  program
    .command('verify')
    .description('build a spec twice in isolated temp dirs (other cwd, umask, TZ, cache) and check that the digests agree; exit 1 with the diff if not, 2 on an error')
    .argument('<spec>', 'spec file or directory')
    .option('--against <image>', 'compare one build with this image instead: OCI layout, OCI archive, docker-archive, or a registry image (docker://host/repo@sha256:...); an image built with --previous is rebuilt carrying over the layers it carried over')
    .option('--previous <image>', 'build as `build --previous <image>` does (stable layering): carry over its store layers that are still whole')
    .option('--with-referrers', 'with --against: also check that each SBOM attached to that image (OCI referrers) is the one this build makes, byte for byte')
    .option('--keep', 'keep the builds in their temp dir and print where')
    .option('--json', 'print JSON'),
)))).action(lazy(() => import('./commands/verify.js'), 'runVerify'));

if (defines('diff')) answering(registryOptions(
  program
    .command('diff')
    .description('show how two images differ: manifest, config, layers, and the files inside changed layers; exit 1 if they differ, 2 on an error')
    .argument('<a>', 'oci:<dir>[:tag], oci-archive:<file>[:tag], docker-archive:<file>[:name:tag] (gzipped too), docker://<ref>, or a path')
    .argument('<b>', 'the image to compare with')
    .option('--max-files <n>', 'files listed per changed layer, a whole number (default 50)')
    .option('--json', 'print JSON'),
)).action(lazy(() => import('./commands/diff.js'), 'runDiff'));

if (defines('cache')) {
  const cache = program.command('cache').description("manage imgbuild's local cache (layer records, blobs, scan results)");
  cache
    .command('prune')
    .description('bound the cache: blobs least recently used first, and what was not used for an age; say what went and why')
    .option('--max-size <size>', 'keep at most this many bytes of blobs, removing the least recently used first (e.g. 10G, 500M; powers of 1024)')
    .option('--older-than <age>', 'remove blobs, layer records and scan records not used for this long (e.g. 30d, 12h, 1w; 0s: all)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
With no option, only what no build can use goes: unreadable layer records and temp files of
builds that died (the process named in them is gone and they were not written to for a minute,
or older than a day). Blobs go only with --max-size or --older-than. Layer records (cache key -> digest,
a few hundred bytes each) go only with --older-than, never because their blob is gone: a push
needs only the record (the registry holds the layer, or it is made again as it is sent), which
is why CI keeps ~/.cache/imgbuild/layers and not the blobs. A build touches the blobs and records
it uses, so "not used" counts from the last build that used them. Scan records go with
--older-than, counted from when the path was scanned.
Prune may run beside builds: --max-size never removes a blob used within the last minute (a
running build may be about to read it; the cache may stay above the bound until the next
prune), and a build whose blob is removed after it looked it up makes it again from the store.
--older-than removes what it names, in use or not (0s empties the cache).
--json prints {schemaVersion, cacheDir, maxSize, olderThanMs, removed: {blobs: {olderThan, maxSize},
layerRecords: {olderThan, unreadable}, scanRecords: {olderThan}, tempFiles: {stale}},
kept: {blobs, layerRecords, scanRecords}}, each a {count, bytes}.`,
    )
    .action(lazy(() => import('./commands/cache.js'), 'runCachePrune'));
  cache
    .command('verify')
    .description('check the cache: hash every blob, check every layer record against its blob and every scan and closure record against its checksum; exit 1 naming what is damaged')
    .option('--repair', 'remove the damaged blobs and records (the next build makes them again from the store)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Every blob must hash to its name; every layer record must parse, carry the checksum of its
fields, and agree with its blob when that is here (size, and the diff_id and size of the
uncompressed tar, gunzipped to check); every scan record (a line of scan/pack-*.jsonl) and
closure record must match its checksum; each must be a file (not a directory or a dangling
symlink), and blobs/sha256, layers, scan and closures directories. Damage (a flipped byte, a
truncated or torn file, a wrong kind of entry) is listed with what is wrong; without --repair
that is an error (exit 1, error[cache] on stderr; with --json the report, listing it, is still
printed). --repair removes the damaged files (a scan record pack is written again without its
damaged lines; a wrong entry is removed whole; a cache directory that is a file is left, and
still fails): a build writes them again from the store. A build checks each cached blob and
record it reads anyway (and rewrites a damaged one from the store); verify checks them all at
once.
--json prints {schemaVersion, cacheDir, repair, checked: {blobs, blobBytes, layerRecords,
scanRecords, closureRecords}, damaged: [{kind, path, problem}], repaired}, kind one of blob,
layer-record, scan-record, closure-record, directory.`,
    )
    .action(lazy(() => import('./commands/cache.js'), 'runCacheVerify'));
}

/**
 * What every command gets once all are defined:
 * - a commander error (an unknown option, a missing argument) names the command it came from,
 *   for the hint `see imgbuild <command> --help` (failure.ts);
 * - an option that takes one value, given twice with different values, is a usage error (commander
 *   would keep the last: `--push a --push b` pushed to b alone); so are the two sides of a
 *   negatable pair (`--ci-metadata --no-ci-metadata`). Options whose values are collected into a
 *   list (those the help calls repeatable: --tag, --label, ...) repeat as before;
 * - a command with subcommands gets a `help [command]` of its own, the one commander adds
 *   (same name, place and text in the help), except that an unknown command is said to be one.
 */
function finishCommands(cmd: Command, path: string): void {
  cmd.exitOverride((err) => {
    throw Object.assign(err, { commandPath: path });
  });
  refuseRepeatedOptions(cmd, path);
  for (const sub of cmd.commands) finishCommands(sub, `${path} ${sub.name()}`);
  if (cmd.commands.length > 0) addHelpCommand(cmd);
}

function refuseRepeatedOptions(cmd: Command, path: string): void {
  // What each option was given on this command line: option name -> [the flag, its value].
  const given = new Map<string, { flag: string; value: unknown }>();
  for (const option of cmd.options) {
    const key = option.attributeName();
    if (key === 'version') continue;
    const flag = option.short && option.long ? `${option.short}/${option.long}` : (option.long ?? option.short ?? option.flags);
    // Runs after commander's own listener (added with the option), which has set the value.
    cmd.on(`option:${option.name()}`, (raw: string | undefined | null) => {
      if (Array.isArray(cmd.getOptionValue(key))) return;
      const value = option.negate ? false : (raw ?? true);
      const before = given.get(key);
      given.set(key, { flag, value });
      if (!before || before.value === value) return;
      if (before.flag !== flag) {
        throw new ImgbuildError('usage', `${before.flag} and ${flag} both given`, `give one of them (see ${path} --help)`);
      }
      throw new ImgbuildError('usage', `${flag} given twice, with different values: it takes one`, `give ${flag} once (the options that repeat say "repeatable" in ${path} --help)`);
    });
  }
}

function addHelpCommand(parent: Command): void {
  parent
    .command('help')
    .description('display help for command')
    .argument('[command]')
    // As commander's: `help build --json` is build's help.
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (_name: string | undefined, _options: unknown, help: Command) => {
      // Its first word that is no option (`help --help` is the parent's help).
      const name = help.args.find((a) => !a.startsWith('-'));
      if (name === undefined) parent.help();
      const sub = parent.commands.find((c) => c.name() === name || c.aliases().includes(name));
      if (sub && sub.name() !== 'help') sub.help();
      const names = parent.commands.map((c) => c.name());
      const { closestKey } = await import('./spec/suggest.js');
      const near = closestKey(name, names);
      // As commander says it (failure.ts moves the suggestion into the hint).
      parent.error(`error: unknown command '${name}'${near ? `\n(Did you mean ${near}?)` : ''}`, { code: 'commander.unknownCommand', exitCode: 1 });
    });
}

finishCommands(program, 'imgbuild');

// No top-level await: the push and build bundles are CommonJS scripts (scripts/bundle-cli.mjs),
// which cannot have one. The process lives on until the command ends all the same.
void program.parseAsync(process.argv).catch((err: unknown) => {
  const failure = describeFailure(err, answeringCommand);
  // A command given without its subcommand (`imgbuild cache`): commander has printed its help on
  // stderr as the answer. Help and --version exit 0.
  const helpShown = err instanceof Error && err.name === 'CommanderError' && (err as { code?: unknown }).code === 'commander.help';
  if (failure.exitCode !== 0) reportFailure(failure, { json: wantsJson(process.argv.slice(2)), alreadyPrinted: helpShown });
  process.exitCode = failure.exitCode;
});

/** `--json` among the options (before a `--`): a failure then prints the error document on stdout. */
function wantsJson(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}
