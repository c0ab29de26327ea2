#!/usr/bin/env node
// Bundles the CLI after tsc: dist/builder/bin.js (answers --version, turns on Node's compile
// cache, then runs a command's own bundle or imports cli.js) becomes dist/builder/imgbuild.cjs
// (the package's `bin`, CommonJS: an ES module entry costs Node its ES module loader before the
// first line runs) and dist/builder/imgbuild.js (the same as an ES module, for callers that name
// that file); cli.js becomes dist/builder/imgbuild-cli.js with chunks dist/builder/imgbuild-<hash>.js,
// one set per command (each command's module is imported lazily, so a push never parses the build).
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
// Node built-ins are loaded with `require` in every bundle, ES modules included (builtinsByRequire).
//
// Without esbuild (a devDependency), imgbuild.js and imgbuild.cjs are one-line entries importing
// bin.js: the same CLI, unbundled.
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const builderDir = join(root, 'dist', 'builder');
const entry = join(builderDir, 'bin.js');
const CHUNK = /^imgbuild(-[A-Z0-9]+|-cli|-cmd-[a-z-]+|-worker|-scan-helper|-spec-thread)?\.c?js$/;

/**
 * Commands that also get a bundle of their own, one file holding the CLI and everything the
 * command can load (its lazy imports inlined, still run only when reached): the bin runs
 * dist/builder/imgbuild-cmd-<name>.{cjs,js} when the command line names the command. Loading ~40
 * chunks instead was ~75 ms of CPU of a no-op push's ~350 on Node 20 (each ES module costs
 * the loader a resolve, a read, a compile and a link), ~40 ms of a small warm build's ~385.
 * Only for these two, the commands CI runs on every job: each bundle is a copy (push ~0.4 MB,
 * build ~1.2 MB); the rest share the chunks. Names must match bin.ts's literal URLs (one per command).
 *
 * cli.ts defines only the bundle's command there (`globalThis.__imgbuildOnlyCommand`).
 *
 * push's is CommonJS (`.cjs`), which the bin runs through vm.Script with a V8 code cache
 * (builder/code-cache.ts): its import() calls become require() (of built-ins, and of the other
 * commands' modules it never reaches), `import.meta.url` is the file's URL. build's stays an ES
 * module: a spec is loaded with import(), and a build's CPU is mostly its work, not its start.
 */
const OWN_BUNDLES = [{ command: 'push', format: 'cjs' }, { command: 'build', format: 'esm' }];

/**
 * Worker threads' scripts, each bundled into one ES module file (builder/install-paths.ts
 * threadScript runs the bundle when it exists, else tsc's file; names must match its
 * WORKER_BUNDLE, SCAN_HELPER_BUNDLE and SPEC_THREAD_BUNDLE). A build worker loaded as 54 ES
 * modules spent ~0.1-0.2 s resolving, reading, compiling and linking them before its first job,
 * a cold build's scan waiting on it. The spec thread's bundle holds the library too: it is what a
 * spec's `import ... from 'imgbuild'` gives (spec/module-spec.ts), in the spec's own thread.
 */
const THREAD_BUNDLES = [
  { name: 'imgbuild-worker', entry: 'workers/worker.js' },
  { name: 'imgbuild-scan-helper', entry: 'store/split-scan-thread.js' },
  { name: 'imgbuild-spec-thread', entry: 'spec/spec-thread.js' },
];

/** What a CommonJS bundle says for `import.meta.url`, the bundle file's own URL. */
const META_URL = {
  define: { 'import.meta.url': '__imgbuildMetaUrl' },
  banner: { js: "var __imgbuildMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
};

let esbuild;
try {
  esbuild = createRequire(join(root, 'package.json'))('esbuild');
} catch {
  esbuild = undefined;
}

/** Modules under commands/ that cli.js itself loads lazily for any command (not a command's own). */
const CLI_OWN_LAZY = new Set(['./commands/zod-jitless.js', './commands/arguments.js']);

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
        if (args.path === `./commands/${command}.js` || CLI_OWN_LAZY.has(args.path)) return undefined;
        return { path: `./imgbuild-cmd-${command}-not-${args.path.slice('./commands/'.length)}`, external: true };
      });
    },
  };
}

/**
 * Node built-ins through `require`, never `import`: the ES module of a built-in reads every one
 * of its exports when it is made, getters included. On Node 22 and 24 `node:http`'s getters
 * (WebSocket, MessageEvent, ...) load Node's whole bundled undici (~50 ms of CPU), and
 * `node:tls`'s build the root certificates; `require` reads an export only when it is used.
 */
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
function builtinsByRequire() {
  return {
    name: 'builtins-by-require',
    setup(build) {
      build.onResolve({ filter: /^[a-z0-9_:/]+$/ }, (args) => {
        // Static imports only: a split bundle turns import() of a CommonJS module into a chunk
        // with a default export alone (`const { createGunzip } = await import(...)` would be undefined).
        if (!builtins.has(args.path) || args.kind !== 'import-statement') return undefined;
        return { path: args.path.startsWith('node:') ? args.path : `node:${args.path}`, namespace: 'builtin-by-require' };
      });
      build.onLoad({ filter: /.*/, namespace: 'builtin-by-require' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
    },
  };
}

/**
 * commander requires node:child_process as it loads, for executable subcommands, which imgbuild
 * has none of: required when first used instead, it is never loaded (nor node:dgram and the rest
 * it pulls in, ~2 ms of CPU of every command). A commander whose line differs is bundled as it is.
 */
function commanderLazyChildProcess() {
  const eager = "const childProcess = require('node:child_process');";
  return {
    name: 'commander-lazy-child-process',
    setup(build) {
      build.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes(eager)) return undefined;
        return { contents: text.replace(eager, "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };"), loader: 'js' };
      });
    },
  };
}

/**
 * In a CommonJS bundle, each module's `import ... from 'node:x'` becomes `import_x = require("node:x")`,
 * run when the module is first reached: a push loaded every built-in its ~200 modules name
 * (node:fs/promises with readline and the file watchers, node:crypto's ~20 internal modules for
 * the bin's code cache, node:v8, ...) whether or not it used them. Made lazy here: the binding
 * is a proxy that requires the built-in at its first use (a property read, e.g. a call of
 * `(0, import_x.f)(...)`, or `class extends import_x.C` as the module loads). esbuild writes
 * these lines alike in both bundles; a line in another form is left as it is (loaded at once).
 */
const LAZY_BUILTIN_HELPER =
  'var __imgbuildLazy = (id) => { let m; const t = () => m ??= require(id); return new Proxy({}, { get: (_, k) => t()[k], has: (_, k) => k in t(), ownKeys: () => Reflect.ownKeys(t()), ' +
  'getOwnPropertyDescriptor: (_, k) => { const d = Reflect.getOwnPropertyDescriptor(t(), k); if (d) d.configurable = true; return d; }, getPrototypeOf: () => Reflect.getPrototypeOf(t()) }); };';
function lazyBuiltins(file) {
  const text = readFileSync(file, 'utf8');
  const lazy = text.replace(/^(\s*(?:var )?import_[A-Za-z0-9_$]+ = )require\(("node:[a-z0-9_/]+")\);$/gm, (_, lhs, id) => `${lhs}__imgbuildLazy(${id});`);
  // After the hashbang and the banner's first line, before any module's code.
  const at = lazy.indexOf('\n', lazy.startsWith('#!') ? lazy.indexOf('\n') + 1 : 0) + 1;
  writeFileSync(file, `${lazy.slice(0, at)}${LAZY_BUILTIN_HELPER}\n${lazy.slice(at)}`);
}

/** The bin's import of the CLI, in a bundle: the CLI's own entry, imgbuild-cli.js (not bundled into the bin). */
function cliEntryExternal() {
  return {
    name: 'cli-entry-external',
    setup(build) {
      build.onResolve({ filter: /^\.\/cli\.js$/ }, (args) => (args.importer === entry ? { path: './imgbuild-cli.js', external: true } : undefined));
    },
  };
}

/**
 * A CommonJS bundle run through vm.Script (code-cache.ts) is read as a string: one non-ASCII
 * character (esbuild escapes them in code, not in the comments it keeps) made V8 hold the whole
 * 0.45 MB source as a two-byte string, twice (the text and its wrapped copy): ~1.6 MiB more RSS
 * and ~240 more page faults a push. Each UTF-16 unit above 0x7f becomes its `\uXXXX` escape,
 * which means the same in a comment, a string, a template, a regular expression or an identifier.
 */
function asciiOnly(file) {
  const text = readFileSync(file, 'utf8');
  if (/^[\x00-\x7f]*$/.test(text)) return;
  writeFileSync(file, text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

// Build into a temp folder, then swap: a failed bundle leaves the previous (or no) bin, never half of one.
const tmp = join(root, 'dist', `.bundle-${process.pid}`);
rmSync(tmp, { recursive: true, force: true });
try {
  if (esbuild) {
    const common = {
      bundle: true,
      platform: 'node',
      target: 'node20',
      external: ['undici', 'jiti', 'yaml', '@hpcc-js/wasm-zstd', 'xz-decompress'],
      // Class names are data here (commander's errors are told apart by `name`): keep them.
      keepNames: true,
      logLevel: 'warning',
    };
    const esm = {
      ...common,
      format: 'esm',
      // Bundled CommonJS (commander) and the built-ins (builtinsByRequire) require: give the ES module a `require`.
      banner: { js: "import { createRequire as __imgbuildCreateRequire } from 'node:module'; const require = __imgbuildCreateRequire(import.meta.url);" },
    };
    const cjs = { ...common, format: 'cjs', ...META_URL };
    // The CLI and its chunks, and the bin as an ES module (imgbuild.js).
    await esbuild.build({
      ...esm,
      entryPoints: { imgbuild: entry, 'imgbuild-cli': join(builderDir, 'cli.js') },
      outdir: tmp,
      splitting: true,
      chunkNames: 'imgbuild-[hash]',
      plugins: [cliEntryExternal(), builtinsByRequire(), commanderLazyChildProcess()],
    });
    // The bin as CommonJS (imgbuild.cjs, the package's bin).
    await esbuild.build({ ...cjs, entryPoints: [entry], outfile: join(tmp, 'imgbuild.cjs'), plugins: [cliEntryExternal()] });
    lazyBuiltins(join(tmp, 'imgbuild.cjs'));
    for (const { command, format } of OWN_BUNDLES) {
      await esbuild.build({
        // In the CommonJS bundle import() becomes require(): code run by vm.Script has no import()
        // but through an experimental loader hook (that prints a warning), and none at all when
        // run from a code cache on Node 20 (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING).
        ...(format === 'cjs' ? { ...cjs, supported: { 'dynamic-import': false } } : esm),
        // cli.ts defines only this command (the bin runs this bundle for no other).
        define: { ...(format === 'cjs' ? cjs.define : {}), 'globalThis.__imgbuildOnlyCommand': JSON.stringify(command) },
        entryPoints: [join(builderDir, 'cli.js')],
        outfile: join(tmp, `imgbuild-cmd-${command}.${format === 'cjs' ? 'cjs' : 'js'}`),
        plugins: [onlyCommand(command), commanderLazyChildProcess(), ...(format === 'esm' ? [builtinsByRequire()] : [])],
      });
      if (format === 'cjs') {
        lazyBuiltins(join(tmp, `imgbuild-cmd-${command}.cjs`));
        asciiOnly(join(tmp, `imgbuild-cmd-${command}.cjs`));
      }
    }
    for (const { name, entry: script } of THREAD_BUNDLES) {
      await esbuild.build({ ...esm, entryPoints: [join(builderDir, script)], outfile: join(tmp, `${name}.js`), plugins: [builtinsByRequire()] });
    }
  } else {
    process.stderr.write('imgbuild bundle: esbuild is not installed; dist/builder/imgbuild.{cjs,js} import bin.js unbundled\n');
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'imgbuild.js'), "#!/usr/bin/env node\nimport './bin.js';\n");
    writeFileSync(join(tmp, 'imgbuild.cjs'), "#!/usr/bin/env node\nvoid import('./bin.js');\n");
  }
  for (const old of readdirSync(builderDir)) if (CHUNK.test(old)) rmSync(join(builderDir, old));
  chmodSync(join(tmp, 'imgbuild.js'), 0o755);
  chmodSync(join(tmp, 'imgbuild.cjs'), 0o755);
  for (const made of readdirSync(tmp)) renameSync(join(tmp, made), join(builderDir, made));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
