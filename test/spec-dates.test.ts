import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveSpec } from '../builder/spec/resolve.js';
import { SpecValidationError } from '../builder/spec/errors.js';
import { specProblems } from './helpers/spec-problems.js';

const file = '/specs/image.json';
const now = () => new Date('2025-03-04T05:06:07.890Z');
const dates = (input: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => {
  const r = resolveSpec({ name: 'a', ...input }, { file, env, now });
  return { created: r.created, mtime: r.mtime };
};

test('default created and mtime: 1970-01-01T00:00:01Z', () => {
  assert.deepEqual(dates({}), { created: '1970-01-01T00:00:01Z', mtime: 1 });
});

test('SOURCE_DATE_EPOCH sets both when the spec sets neither', () => {
  assert.deepEqual(dates({}, { SOURCE_DATE_EPOCH: '1700000000' }), { created: '2023-11-14T22:13:20Z', mtime: 1700000000 });
});

test('the spec wins over SOURCE_DATE_EPOCH field by field', () => {
  assert.deepEqual(dates({ created: '2024-01-01T00:00:00Z' }, { SOURCE_DATE_EPOCH: '1700000000' }), { created: '2024-01-01T00:00:00Z', mtime: 1700000000 });
  assert.deepEqual(dates({ mtime: '2024-01-01T00:00:00Z' }, { SOURCE_DATE_EPOCH: '1700000000' }), { created: '2023-11-14T22:13:20Z', mtime: 1704067200 });
});

test('an empty SOURCE_DATE_EPOCH counts as unset', () => {
  assert.deepEqual(dates({}, { SOURCE_DATE_EPOCH: '' }), { created: '1970-01-01T00:00:01Z', mtime: 1 });
});

test('an invalid SOURCE_DATE_EPOCH is an error when it would be used, ignored when the spec sets both dates', () => {
  assert.throws(() => dates({}, { SOURCE_DATE_EPOCH: '17e8' }), {
    name: 'SpecValidationError',
    message: '/specs/image.json: SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01, got "17e8"',
  });
  assert.deepEqual(dates({ created: '2024-01-01', mtime: '2024-01-01' }, { SOURCE_DATE_EPOCH: 'garbage' }), { created: '2024-01-01T00:00:00Z', mtime: 1704067200 });
});

test('mtime follows a fixed created (dockerTools: mtime defaults to created)', () => {
  assert.deepEqual(dates({ created: '2024-06-01T12:30:00+02:00' }), { created: '2024-06-01T10:30:00Z', mtime: 1717237800 });
});

test('created "now" is this second, and leaves mtime at the default so layers stay reproducible', () => {
  assert.deepEqual(dates({ created: 'now' }), { created: '2025-03-04T05:06:07Z', mtime: 1 });
  assert.deepEqual(dates({ created: 'now', mtime: 'now' }), { created: '2025-03-04T05:06:07Z', mtime: 1741064767 });
});

test('ISO forms: date only is midnight UTC, offsets are applied, a fraction to the millisecond is written with three digits', () => {
  assert.deepEqual(dates({ created: '2024-02-29' }), { created: '2024-02-29T00:00:00Z', mtime: 1709164800 });
  assert.deepEqual(dates({ created: '2024-01-01T00:00:00-0130' }), { created: '2024-01-01T01:30:00Z', mtime: 1704072600 });
  assert.deepEqual(dates({ created: '2024-01-01T00:00:00.25Z' }), { created: '2024-01-01T00:00:00.250Z', mtime: 1704067200 });
});

test('a fraction finer than a millisecond is kept in created as given (RFC 3339; Go reads nanoseconds), mtime being whole seconds', () => {
  assert.deepEqual(dates({ created: '2024-01-01T00:00:00.123456789+05:30' }), { created: '2023-12-31T18:30:00.123456789Z', mtime: 1704047400 });
  assert.deepEqual(dates({ created: '2024-01-01T00:00:00.0000001Z' }), { created: '2024-01-01T00:00:00.0000001Z', mtime: 1704067200 });
  // Trailing zeros say nothing: these are the dates (and bytes) they always gave.
  assert.deepEqual(dates({ created: '2024-01-01T00:00:00.123000000Z' }), { created: '2024-01-01T00:00:00.123Z', mtime: 1704067200 });
  assert.deepEqual(dates({ created: '2024-01-01T00:00:00.000000000000Z' }), { created: '2024-01-01T00:00:00Z', mtime: 1704067200 });
  // mtime is whole seconds: a tar header holds no fraction.
  assert.deepEqual(dates({ mtime: '2024-01-01T00:00:00.999999999Z' }), { created: '1970-01-01T00:00:01Z', mtime: 1704067200 });
});

function problems(input: Record<string, unknown>): string[] {
  return specProblems({ name: 'a', ...input }, { file, env: {}, now });
}

test('bad dates name the field and say what is wrong', () => {
  assert.deepEqual(problems({ created: 'yesterday' }), ['created: "yesterday" is not an ISO 8601 date (e.g. "2024-05-01T12:00:00Z") or "now"']);
  assert.deepEqual(problems({ created: '2024-01-01T10:00:00' }), ['created: "2024-01-01T10:00:00" has no time zone; add "Z" for UTC or an offset like "+02:00"']);
  assert.deepEqual(problems({ mtime: '2023-02-29' }), ['mtime: "2023-02-29" is not a valid date']);
  assert.deepEqual(problems({ mtime: '1969-12-31T23:59:59Z' }), ['mtime: "1969-12-31T23:59:59Z" is before 1970-01-01T00:00:00Z; tar cannot record it']);
  // Past nanoseconds, every runtime reading the config would drop digits: refused, not cut.
  assert.deepEqual(problems({ created: '2024-01-01T00:00:00.1234567891Z' }), ['created: "2024-01-01T00:00:00.1234567891Z" gives 10 digits of a second; an image\'s created holds nanoseconds (9 digits) at most, and the runtimes that read it drop the rest']);
});

test('a TS/JS spec may give dates as Date objects', () => {
  assert.deepEqual(dates({ created: new Date('2024-01-01T00:00:00Z') }), { created: '2024-01-01T00:00:00Z', mtime: 1704067200 });
  assert.deepEqual(problems({ mtime: new Date(-1000) }), ['mtime: 1969-12-31T23:59:59.000Z is before 1970-01-01T00:00:00Z; tar cannot record it']);
  assert.deepEqual(problems({ created: 1704067200 }), ['created: expected a string or a Date, got a number (1704067200)']);
});

test('a SOURCE_DATE_EPOCH after the latest time a tar header holds is out of range, said as such, with a hint', () => {
  assert.throws(() => dates({}, { SOURCE_DATE_EPOCH: '8589934592' }), {
    name: 'SpecValidationError',
    message: '/specs/image.json: SOURCE_DATE_EPOCH "8589934592" is out of range: a tar header holds times up to 8589934591 (2242-03-16T12:56:31Z)',
    hint: "set SOURCE_DATE_EPOCH to the last commit's time (SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)), or unset it",
  });
  assert.deepEqual(dates({}, { SOURCE_DATE_EPOCH: '8589934591' }), { created: '2242-03-16T12:56:31Z', mtime: 8589934591 });
});
