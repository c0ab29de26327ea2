import { open } from 'node:fs/promises';

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
