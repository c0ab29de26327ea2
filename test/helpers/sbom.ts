import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot } from './paths.js';

const require = createRequire(import.meta.url);

/** Problems of an SPDX 2.3 JSON document against the vendored official schema (ajv, draft-07); [] when valid. */
export function spdxProblems(bytes: Buffer | string): string[] {
  const Ajv = require('ajv').default as typeof import('ajv').default;
  const addFormats = require('ajv-formats').default as typeof import('ajv-formats').default;
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  const schema = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/sbom/spdx-2.3.schema.json'), 'utf8'));
  const validate = ajv.compile(schema);
  if (validate(JSON.parse(bytes.toString()))) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

/** The CycloneDX library's strict JSON validator's verdict for spec 1.6: null when valid, else its error details. */
export async function cyclonedxProblems(bytes: Buffer | string): Promise<unknown> {
  const { Validation, Spec } = await import('@cyclonedx/cyclonedx-library');
  const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
  return validator.validate(bytes.toString());
}
