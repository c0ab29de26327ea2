#!/usr/bin/env node
// Bundles the CLI after tsc: dist/builder/bin.js (answers --version, turns on Node's compile
// cache, then imports cli.js) and what it imports become dist/builder/imgbuild.js (the package's
// `bin`) and chunks dist/builder/imgbuild-<hash>.js, one set per command (each command's module
// is imported lazily, so a push never parses the build).
//
// Why: Node loads an ES module file by file: resolve, read, compile, link. A no-op push loaded
// ~190 files (zod alone ~100) and spent about a quarter of its CPU doing so; the bundle loads a
// handful. Everything is written flat into dist/builder/, next to builder/install-paths.js, so
// `import.meta.url` names the same folder in the bundle as in tsc's output.
//
// Left outside (loaded from node_modules at run time, as before): undici (registry-client loads
// parts of it by path, undici-lean.ts: one copy, not two), jiti (the TS spec loader, only for
// .ts specs), yaml and the WebAssembly packages.
//
// Without esbuild (a devDependency), imgbuild.js is a one-line entry importing bin.js: the same
// CLI, unbundled.
import { chmodSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const builderDir = join(root, 'dist', 'builder');
const entry = join(builderDir, 'bin.js');
const CHUNK = /^imgbuild(-[A-Z0-9]+|-cmd-[a-z-]+)?\.js$/;

/**
 * Commands that also get a bundle of their own, one file holding the CLI and everything the
 * command can load (its lazy imports inlined, still run only when reached): the bin imports
 * dist/builder/imgbuild-cmd-<name>.js when the command line names the command. Loading ~40
 * chunks instead was ~75 ms of CPU of a no-op push's ~350 on Node 20 (each ES module costs
 * the loader a resolve, a read, a compile and a link), ~40 ms of a small warm build's ~385.
 * Only for these two, the commands CI runs on every job: each bundle is a copy (push ~0.6 MB,
 * build ~1.2 MB); the rest share the chunks. Names must match bin.ts's literal URLs (one per command).
 */
const OWN_BUNDLES = ['push', 'build'];

let esbuild;
try {
  esbuild = createRequire(join(root, 'package.json'))('esbuild');
} catch {
  esbuild = undefined;
}

/**
 * For a command's own bundle: cli.js's lazy imports of the other commands' modules are left out
 * (the bin only loads this bundle for this command, so they are never reached; should one be,
 * it fails to load rather than run a second copy of the CLI's modules).
 */
function onlyCommand(command) {
  return {
    name: 'only-command',
    setup(build) {
      build.onResolve({ filter: /^\.\/commands\/[a-z-]+\.js$/ }, (args) => {
        if (args.kind !== 'dynamic-import' || args.importer !== join(builderDir, 'cli.js')) return undefined;
        if (args.path === `./commands/${command}.js` || args.path === './commands/zod-jitless.js') return undefined;
        return { path: `./imgbuild-cmd-${command}-not-${args.path.slice('./commands/'.length)}`, external: true };
      });
    },
  };
}

// Build into a temp folder, then swap: a failed bundle leaves the previous (or no) bin, never half of one.
const tmp = join(root, 'dist', `.bundle-${process.pid}`);
rmSync(tmp, { recursive: true, force: true });
try {
  if (esbuild) {
    const common = {
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      external: ['undici', 'jiti', 'yaml', '@hpcc-js/wasm-zstd', 'xz-decompress'],
      // Bundled CommonJS (commander) requires Node builtins: give the ES module a `require`.
      banner: { js: "import { createRequire as __imgbuildCreateRequire } from 'node:module'; const require = __imgbuildCreateRequire(import.meta.url);" },
      // Class names are data here (commander's errors are told apart by `name`): keep them.
      keepNames: true,
      logLevel: 'warning',
    };
    await esbuild.build({
      ...common,
      entryPoints: { imgbuild: entry },
      outdir: tmp,
      splitting: true,
      chunkNames: 'imgbuild-[hash]',
    });
    for (const command of OWN_BUNDLES) {
      await esbuild.build({
        ...common,
        entryPoints: [join(builderDir, 'cli.js')],
        outfile: join(tmp, `imgbuild-cmd-${command}.js`),
        plugins: [onlyCommand(command)],
      });
    }
  } else {
    process.stderr.write('imgbuild bundle: esbuild is not installed; dist/builder/imgbuild.js imports bin.js unbundled\n');
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'imgbuild.js'), "#!/usr/bin/env node\nimport './bin.js';\n");
  }
  for (const old of readdirSync(builderDir)) if (CHUNK.test(old)) rmSync(join(builderDir, old));
  chmodSync(join(tmp, 'imgbuild.js'), 0o755);
  for (const made of readdirSync(tmp)) renameSync(join(tmp, made), join(builderDir, made));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
