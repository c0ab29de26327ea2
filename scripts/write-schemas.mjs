// Writes schemas/<name>.schema.json, the JSON Schema of each --json document, from its zod
// definition (builder/commands/documents.ts). Run after `npm run build`:
//
//   npm run build && node scripts/write-schemas.mjs
//
// The files are committed and shipped with the package; test/json-documents.test.ts fails when
// they are not what this script writes.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { documentSchemas, documentSchemaFile } = await import(join(root, 'dist/builder/commands/documents.js'));
const dir = join(root, 'schemas');
await mkdir(dir, { recursive: true });
const names = Object.keys(documentSchemas);
for (const file of await readdir(dir)) {
  if (file.endsWith('.schema.json') && !names.includes(file.slice(0, -'.schema.json'.length))) await rm(join(dir, file));
}
for (const name of names) await writeFile(join(dir, `${name}.schema.json`), documentSchemaFile(name));
process.stdout.write(`wrote ${names.length} schemas to ${dir}\n`);
