import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeHeader, encodePaxRecords, type TarHeaderFields } from '../builder/layer/tar-header.js';
import { LayerEntryError } from '../builder/layer/errors.js';
import { rawHeaders } from './fixtures/layer/tar-read.js';

// One tar header at a time: when the writer falls back to pax records, and what it puts in them.
// A pax record is `<len> <key>=<value>\n` where <len> is the record's byte count including the
// digits of <len>: e.g. 160 = 3 digits + ' path=' (6) + 150 bytes of value + '\n' (1).

const base: TarHeaderFields = { path: 'x', type: 'file', mode: 0o444, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 1, size: 0 };

function blocks(h: Partial<TarHeaderFields>) {
  return rawHeaders(Buffer.concat([encodeHeader({ ...base, ...h }), Buffer.alloc(1024)]));
}

test('a 100-byte ASCII path fits the ustar name field: one block, no pax', () => {
  const path = 'n'.repeat(100);
  assert.equal(encodeHeader({ ...base, path }).length, 512);
  assert.deepEqual(blocks({ path }).map((b) => [b.typeflag, b.ustarName]), [['0', path]]);
});

test('a 150-byte path with a slash is split into ustar prefix and name, without pax', () => {
  const path = `${'d'.repeat(60)}/${'f'.repeat(89)}`;
  assert.equal(Buffer.byteLength(path), 150);
  const h = encodeHeader({ ...base, path });
  assert.equal(h.length, 512);
  assert.equal(h.subarray(345, 405).toString('latin1'), 'd'.repeat(60)); // prefix field
  assert.equal(h.subarray(0, 89).toString('latin1'), 'f'.repeat(89)); // name field
  assert.deepEqual(blocks({ path }).map((b) => [b.typeflag, b.ustarName]), [['0', path]]);
});

test('the ustar split is at the last slash that fits the prefix, as GNU tar and Go split', () => {
  const path = `root/x/y/${'g'.repeat(98)}`;
  const h = encodeHeader({ ...base, path });
  assert.equal(h.subarray(345, 500).toString('latin1').replace(/\0+$/, ''), 'root/x/y');
  assert.equal(h.subarray(0, 100).toString('latin1'), 'g'.repeat(98) + '\0\0');
});

test('a 150-byte path that cannot be split gets a pax path record and nothing else', () => {
  const path = `dir/${'f'.repeat(146)}`;
  const got = blocks({ path });
  assert.deepEqual(got.map((b) => b.typeflag), ['x', '0']);
  assert.equal(got[0]!.pax, `160 path=${path}\n`);
  assert.equal(got[0]!.ustarName, `PaxHeaders/${'f'.repeat(89)}`);
  assert.equal(got[1]!.ustarName, path.slice(0, 100)); // truncated fallback for readers without pax
});

test('a directory whose name fits only without its trailing slash uses pax', () => {
  const path = 'd'.repeat(100);
  const got = blocks({ path, type: 'directory', mode: 0o555 });
  assert.deepEqual(got.map((b) => b.typeflag), ['x', '5']);
  assert.equal(got[0]!.pax, `111 path=${path}/\n`);
});

test('directories are written with a trailing slash, as GNU tar writes them', () => {
  assert.deepEqual(blocks({ path: 'a/b', type: 'directory', mode: 0o555 }).map((b) => [b.typeflag, b.ustarName]), [['5', 'a/b/']]);
});

test('a non-ASCII name gets a pax path record holding its UTF-8 bytes; the ustar field stays ASCII', () => {
  const path = 'données/日本語.txt';
  const h = encodeHeader({ ...base, path });
  const got = rawHeaders(Buffer.concat([h, Buffer.alloc(1024)]));
  assert.deepEqual(got.map((b) => b.typeflag), ['x', '0']);
  assert.equal(got[0]!.pax, `31 path=${path}\n`);
  assert.match(got[1]!.ustarName, /^[\x20-\x7e]+$/);
});

test('a 100-byte symlink target fits; a 200-byte one gets a pax linkpath record only', () => {
  const short = 't'.repeat(100);
  assert.deepEqual(blocks({ type: 'symlink', mode: 0o777, linkname: short }).map((b) => b.typeflag), ['2']);
  const long = `/nix/store/${'t'.repeat(189)}`;
  const got = blocks({ type: 'symlink', mode: 0o777, linkname: long });
  assert.deepEqual(got.map((b) => b.typeflag), ['x', '2']);
  assert.equal(got[0]!.pax, `214 linkpath=${long}\n`);
});

test('a size of 8 GiB or more goes in a pax size record, with 0 in the ustar size field', () => {
  const under = encodeHeader({ ...base, size: 8 * 2 ** 30 - 1 });
  assert.equal(under.length, 512);
  assert.equal(under.subarray(124, 136).toString('latin1'), '77777777777\0');
  const got = blocks({ size: 8 * 2 ** 30 });
  assert.deepEqual(got.map((b) => [b.typeflag, b.size]), [['x', 19], ['0', 0]]);
  assert.equal(got[0]!.pax, '19 size=8589934592\n');
});

test('several pax records are written in key order', () => {
  const path = 'é';
  const got = blocks({ path, type: 'symlink', mode: 0o777, linkname: 'ü'.repeat(60) });
  assert.equal(got[0]!.pax, `134 linkpath=${'ü'.repeat(60)}\n11 path=é\n`);
});

test('a pax record length counts its own digits, also where that adds a digit', () => {
  for (let n = 80; n < 1100; n++) {
    const rec = encodePaxRecords([['path', Buffer.from('p'.repeat(n))]]);
    const declared = Number(rec.toString('latin1').split(' ')[0]);
    assert.equal(declared, rec.length, `value of ${n} bytes`);
  }
});

test('numeric fields are zero-padded octal ending in NUL; the checksum ends in NUL and space', () => {
  const h = encodeHeader({ ...base, mode: 0o4555, uid: 1000, gid: 100, mtime: 1700000000, size: 5 });
  assert.equal(h.subarray(100, 108).toString('latin1'), '0004555\0');
  assert.equal(h.subarray(108, 116).toString('latin1'), '0001750\0');
  assert.equal(h.subarray(116, 124).toString('latin1'), '0000144\0');
  assert.equal(h.subarray(124, 136).toString('latin1'), '00000000005\0');
  assert.equal(h.subarray(136, 148).toString('latin1'), '14524770400\0');
  assert.equal(h.subarray(257, 265).toString('latin1'), 'ustar\x0000');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  assert.equal(h.subarray(148, 156).toString('latin1'), `${sum.toString(8).padStart(6, '0')}\0 `);
});

test('values that do not fit a header are refused with LayerEntryError naming the entry', () => {
  const cases: [Partial<TarHeaderFields>, RegExp][] = [
    [{ uid: 2 ** 21 }, /uid 2097152/],
    [{ gid: -1 }, /gid -1/],
    [{ mtime: 8 ** 11 }, /mtime/],
    [{ mode: 0o10000 }, /mode/],
    [{ uname: 'u'.repeat(32) }, /uname/],
    [{ gname: 'grüppe' }, /gname/],
    [{ type: 'symlink', linkname: '' }, /symlink target/],
  ];
  for (const [fields, re] of cases) {
    assert.throws(() => encodeHeader({ ...base, path: 'etc/x', ...fields }), (e: unknown) => {
      assert.ok(e instanceof LayerEntryError);
      assert.match(e.message, re);
      assert.match(e.message, /"etc\/x"/);
      return true;
    });
  }
});

test('an mtime after 2038 is written exactly (11 octal digits reach the year 2242)', () => {
  const mtime = Date.UTC(2100, 0, 1) / 1000; // 4102444800
  const h = encodeHeader({ ...base, mtime });
  assert.equal(h.subarray(136, 148).toString('latin1'), `${mtime.toString(8).padStart(11, '0')}\0`);
  assert.equal(parseInt(h.subarray(136, 147).toString('latin1'), 8), 4102444800);
});

test('the one-block header writer gives encodeHeader\'s bytes for every entry it takes, and declines the rest', async () => {
  const { SimpleHeaderWriter } = await import('../builder/layer/tar-header.js');
  const defaults = { uid: 1000, gid: 100, uname: 'app', gname: 'users', mtime: 1700000000 };
  const writer = new SimpleHeaderWriter(defaults);
  // Deterministic variety: short and long paths (around the 100/155/255-byte limits of the
  // ustar name and prefix), slashes in every place, all three kinds, sizes past 2^32.
  let x = 12345;
  const next = (n: number) => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);
  const chars = 'abz09._-+=/';
  let taken = 0;
  let declined = 0;
  for (let i = 0; i < 20000; i++) {
    const len = 1 + next(i % 3 === 0 ? 300 : 120);
    let path = '';
    for (let j = 0; j < len; j++) path += chars[next(chars.length)];
    path = path.replace(/\/+/g, '/').replace(/^\/|\/$/g, '') || 'x';
    const type = (['file', 'directory', 'symlink'] as const)[next(3)]!;
    const size = type === 'file' ? [0, 1, 511, 512, 513, 2 ** 31 - 1, 2 ** 31, 2 ** 33 - 1, 2 ** 33, next(1e6)][next(10)]! : 0;
    const linkname = type === 'symlink' ? 't'.repeat(1 + next(110)) : undefined;
    const mode = next(0o10000);
    const fields: TarHeaderFields = { path, type, mode, size, ...defaults, ...(linkname ? { linkname } : {}) };
    const buf = Buffer.alloc(1024, 0xee);
    const name = Buffer.from(path);
    if (writer.write(buf, 256, name, name.length, type, mode, size, linkname)) {
      taken++;
      assert.deepEqual(buf.subarray(256, 768), encodeHeader(fields), JSON.stringify(fields));
      assert.equal(buf[255], 0xee);
      assert.equal(buf[768], 0xee);
    } else {
      declined++;
      assert.ok(encodeHeader(fields).length > 512, `declined a one-block header: ${JSON.stringify(fields)}`);
      assert.ok(buf.every((b) => b === 0xee), 'a declined entry writes nothing');
    }
  }
  assert.ok(taken > 10000 && declined > 1000, `${taken} taken, ${declined} declined`);
});
