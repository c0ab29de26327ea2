import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageSpecJsonSchema } from '../builder/spec/json-schema.js';

test('the JSON Schema for editors lists every spec key, requires only name and rejects unknown keys', () => {
  const schema = imageSpecJsonSchema() as { properties: Record<string, { description?: string; enum?: string[] }>; required: string[]; additionalProperties: boolean; title: string };
  assert.equal(schema.title, 'imgbuild image spec');
  assert.deepEqual(schema.required, ['name']);
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(Object.keys(schema.properties), [
    '$schema', 'name', 'tag', 'contents', 'store', 'cache', 'config', 'created', 'mtime', 'uid', 'gid', 'uname', 'gname', 'maxLayers',
    'architecture', 'os', 'variant', 'platforms', 'includeStorePaths', 'includeNixDB', 'compressor', 'layering', 'fromImage', 'copyToRoot',
    'pathsToLink', 'files', 'directories', 'symlinks', 'users', 'groups', 'perms', 'exclude', 'nixUid', 'nixGid', 'annotations',
  ]);
  for (const [key, prop] of Object.entries(schema.properties)) assert.ok(prop.description, `${key} has a description`);
  assert.deepEqual(schema.properties.compressor?.enum, ['gzip', 'none', 'zstd']);
  assert.ok(schema.properties.architecture?.enum?.includes('arm64'));
});
