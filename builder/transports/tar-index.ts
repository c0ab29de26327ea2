import { open } from 'node:fs/promises';
import { decodeNumber, decodePax, decodeString, ustarName } from '../layer/tar-read.js';

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
    let paxSize: number | undefined;
    while (pos + 512 <= total) {
      await fh.read(header, 0, 512, pos);
      if (header.every((b) => b === 0)) break;
      const type = String.fromCharCode(header[156] ?? 0x30);
      // A member of 8 GiB or more has its size in a pax record (and 0 in the field, as ours write it).
      const size = type === 'x' || paxSize === undefined ? decodeNumber(header, 124, 12) : paxSize;
      const dataStart = pos + 512;
      pos = dataStart + Math.ceil(size / 512) * 512;
      if (type === 'x' || type === 'L') {
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataStart);
        if (type === 'L') longName = decodeString(data, 0, data.length);
        else {
          const pax = decodePax(data);
          longName = pax.path ?? longName;
          paxSize = pax.size !== undefined ? parseInt(pax.size, 10) : undefined;
        }
        continue;
      }
      const name = normalise(longName ?? ustarName(header));
      longName = undefined;
      paxSize = undefined;
      if (type === '0' || type === '\0' || type === '7') members.set(name, { name, offset: dataStart, size });
    }
  } finally {
    await fh.close();
  }
  return members;
}

export function normalise(name: string): string {
  return name.replace(/^\.\//, '').replace(/\/$/, '');
}
