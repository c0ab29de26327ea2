import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { decodeNumber, decodePax, decodeString, ustarName } from '../layer/tar-read.js';

/** Where a regular file's bytes sit inside a tar archive. */
export interface TarMember {
  name: string;
  offset: number;
  size: number;
}

/** A tar archive that ends before its members do: `what` says where (`member <name> needs N bytes, ...`). */
export class TruncatedTarError extends Error {
  override name = 'TruncatedTarError';
  constructor(readonly what: string) {
    super(`truncated: ${what}`);
  }
}

/**
 * Index the regular files of a tar by reading only its headers (seeking over the data), so
 * opening a multi-gigabyte archive costs a few reads. Understands ustar name+prefix, PAX `path`,
 * `linkpath` and `size`, and GNU long names and long link names, which is what image archives use.
 * A hard link member (GNU tar's) and a symlink member (legacy `docker save`'s `layer.tar`) are
 * indexed as the regular member they lead to. An archive that ends before a member's data, inside
 * a header, or before its end-of-archive blocks throws TruncatedTarError.
 */
export async function indexTar(file: string): Promise<Map<string, TarMember>> {
  const fh = await open(file, 'r');
  const members = new Map<string, TarMember>();
  const links = new Map<string, { hard: boolean; target: string }>();
  try {
    const { size: total } = await fh.stat();
    const header = Buffer.alloc(512);
    let pos = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let paxSize: number | undefined;
    let ended = false;
    let last: string | undefined;
    while (pos < total) {
      if (pos + 512 > total) throw new TruncatedTarError(`the header at byte ${pos}${after(last)} needs ${pos + 512} bytes, the file ends after ${total}`);
      await fh.read(header, 0, 512, pos);
      if (header.every((b) => b === 0)) {
        ended = true;
        break;
      }
      const type = String.fromCharCode(header[156] ?? 0x30);
      // A member of 8 GiB or more has its size in a pax record (and 0 in the field, as ours write it).
      const size = type === 'x' || paxSize === undefined ? decodeNumber(header, 124, 12) : paxSize;
      const dataStart = pos + 512;
      const isMeta = type === 'x' || type === 'L' || type === 'K' || type === 'g';
      const name = isMeta ? undefined : normalise(longName ?? ustarName(header));
      if (dataStart + size > total) {
        throw new TruncatedTarError(`member ${name ?? `(${type === 'x' || type === 'g' ? 'pax' : 'GNU long name'} header at byte ${pos})`} needs ${dataStart + size} bytes, the file ends after ${total}`);
      }
      pos = dataStart + Math.ceil(size / 512) * 512;
      if (isMeta) {
        if (type === 'g') continue;
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataStart);
        if (type === 'L') longName = decodeString(data, 0, data.length);
        else if (type === 'K') longLink = decodeString(data, 0, data.length);
        else {
          const pax = decodePax(data);
          longName = pax.path ?? longName;
          longLink = pax.linkpath ?? longLink;
          paxSize = pax.size !== undefined ? parseInt(pax.size, 10) : undefined;
        }
        continue;
      }
      const linkname = longLink ?? decodeString(header, 157, 100);
      longName = undefined;
      longLink = undefined;
      paxSize = undefined;
      last = name!;
      if (type === '0' || type === '\0' || type === '7') {
        members.set(name!, { name: name!, offset: dataStart, size });
        links.delete(name!);
      } else if (type === '1' || type === '2') {
        links.set(name!, { hard: type === '1', target: linkname });
        members.delete(name!);
      }
    }
    if (!ended) throw new TruncatedTarError(`it ends after ${total} bytes${after(last)}, without the end-of-archive blocks`);
  } finally {
    await fh.close();
  }
  for (const name of links.keys()) {
    const m = resolveLink(name, members, links);
    if (m) members.set(name, { ...m, name });
  }
  return members;
}

const after = (name: string | undefined) => (name === undefined ? '' : ` (after member ${name})`);

/** How many links are followed before a chain is taken as a loop (Linux's symlink limit). */
const MAX_LINKS = 40;

/**
 * The regular member a link member leads to: a hard link names its target from the archive's
 * root, a symlink relative to its own directory (an absolute one from the root); a target
 * outside the archive, a loop, or a chain that ends nowhere gives undefined.
 */
export function resolveLink<M>(name: string, members: Map<string, M>, links: Map<string, { hard: boolean; target: string }>): M | undefined {
  let at = name;
  for (let i = 0; i < MAX_LINKS; i++) {
    const link = links.get(at);
    if (!link) return members.get(at);
    const joined = link.hard || link.target.startsWith('/') ? link.target.replace(/^\/+/, '') : posix.join(posix.dirname(at), link.target);
    const next = posix.normalize(joined);
    if (next === '..' || next.startsWith('../')) return undefined;
    at = normalise(next);
  }
  return undefined;
}

export function normalise(name: string): string {
  return name.replace(/^\.\//, '').replace(/\/$/, '');
}
