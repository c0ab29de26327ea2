import { open } from 'node:fs/promises';
/** Hand-built ELF headers for tests: the fields elf.ts reads, at their offsets, in the header's byte order. */
export interface ElfHeaderFields {
  bits: 32 | 64;
  endian: 'little' | 'big';
  machine: number;
  flags?: number;
  /** e_type: 2 executable (default), 3 shared object, 1 relocatable. */
  type?: number;
}

/** A complete ELF header (52 bytes for 32-bit, 64 for 64-bit). */
export function elfHeader({ bits, endian, machine, flags = 0, type = 2 }: ElfHeaderFields): Buffer {
  const b = Buffer.alloc(bits === 32 ? 52 : 64);
  b.set([0x7f, 0x45, 0x4c, 0x46, bits === 32 ? 1 : 2, endian === 'little' ? 1 : 2, 1], 0);
  const le = endian === 'little';
  const u16 = (v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (le ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  u16(type, 16);
  u16(machine, 18);
  u32(1, 20); // e_version
  u32(flags, bits === 32 ? 36 : 48);
  u16(b.length, bits === 32 ? 40 : 52); // e_ehsize
  return b;
}

/** A file's bytes: the header, then `size - header` bytes of padding. */
export function elfFile(fields: ElfHeaderFields, size = 4096): Buffer {
  const h = elfHeader(fields);
  return Buffer.concat([h, Buffer.alloc(Math.max(0, size - h.length), 0xcc)]);
}

export const AMD64 = { bits: 64, endian: 'little', machine: 62 } as const;
export const ARM64 = { bits: 64, endian: 'little', machine: 183 } as const;

/**
 * The first 64 bytes of Debian 12's busybox-static 1:1.35.0-4+deb12u1+b1 (/bin/busybox) for each
 * Debian architecture, as `xxd -p` prints them: real headers, without committing the binaries.
 */
export const DEBIAN_BUSYBOX_HEADS: Record<string, string> = {
  amd64: '7f454c4602010103000000000000000002003e0001000000f0eb400000000000400000000000000070381e000000000000000000400038000a0040001b001a00',
  arm64: '7f454c460201010300000000000000000200b700010000008005400000000000400000000000000068261c00000000000000000040003800060040001a001900',
  armhf: '7f454c4601010103000000000000000002002800010000007187030034000000f09513000004000534002000070028001c001b0001000070c4351300c4351400',
  armel: '7f454c4601010100000000000000000002002800010000009830010034000000d4451c000002000534002000070028001a00190001000070f8e01b00f8e01c00',
  i386: '7f454c460101010300000000000000000200030001000000009b040834000000e0761f000000000034002000080028001a001900010000000000000000800408',
  ppc64el: '7f454c4602010103000000000000000002001500010000002c7f1210000000004000000000000000f8262600000000000200000040003800060040001b001a00',
  s390x: '7f454c4602020103000000000000000000020016000000010000000001004830000000000000004000000000001f4628000000000040003800060040001a0019',
  mips64el: '7f454c46020101000000000000000000020008000100000090cb002001000000400000000000000038742500000000000700008040003800070040001e001d00',
  mipsel: '7f454c460101010000000000000000000200080001000000e005400034000000304824000710007034002000080028001f001e00030000703801000038014000',
};

/** ELF e_machine values of the architectures the tests use. */
export const EM_X86_64 = 0x3e;
export const EM_AARCH64 = 0xb7;

export interface ElfHeader {
  /** 64 for ELFCLASS64, 32 for ELFCLASS32. */
  bits: 32 | 64;
  endian: 'little' | 'big';
  /** e_machine (0x3e x86-64, 0xb7 aarch64, …). */
  machine: number;
}

/**
 * The identification and e_machine of an ELF file, read from its first 20 bytes with no help from
 * `file`; undefined when the file does not start with the ELF magic.
 */
export async function readElfHeader(path: string): Promise<ElfHeader | undefined> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(20);
    const { bytesRead } = await fh.read(b, 0, 20, 0);
    if (bytesRead < 20 || b.readUInt32BE(0) !== 0x7f454c46) return undefined;
    const endian = b[5] === 2 ? 'big' : 'little';
    return {
      bits: b[4] === 1 ? 32 : 64,
      endian,
      machine: endian === 'big' ? b.readUInt16BE(18) : b.readUInt16LE(18),
    };
  } finally {
    await fh.close();
  }
}
