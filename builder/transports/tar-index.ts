import { open } from 'node:fs/promises';

/** Where a regular file's bytes sit inside a tar archive. */
export interface TarMember {
  name: string;
  offset: number;
  size: number;
}

/**
 * Index the regular files of a tar by reading only its headers (seeking over the data), so
 * opening a multi-gigabyte archive costs a few reads. Understands ustar name+prefix, PAX `path`
 * and GNU long names, which is what image archives use.
 */
export async function indexTar(file: string): Promise<Map<string, TarMember>> {
  const fh = await open(file, 'r');
  const members = new Map<string, TarMember>();
  try {
    const { size: total } = await fh.stat();
    const header = Buffer.alloc(512);
    let pos = 0;
    let longName: string | undefined;
    while (pos + 512 <= total) {
      await fh.read(header, 0, 512, pos);
      if (header.every((b) => b === 0)) break;
      const size = parseOctal(header.subarray(124, 136));
      const type = String.fromCharCode(header[156] ?? 0x30);
      const dataStart = pos + 512;
      pos = dataStart + Math.ceil(size / 512) * 512;
      if (type === 'x' || type === 'L') {
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataStart);
        longName = type === 'L' ? cString(data) : paxPath(data) ?? longName;
        continue;
      }
      const name = normalise(longName ?? ustarName(header));
      longName = undefined;
      if (type === '0' || type === '\0' || type === '7') members.set(name, { name, offset: dataStart, size });
    }
  } finally {
    await fh.close();
  }
  return members;
}

export function parseOctal(field: Buffer): number {
  // Base-256 for sizes of 8 GiB and more (GNU extension).
  if ((field[0] ?? 0) & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] ?? 0);
    return n;
  }
  const s = cString(field).trim();
  return s ? parseInt(s, 8) : 0;
}

export function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end === -1 ? b.length : end).toString('utf8');
}

export function ustarName(h: Buffer): string {
  const name = cString(h.subarray(0, 100));
  const magic = h.subarray(257, 262).toString('latin1');
  const prefix = magic === 'ustar' ? cString(h.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

export function paxPath(data: Buffer): string | undefined {
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space === -1) break;
    const len = parseInt(data.subarray(i, space).toString('latin1'), 10);
    if (!(len > 0)) break;
    const record = data.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') return record.slice(eq + 1);
    i += len;
  }
  return undefined;
}

export function normalise(name: string): string {
  return name.replace(/^\.\//, '').replace(/\/$/, '');
}
