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
