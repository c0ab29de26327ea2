// The dependency rules between the source folders, checked on every import of every .ts file in
// builder/, layering/, registry-client/ and oci/ (static `import`/`export ... from`, `import type`,
// `import('…')` in code and in types, `import(new URL('…', import.meta.url))`):
//
//   - layering/ imports nothing outside itself (no node: builtin, no npm package either: it is pure);
//   - registry-client/ imports only itself, oci/, node: builtins and npm dependencies;
//   - oci/ imports only itself, node: builtins and npm dependencies;
//   - inside builder/, a stage imports its own stage and the ones below it, never one above
//     (STAGES below); a folder or file directly in builder/ that is in no stage is a failure;
//   - nothing imports the package's public entry, builder/index.ts;
//   - every bare import is a node: builtin or a `dependencies` entry of package.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { repoRoot } from './helpers/paths.js';

/**
 * builder/'s stages, lowest first: a file may import from its own stage and the stages before it.
 * An entry is a folder (`store/`) or a file directly in builder/ (`build.ts`). To place a new
 * folder, put it in the stage of what it is (or a new stage between two): above everything it
 * imports, below everything that imports it. Entries that do not exist here are ignored, so the
 * table can name both sides of a restructuring: `model/`, `transports/` and `build/` are main's
 * new folders (docs/architecture.md there), in the stages of what they replace (`image/`;
 * `input/`, `output/`, `outputs.ts`, `registry.ts`, `base-image.ts`; `build.ts`).
 */
const STAGES: readonly (readonly string[])[] = [
  // Durable atomic file writes (temp + fsync + rename + directory fsync): imports nothing of builder/.
  ['fs/'],
  // What everything uses and which imports nothing of builder/ but fs/: errors, sizes, where the cache is, settling promises, blob files, the public functions' argument checks.
  ['errors.ts', 'unit-sum.ts', 'cache-dir.ts', 'throttle.ts', 'settle-all.ts', 'blobs/', 'install-paths.ts', 'arguments.ts'],
  // The spec: schema, loading, defaults.
  ['spec/'],
  // Store sources and the closure.
  ['store/'],
  // The layer writer: entries → tar → gzip → blob.
  ['layer/'],
  // What goes into layers, and the threads that write them.
  ['customisation/', 'workers/'],
  // The image: its parts, assembled.
  ['image/', 'model/'],
  // The layer cache.
  ['cache/'],
  // Reading and writing images: layouts, archives, registries, the base image.
  ['input/', 'output/', 'outputs.ts', 'registry.ts', 'base-image.ts', 'transports/'],
  // The build: spec → closure → plan → layers → image; its progress events and their display.
  ['build.ts', 'build/', 'progress.ts', 'progress/'],
  // SBOMs of a build or an image, and the referrer artifacts that attach them.
  ['sbom/'],
  // diff and verify of images.
  ['repro/'],
  // The CLI.
  ['commands/', 'cli.ts', 'startup.ts'],
  // The executable: --version, the compile cache, then a command's own bundle (run with its
  // V8 code cache) or the CLI.
  ['bin.ts', 'code-cache.ts'],
  // The public entry (which nothing imports: see below).
  ['index.ts'],
];

/**
 * Imports that break a rule today and are known: each names the file, the import as written and
 * why it is allowed for now. Fix the code and delete the entry (the test fails while an entry
 * matches nothing, so the list only shrinks). Do not add to it lightly.
 */
const KNOWN_VIOLATIONS: readonly { file: string; specifier: string; why: string }[] = [
  {
    file: 'builder/spec/module-spec.ts',
    specifier: '../index.js',
    why: 'the package index, from spec/: specs\' `import … from \'imgbuild\'` is this library, loaded at run time for the user\'s spec, in the spec\'s own thread (not by library code)',
  },
];

const ROOTS = ['builder', 'layering', 'registry-client', 'oci'] as const;
type Root = (typeof ROOTS)[number];
const PUBLIC_ENTRY = 'builder/index.ts';

interface FoundImport {
  specifier: string;
  kind: 'import' | 'export' | 'import type' | 'dynamic import' | 'type import()';
  line: number;
}

/** Every module specifier `source` names, with where and how. */
function importsOf(fileName: string, source: string): FoundImport[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: FoundImport[] = [];
  const add = (node: ts.Node, spec: ts.Node | undefined, kind: FoundImport['kind']) => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    if (spec && ts.isStringLiteralLike(spec)) out.push({ specifier: spec.text, kind, line });
    else if (spec) out.push({ specifier: `<not a literal: ${spec.getText(sf)}>`, kind, line });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node, node.moduleSpecifier, node.importClause?.isTypeOnly ? 'import type' : 'import');
    else if (ts.isExportDeclaration(node) && node.moduleSpecifier) add(node, node.moduleSpecifier, 'export');
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression, 'import');
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal, 'type import()');
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node, urlLiteral(node.arguments[0]) ?? node.arguments[0], 'dynamic import');
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The literal of `new URL('<literal>', import.meta.url)` (or its `.href`), else undefined. */
function urlLiteral(arg: ts.Expression | undefined): ts.StringLiteralLike | undefined {
  let e = arg;
  if (e && ts.isPropertyAccessExpression(e) && e.name.text === 'href') e = e.expression;
  if (!e || !ts.isNewExpression(e) || !ts.isIdentifier(e.expression) || e.expression.text !== 'URL') return undefined;
  const [spec, base] = e.arguments ?? [];
  const baseIsMetaUrl = base !== undefined && ts.isPropertyAccessExpression(base) && base.name.text === 'url' && ts.isMetaProperty(base.expression);
  return spec && baseIsMetaUrl && ts.isStringLiteralLike(spec) ? spec : undefined;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(repoRoot, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...sourceFiles(rel));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out.sort();
}

/** A relative specifier resolved to a repo path (`../layer/modes.js` → `builder/layer/modes.ts`). */
function resolveRelative(from: string, specifier: string): string {
  const abs = resolve(repoRoot, dirname(from), specifier);
  const candidates = [abs.replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts'), abs, `${abs}.ts`, join(abs, 'index.ts')];
  const hit = candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? candidates[0]!;
  return relative(repoRoot, hit).split('\\').join('/');
}

const rootOf = (path: string): Root | undefined => ROOTS.find((r) => path.startsWith(`${r}/`));

/** builder/'s unit of a path: its first-level folder (`store/`) or the file itself (`build.ts`). */
function builderUnit(path: string): string {
  const rest = path.slice('builder/'.length);
  return rest.includes('/') ? `${rest.split('/')[0]}/` : rest;
}

function stageOf(unit: string): number | undefined {
  const i = STAGES.findIndex((s) => s.includes(unit));
  return i < 0 ? undefined : i;
}

const dependencies = new Set(Object.keys((JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {}));
const packageName = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);

interface Checked {
  file: string;
  imp: FoundImport;
  /** The repo path a relative import names. */
  target?: string;
  problems: string[];
}

/** Every import of every source file, with the rules it breaks. */
function check(): Checked[] {
  const out: Checked[] = [];
  for (const root of ROOTS) {
    for (const file of sourceFiles(root)) {
      for (const imp of importsOf(file, readFileSync(join(repoRoot, file), 'utf8'))) {
        const c: Checked = { file, imp, problems: [] };
        out.push(c);
        const spec = imp.specifier;
        if (spec.startsWith('<not a literal')) {
          c.problems.push('a dynamic import of a computed name: write a string literal (or new URL(\'…\', import.meta.url)) so that the rules can be checked');
          continue;
        }
        if (!spec.startsWith('.')) {
          const builtin = spec.startsWith('node:') || isBuiltin(spec);
          if (root === 'layering') c.problems.push('layering/ imports nothing outside itself (it is pure: no node: builtins, no packages)');
          else if (!builtin && !dependencies.has(packageName(spec))) c.problems.push(`${packageName(spec)} is neither a node: builtin nor in package.json's dependencies`);
          continue;
        }
        const target = (c.target = resolveRelative(file, spec));
        const to = rootOf(target);
        if (!to) {
          c.problems.push(`${target} is outside the source folders (${ROOTS.join('/, ')}/)`);
          continue;
        }
        if (target === PUBLIC_ENTRY) c.problems.push(`${PUBLIC_ENTRY} is the package's public entry: nothing inside imports it`);
        if (root === 'layering' && to !== 'layering') c.problems.push('layering/ imports nothing outside itself');
        if (root === 'registry-client' && to !== 'registry-client' && to !== 'oci') c.problems.push('registry-client/ imports only itself, oci/, node: builtins and npm packages');
        if (root === 'oci' && to !== 'oci') c.problems.push('oci/ imports only itself, node: builtins and npm packages');
        if (root === 'builder' && to === 'builder') {
          const [a, b] = [builderUnit(file), builderUnit(target)];
          const [sa, sb] = [stageOf(a), stageOf(b)];
          if (sa !== undefined && sb !== undefined && sb > sa) {
            c.problems.push(`builder/${a} (stage ${sa}: ${STAGES[sa]!.join(' ')}) imports builder/${b} (stage ${sb}: ${STAGES[sb]!.join(' ')}), a stage above it`);
          }
        }
      }
    }
  }
  return out;
}

const checked = check();
const isKnown = (c: Checked) => KNOWN_VIOLATIONS.some((k) => k.file === c.file && k.specifier === c.imp.specifier);
const describe = (c: Checked, problem: string) =>
  `${c.file}:${c.imp.line}: ${c.imp.kind} '${c.imp.specifier}'${c.target ? ` (${c.target})` : ''}: ${problem}`;
/** The problems of imports matching `where`, known violations aside. */
const problems = (where: (c: Checked, problem: string) => boolean): string[] =>
  checked.filter((c) => !isKnown(c)).flatMap((c) => c.problems.filter((p) => where(c, p)).map((p) => describe(c, p)));

test('the import reader finds every kind of import, and only imports', () => {
  const source = [
    "import a from './a.js';",
    "import type { B } from '../b.js';",
    "import './side-effect.js';",
    "export { c } from './c.js';",
    "export * from 'node:fs';",
    "const d = await import('./d.js');",
    "type E = typeof import('./e.js');",
    "const f = await import(new URL('../f.js', import.meta.url).href);",
    "const g = await import(someVariable);",
    "// import h from './not-an-import.js';",
    "const text = \"import i from './not-an-import-either.js'\";",
  ].join('\n');
  assert.deepEqual(
    importsOf('x.ts', source).map((i) => `${i.line} ${i.kind} ${i.specifier}`),
    [
      '1 import ./a.js',
      '2 import type ../b.js',
      '3 import ./side-effect.js',
      '4 export ./c.js',
      '5 export node:fs',
      '6 dynamic import ./d.js',
      '7 type import() ./e.js',
      '8 dynamic import ../f.js',
      '9 dynamic import <not a literal: someVariable>',
    ],
  );
  // Enough imports were read for the rules below not to pass vacuously.
  assert.ok(checked.length > 300, `only ${checked.length} imports read`);
  for (const root of ROOTS) assert.ok(checked.some((c) => c.file.startsWith(`${root}/`)), root);
});

test('every folder and file directly in builder/ is in a stage of the table', () => {
  const unknown = readdirSync(join(repoRoot, 'builder'), { withFileTypes: true })
    .filter((e) => e.isDirectory() || (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')))
    .map((e) => (e.isDirectory() ? `${e.name}/` : e.name))
    .filter((unit) => stageOf(unit) === undefined);
  assert.deepEqual(unknown.map((u) => `add builder/${u} to the stage table (STAGES in test/architecture-boundaries.test.ts)`), []);
});

test('layering/ imports nothing outside itself', () => {
  assert.deepEqual(problems((c) => c.file.startsWith('layering/')), []);
});

test('registry-client/ imports only itself, oci/, node: builtins and npm packages', () => {
  assert.deepEqual(problems((c) => c.file.startsWith('registry-client/')), []);
});

test('oci/ imports only itself, node: builtins and npm packages', () => {
  assert.deepEqual(problems((c) => c.file.startsWith('oci/')), []);
});

test('inside builder/, no stage imports a stage above it', () => {
  assert.deepEqual(problems((c, p) => c.file.startsWith('builder/') && p.includes('a stage above it')), []);
});

test(`nothing imports the public entry, ${PUBLIC_ENTRY}`, () => {
  assert.deepEqual(problems((_, p) => p.includes('public entry')), []);
});

test('every other import is of a source file, a node: builtin or a dependency in package.json', () => {
  assert.deepEqual(problems((c, p) => c.file.startsWith('builder/') && !p.includes('a stage above it') && !p.includes('public entry')), []);
});

test('every known violation still happens (fixed ones are taken off the list)', () => {
  const stale = KNOWN_VIOLATIONS.filter((k) => !checked.some((c) => c.file === k.file && c.imp.specifier === k.specifier && c.problems.length > 0));
  assert.deepEqual(stale.map((k) => `${k.file} '${k.specifier}' breaks no rule any more: remove it from KNOWN_VIOLATIONS`), []);
});
