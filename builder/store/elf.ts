import type { GO_ARCHITECTURES } from '../spec/platform.js';

/**
 * The machine an ELF file is for, from its header alone: the first 52 (32-bit) or 64 (64-bit)
 * bytes of the file. An image's `architecture` can then follow its content (issue 13) instead of
 * the build host.
 *
 * Only what the header says is used: EI_CLASS (32/64-bit), EI_DATA (endianness), e_machine (read
 * in the file's own endianness) and, for MIPS, e_flags. ARM's variant (v6, v7) is NOT decided: it
 * is in the `.ARM.attributes` section (Tag_CPU_arch), far from the header, and e_flags only gives
 * the float ABI, which does not tell v6 from v7 (Debian's armhf is v7 hard-float, Raspbian's armhf
 * is v6 hard-float, armel is v5 soft-float). The float ABI is reported for information.
 */

/** Bytes to read from the start of a file: the 64-bit header (the 32-bit one is 52). */
export const ELF_HEAD_BYTES = 64;
/** A file smaller than this (the 32-bit header) cannot be an ELF file: it need not be opened. */
export const ELF_MIN_SIZE = 52;
/** The bytes every ELF file starts with (`\x7fELF`). */
export const ELF_MAGIC: Uint8Array = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46);

export type GoArchitecture = (typeof GO_ARCHITECTURES)[number];

/** The identification fields of a header, as numbers. */
export interface ElfIdent {
  /** EI_CLASS: 32 or 64. */
  bits: 32 | 64;
  /** EI_DATA. */
  endian: 'little' | 'big';
  /** e_machine (EM_* in elf.h). */
  machine: number;
  /** e_flags (machine-specific). */
  flags: number;
}

export type ElfArchitecture =
  | (ElfIdent & {
      kind: 'known';
      /** The Go/OCI architecture name. */
      architecture: GoArchitecture;
      /** ARM EABI5 only: the float ABI e_flags declares, when it declares one. */
      armFloatAbi?: 'hard' | 'soft';
    })
  | (ElfIdent & {
      kind: 'unknown';
      /** e.g. `ELF machine 247 (BPF), 64-bit little-endian: no Go/OCI architecture`. */
      description: string;
    });

const EM = {
  I386: 3,
  MIPS: 8,
  PPC: 20,
  PPC64: 21,
  S390: 22,
  ARM: 40,
  X86_64: 62,
  AARCH64: 183,
  BPF: 247,
  RISCV: 243,
  LOONGARCH: 258,
} as const;

/** MIPS e_flags: the n32 ABI (64-bit registers, 32-bit pointers, ELFCLASS32; Go's unsupported mips64p32). */
const EF_MIPS_ABI2 = 0x20;
/** ARM e_flags: EABI version in the top byte; with EABI5, which float ABI the file uses. */
const EF_ARM_EABIMASK = 0xff000000;
const EF_ARM_EABI_VER5 = 0x05000000;
const EF_ARM_ABI_FLOAT_HARD = 0x400;
const EF_ARM_ABI_FLOAT_SOFT = 0x200;

/** Names for the messages about machines with no Go name (a few that show up in real closures). */
const MACHINE_NAMES: Record<number, string> = {
  [EM.I386]: 'x86',
  [EM.MIPS]: 'MIPS',
  [EM.PPC]: 'PowerPC',
  [EM.PPC64]: 'PowerPC 64',
  [EM.S390]: 'S/390',
  [EM.ARM]: 'ARM',
  [EM.X86_64]: 'x86-64',
  [EM.AARCH64]: 'AArch64',
  [EM.BPF]: 'BPF',
  [EM.RISCV]: 'RISC-V',
  [EM.LOONGARCH]: 'LoongArch',
  94: 'Xtensa',
  93: 'ARC',
  2: 'SPARC',
  43: 'SPARC V9',
};

/**
 * The architecture of the ELF file whose first bytes are `head`, or undefined when `head` is not
 * an ELF header: no `\x7fELF` magic, an EI_CLASS or EI_DATA byte that is neither 1 nor 2, or fewer
 * bytes than the header of its class (a truncated file cannot be loaded, whatever its magic).
 * A valid header for a machine (or an ABI of it) with no Go/OCI name is `kind: 'unknown'`.
 */
export function elfArchitecture(head: Uint8Array): ElfArchitecture | undefined {
  if (head.length < ELF_MIN_SIZE || !ELF_MAGIC.every((b, i) => head[i] === b)) return undefined;
  const cls = head[4];
  const data = head[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) return undefined;
  const bits = cls === 1 ? 32 : 64;
  if (head.length < (bits === 32 ? 52 : 64)) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.length);
  const little = data === 1;
  // e_machine follows e_ident (16 bytes) and e_type (2); e_flags follows e_entry, e_phoff and
  // e_shoff, which are 4 bytes each in a 32-bit header and 8 in a 64-bit one.
  const ident: ElfIdent = {
    bits,
    endian: little ? 'little' : 'big',
    machine: view.getUint16(18, little),
    flags: view.getUint32(bits === 32 ? 36 : 48, little),
  };
  const architecture = goArchitecture(ident);
  if (architecture === undefined) return { kind: 'unknown', ...ident, description: describe(ident) };
  const out: ElfArchitecture = { kind: 'known', ...ident, architecture };
  if (ident.machine === EM.ARM && (ident.flags & EF_ARM_EABIMASK) >>> 0 === EF_ARM_EABI_VER5) {
    if (ident.flags & EF_ARM_ABI_FLOAT_HARD) out.armFloatAbi = 'hard';
    else if (ident.flags & EF_ARM_ABI_FLOAT_SOFT) out.armFloatAbi = 'soft';
  }
  return out;
}

/**
 * Go's name for the machine, class and byte order, when Go (hence OCI) has one. Other ABIs of a
 * known machine (x32, AArch64 ILP32, big-endian ARM, 31-bit S/390, MIPS n32, 32-bit RISC-V) have none.
 */
function goArchitecture({ bits, endian, machine, flags }: ElfIdent): GoArchitecture | undefined {
  const le = endian === 'little';
  switch (machine) {
    case EM.X86_64:
      return bits === 64 && le ? 'amd64' : undefined;
    case EM.I386:
      return bits === 32 && le ? '386' : undefined;
    case EM.AARCH64:
      return bits === 64 && le ? 'arm64' : undefined;
    case EM.ARM:
      return bits === 32 && le ? 'arm' : undefined;
    case EM.PPC64:
      return bits === 64 ? (le ? 'ppc64le' : 'ppc64') : undefined;
    case EM.S390:
      return bits === 64 && !le ? 's390x' : undefined;
    case EM.RISCV:
      return bits === 64 && le ? 'riscv64' : undefined;
    case EM.LOONGARCH:
      return bits === 64 && le ? 'loong64' : undefined;
    case EM.MIPS:
      if (bits === 64) return le ? 'mips64le' : 'mips64';
      return flags & EF_MIPS_ABI2 ? undefined : le ? 'mipsle' : 'mips';
    default:
      return undefined;
  }
}

function describe({ bits, endian, machine, flags }: ElfIdent): string {
  const name = MACHINE_NAMES[machine];
  return `ELF machine ${machine}${name ? ` (${name})` : ''}, ${bits}-bit ${endian}-endian, flags 0x${flags.toString(16)}: no Go/OCI architecture`;
}
