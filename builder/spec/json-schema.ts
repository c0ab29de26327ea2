import * as z from 'zod';
import { COMPRESSORS, ImageSpecSchema } from './schema.js';
import { GO_ARCHITECTURES, GO_OSES } from './platform.js';

/**
 * A JSON Schema (draft 2020-12) of the spec, for editors: point a YAML spec at it with
 * `# yaml-language-server: $schema=imgbuild.schema.json`, or a JSON spec with `"$schema"`. It gives
 * completion, descriptions and types; imgbuild's own checks (names, tags, paths, modes, dates) stay
 * in the loader, which reports them with better messages.
 */
export function imageSpecJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ImageSpecSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  const props = schema.properties as Record<string, Record<string, unknown>>;
  // Values checked in code rather than by enums (for better messages) are enums for an editor.
  Object.assign(props.compressor!, { enum: [...COMPRESSORS] });
  Object.assign(props.architecture!, { enum: [...GO_ARCHITECTURES] });
  Object.assign(props.os!, { enum: [...GO_OSES] });
  return { ...schema, title: 'imgbuild image spec' };
}
