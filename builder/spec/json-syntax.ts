/**
 * Where a JSON text stops being JSON. JSON.parse's messages differ between Node releases (only
 * some give a position), so on a syntax error we scan the text ourselves to report a stable
 * line, column and reason.
 */
export interface JsonSyntaxError {
  offset: number;
  line: number;
  column: number;
  message: string;
}

class Stop extends Error {
  constructor(readonly offset: number, message: string) {
    super(message);
  }
}

export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const stop = (message: string): never => {
    throw new Stop(i, i >= text.length ? 'unexpected end of the file' : message);
  };
  const show = () => (i >= text.length ? 'the end of the file' : JSON.stringify(text[i]));
  const expect = (c: string, what: string) => {
    ws();
    if (text[i] !== c) stop(`expected ${what}, found ${show()}`);
    i++;
  };
  const string = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) stop('unterminated string');
      const c = text[i]!;
      if (c === '"') return void i++;
      if (c < ' ') stop('a control character (such as a newline) inside a string; write it as an escape like \\n');
      if (c === '\\') {
        i++;
        const e = text[i];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) stop('invalid \\u escape');
          i += 5;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) stop(`invalid escape "\\${e ?? ''}"`);
      }
      i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') stop(`expected a property name in double quotes, found ${show()}`);
        string();
        expect(':', '":"');
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') return void i++;
        stop(`expected "," or "}", found ${show()}`);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') return void i++;
        stop(`expected "," or "]", found ${show()}`);
      }
    }
    if (c === '"') return string();
    const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    number.lastIndex = i;
    if (c !== undefined && /[-0-9]/.test(c)) {
      const m = number.exec(text);
      if (!m) stop('invalid number');
      i += m![0].length;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    stop(`unexpected ${show()}`);
  };
  try {
    value();
    ws();
    if (i < text.length) stop(`unexpected ${show()} after the end of the JSON value`);
    return undefined;
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    const before = text.slice(0, e.offset);
    const line = before.split('\n').length;
    const column = e.offset - (before.lastIndexOf('\n') + 1) + 1;
    return { offset: e.offset, line, column, message: e.message };
  }
}

/** A key an object of a JSON text has twice: JSON.parse keeps the last one silently. */
export interface JsonDuplicateKey {
  /** The key as JSON.parse reads it (escapes decoded: `"a"` and `"\u0061"` are one key). */
  key: string;
  /** Where the repeated key is (its opening quote), 1-based. */
  line: number;
  column: number;
  /** The line of the key's first occurrence in the same object. */
  firstLine: number;
}

/**
 * Every key that an object of `text` has more than once, in text order. `text` must be valid
 * JSON (JSON.parse accepted it). Iterative, so a deeply nested text cannot overflow the stack.
 */
export function findJsonDuplicateKeys(text: string): JsonDuplicateKey[] {
  const found: JsonDuplicateKey[] = [];
  // One entry per open container: the keys of an object (key → line of its first occurrence), or null for an array.
  const open: (Map<string, number> | null)[] = [];
  // Whether the next string in the innermost object is a key (after `{` or `,`) rather than a value (after `:`).
  let expectKey = false;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      line++;
      lineStart = i + 1;
      continue;
    }
    if (c === 0x7b /* { */) {
      open.push(new Map());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      open.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = open[open.length - 1] != null;
    } else if (c === 0x3a /* : */) {
      expectKey = false;
    } else if (c === 0x22 /* " */) {
      const start = i;
      // A string of valid JSON ends at the first quote not escaped (and holds no newline).
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
      const keys = open[open.length - 1];
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        const first = keys.get(key);
        if (first === undefined) keys.set(key, line);
        else found.push({ key, line, column: start - lineStart + 1, firstLine: first });
        expectKey = false;
      }
    }
  }
  return found;
}
