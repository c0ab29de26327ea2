// The --json documents' JSON Schemas: generated from the zod definitions (builder/commands/documents.ts),
// committed in schemas/, shipped in the package. That every --json output of the suite matches its
// schema is checked where the CLI is run (checkJsonOutput, test/helpers/cli.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { documentJsonSchema, documentOf, documentSchemaFile, documentSchemas, type DocumentName } from '../builder/commands/documents.js';
import { checkJsonOutput, runCli, runCommand } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';

const names = Object.keys(documentSchemas) as DocumentName[];

test('schemas/*.schema.json are what scripts/write-schemas.mjs makes of the zod definitions, one per document', async () => {
  const files = (await readdir(join(repoRoot, 'schemas'))).sort();
  assert.deepEqual(files, names.map((n) => `${n}.schema.json`).sort(), 'one file per document (run: npm run build && node scripts/write-schemas.mjs)');
  for (const name of names) {
    const committed = await readFile(join(repoRoot, 'schemas', `${name}.schema.json`), 'utf8');
    assert.equal(committed, documentSchemaFile(name), `schemas/${name}.schema.json is out of date: run npm run build && node scripts/write-schemas.mjs`);
  }
});

test('every document is a draft 2020-12 schema with a title, requires schemaVersion 1, and allows no key it does not define', () => {
  for (const name of names) {
    const schema = documentJsonSchema(name) as { $schema: string; title: string; anyOf?: Record<string, unknown>[] } & Record<string, unknown>;
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema', name);
    assert.match(schema.title, /^imgbuild /, name);
    for (const branch of schema.anyOf ?? [schema]) {
      const b = branch as { properties: Record<string, { const?: unknown }>; required: string[]; additionalProperties: unknown };
      assert.equal(b.properties.schemaVersion?.const, 1, name);
      assert.ok(b.required.includes('schemaVersion'), name);
      assert.equal(b.additionalProperties, false, name);
    }
  }
});

test('the same key names across commands: digest for the manifest or index, reference and tags for a push, platforms for several images', () => {
  const branches = (name: DocumentName) => {
    const s = documentJsonSchema(name) as { anyOf?: { properties: Record<string, unknown> }[]; properties?: Record<string, unknown> };
    return (s.anyOf ?? [s as { properties: Record<string, unknown> }]).map((b) => Object.keys(b.properties));
  };
  for (const name of ['build', 'push', 'index-create', 'inspect', 'verify'] as const) {
    for (const keys of branches(name)) assert.ok(keys.includes('digest'), `${name} has digest`);
  }
  for (const name of ['build', 'push', 'index-create'] as const) {
    for (const keys of branches(name)) assert.ok(['reference', 'tags', 'pushed'].every((k) => keys.includes(k)), `${name} has reference, tags, pushed`);
  }
  assert.ok(branches('build').some((keys) => keys.includes('platforms')));
  assert.ok(branches('inspect').some((keys) => keys.includes('platforms')));
  for (const name of names) assert.doesNotMatch(JSON.stringify(documentJsonSchema(name)), /manifestDigest/, `${name} says digest, not manifestDigest`);
});

/** The keys a document's schema defines (every branch's). */
function schemaKeys(name: DocumentName): string[] {
  const s = documentJsonSchema(name) as { anyOf?: { properties: Record<string, unknown> }[]; properties?: Record<string, unknown> };
  return [...new Set((s.anyOf ?? [s as { properties: Record<string, unknown> }]).flatMap((b) => Object.keys(b.properties)))].sort();
}

/** The key names of `{schemaVersion: 1, source, digest (the manifest's), …}`: what the braces list, each without its words in parentheses. */
function listedKeys(braces: string): string[] {
  return braces.slice(1, -1).replace(/\([^)]*\)/g, '').split(',').map((k) => k.replace(/:\s*1$/, '').trim()).sort();
}

test("each --help that lists a command's --json keys (print JSON: {…}) lists exactly the keys its document's schema defines", async () => {
  const commands = [['referrers'], ['ls'], ['tag'], ['digest'], ['manifest'], ['config'], ['store', 'add']];
  for (const command of commands) {
    const help = (await runCli([...command, '--help'])).stdout.toString().replace(/\s+/g, ' ');
    const braces = /print JSON: (\{[^}]*\})/.exec(help)?.[1];
    assert.ok(braces, `${command.join(' ')} --help lists its keys`);
    assert.deepEqual(listedKeys(braces), schemaKeys(documentOf([...command, '--json'])!), `${command.join(' ')} --help: ${braces}`);
  }
});

test("each README row that lists a command's --json keys ({schemaVersion: 1, …}) lists exactly the keys its document's schema defines", async () => {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const rows = readme.split('\n').filter((l) => l.startsWith('| `imgbuild ') && l.includes('{schemaVersion'));
  assert.ok(rows.length >= 6, `${rows.length} rows`);
  for (const row of rows) {
    const command = /^\| `imgbuild ([a-z]+(?: [a-z]+)?)/.exec(row)![1]!.split(' ');
    const braces = /`(\{schemaVersion[^`]*\})`/.exec(row)![1]!;
    const name = documentOf([...command, '--json']);
    assert.ok(name, row.slice(0, 60));
    assert.deepEqual(listedKeys(braces), schemaKeys(name), `README, imgbuild ${command.join(' ')}: ${braces}`);
  }
});

test('documentOf names the document of a command line', () => {
  assert.equal(documentOf(['build', 'spec', '-o', 'x', '--json']), 'build');
  assert.equal(documentOf(['index', 'create', 'r', 'a', '--json']), 'index-create');
  assert.equal(documentOf(['cache', 'prune', '--json']), 'cache-prune');
  assert.equal(documentOf(['nosuch', '--json']), undefined);
});

test('the check of --json output refuses a document of the wrong shape, two documents, and a failure without the error document', () => {
  const run = (stdout: string, code = 0) => ({ code, signal: null, stdout: Buffer.from(stdout), stderr: '' });
  const login = { schemaVersion: 1, registry: 'r', username: 'u', storedIn: 'f' };
  checkJsonOutput(['login', 'r', '--json'], run(`${JSON.stringify(login)}\n`));
  assert.throws(() => checkJsonOutput(['login', 'r', '--json'], run(`${JSON.stringify({ ...login, password: 'x' })}\n`)), /password/);
  assert.throws(() => checkJsonOutput(['login', 'r', '--json'], run(`${JSON.stringify({ ...login, schemaVersion: 2 })}\n`)), /schemaVersion/);
  assert.throws(() => checkJsonOutput(['login', 'r', '--json'], run(`${JSON.stringify(login)}\n${JSON.stringify(login)}\n`)), /not one JSON document/);
  assert.throws(() => checkJsonOutput(['login', 'r', '--json'], run(`${JSON.stringify(login)}\n`, 1)), /error document/);
  checkJsonOutput(['login', 'r', '--json'], run(`${JSON.stringify({ schemaVersion: 1, error: { code: 'auth', message: 'm', hint: null } })}\n`, 1));
  checkJsonOutput(['login', 'r'], run('anything'));
});

test('the package ships the schemas: in its files, and importable as imgbuild/schemas/<name>.schema.json', async () => {
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { files: string[]; exports: Record<string, string> };
  assert.ok(pkg.files.includes('schemas'), 'package.json files lists schemas');
  assert.equal(pkg.exports['./schemas/*'], './schemas/*');
  const r = await runCommand('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot });
  assert.equal(r.code, 0, r.stderr);
  const packed = (JSON.parse(r.stdout.toString()) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  for (const name of names) assert.ok(packed.includes(`schemas/${name}.schema.json`), `the tarball holds schemas/${name}.schema.json`);
});
