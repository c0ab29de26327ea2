// The ELF header parser (store/elf.ts): the machine, class and byte order of a file's first bytes,
// mapped to the Go/OCI architecture names an image's `architecture` uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { ELF_HEAD_BYTES, ELF_MIN_SIZE, elfArchitecture } from '../builder/store/elf.js';
import { GO_ARCHITECTURES } from '../builder/spec/platform.js';
import { DEBIAN_BUSYBOX_HEADS, elfHeader, type ElfHeaderFields } from './helpers/elf.js';

const known: Array<[string, ElfHeaderFields]> = [
  ['amd64', { bits: 64, endian: 'little', machine: 62 }],
  ['386', { bits: 32, endian: 'little', machine: 3 }],
  ['arm64', { bits: 64, endian: 'little', machine: 183 }],
  ['arm', { bits: 32, endian: 'little', machine: 40 }],
  ['ppc64le', { bits: 64, endian: 'little', machine: 21 }],
  ['ppc64', { bits: 64, endian: 'big', machine: 21 }],
  ['s390x', { bits: 64, endian: 'big', machine: 22 }],
  ['riscv64', { bits: 64, endian: 'little', machine: 243 }],
  ['mips', { bits: 32, endian: 'big', machine: 8 }],
  ['mipsle', { bits: 32, endian: 'little', machine: 8 }],
  ['mips64', { bits: 64, endian: 'big', machine: 8 }],
  ['mips64le', { bits: 64, endian: 'little', machine: 8 }],
  ['loong64', { bits: 64, endian: 'little', machine: 258 }],
];

for (const [arch, fields] of known) {
  test(`a ${fields.bits}-bit ${fields.endian}-endian header for machine ${fields.machine} is ${arch}`, () => {
    assert.deepEqual(elfArchitecture(elfHeader(fields)), { kind: 'known', architecture: arch, flags: 0, ...fields });
  });
}

test('every architecture the parser names is a Go architecture the spec accepts', () => {
  assert.deepEqual(known.map(([a]) => a).filter((a) => !(GO_ARCHITECTURES as readonly string[]).includes(a)), []);
});

test('e_machine is read in the header\'s byte order: S/390 (22) big-endian, not 0x1600', () => {
  const h = elfHeader({ bits: 64, endian: 'big', machine: 22 });
  assert.deepEqual([...h.subarray(18, 20)], [0x00, 0x16]);
  assert.equal(elfArchitecture(h)?.machine, 22);
});

test('e_flags is read at its offset for the class: 36 in a 32-bit header, 48 in a 64-bit one', () => {
  assert.equal(elfArchitecture(elfHeader({ bits: 32, endian: 'little', machine: 8, flags: 0x70001007 }))?.flags, 0x70001007);
  assert.equal(elfArchitecture(elfHeader({ bits: 64, endian: 'big', machine: 8, flags: 0x80000007 }))?.flags, 0x80000007);
});

test('an unknown machine is an "unknown" result carrying the numbers', () => {
  assert.deepEqual(elfArchitecture(elfHeader({ bits: 64, endian: 'little', machine: 247, flags: 0 })), {
    kind: 'unknown',
    bits: 64,
    endian: 'little',
    machine: 247,
    flags: 0,
    description: 'ELF machine 247 (BPF), 64-bit little-endian, flags 0x0: no Go/OCI architecture',
  });
  assert.deepEqual(elfArchitecture(elfHeader({ bits: 32, endian: 'big', machine: 4242, flags: 0x10 })), {
    kind: 'unknown',
    bits: 32,
    endian: 'big',
    machine: 4242,
    flags: 0x10,
    description: 'ELF machine 4242, 32-bit big-endian, flags 0x10: no Go/OCI architecture',
  });
});

test('ABIs of known machines that Go has no name for are unknown: x32, AArch64 ILP32, big-endian ARM, MIPS n32, 31-bit S/390, 32-bit RISC-V, 32-bit PowerPC', () => {
  const abis: ElfHeaderFields[] = [
    { bits: 32, endian: 'little', machine: 62 },
    { bits: 32, endian: 'little', machine: 183 },
    { bits: 64, endian: 'big', machine: 183 },
    { bits: 32, endian: 'big', machine: 40 },
    { bits: 32, endian: 'little', machine: 8, flags: 0x20 },
    { bits: 32, endian: 'big', machine: 22 },
    { bits: 32, endian: 'little', machine: 243 },
    { bits: 32, endian: 'big', machine: 20 },
  ];
  assert.deepEqual(abis.map((f) => elfArchitecture(elfHeader(f))?.kind), abis.map(() => 'unknown'));
});

test('ARM: the EABI5 float ABI is reported and no variant is guessed', () => {
  const hard = elfArchitecture(elfHeader({ bits: 32, endian: 'little', machine: 40, flags: 0x05000400 }));
  const soft = elfArchitecture(elfHeader({ bits: 32, endian: 'little', machine: 40, flags: 0x05000200 }));
  const old = elfArchitecture(elfHeader({ bits: 32, endian: 'little', machine: 40, flags: 0x04000400 }));
  assert.deepEqual([hard, soft, old].map((r) => r?.kind === 'known' && [r.architecture, r.armFloatAbi]), [['arm', 'hard'], ['arm', 'soft'], ['arm', undefined]]);
  assert.equal(hard && 'variant' in hard, false);
});

test('not ELF: no magic, a class or data byte other than 1 or 2, or fewer bytes than the header of its class', () => {
  const h64 = elfHeader({ bits: 64, endian: 'little', machine: 62 });
  const h32 = elfHeader({ bits: 32, endian: 'little', machine: 3 });
  const withByte = (h: Buffer, at: number, v: number) => Buffer.from(h).fill(v, at, at + 1);
  assert.equal(elfArchitecture(withByte(h64, 0, 0x7e)), undefined);
  assert.equal(elfArchitecture(Buffer.from('#!/bin/sh\n'.padEnd(64, ' '))), undefined);
  assert.equal(elfArchitecture(withByte(h64, 4, 0)), undefined);
  assert.equal(elfArchitecture(withByte(h64, 4, 3)), undefined);
  assert.equal(elfArchitecture(withByte(h64, 5, 0)), undefined);
  assert.equal(elfArchitecture(h64.subarray(0, 63)), undefined, 'a 64-bit header needs 64 bytes');
  assert.equal(elfArchitecture(h32.subarray(0, 51)), undefined, 'a 32-bit header needs 52 bytes');
  assert.equal(elfArchitecture(h32)?.kind, 'known', 'and 52 are enough');
  assert.equal(elfArchitecture(Buffer.alloc(0)), undefined);
});

test('the bytes to read and the smallest ELF file are the 64-bit and 32-bit header sizes', () => {
  assert.deepEqual([ELF_HEAD_BYTES, ELF_MIN_SIZE], [64, 52]);
});

test('a header inside a larger buffer (a slice at an offset) is read at its own offsets', () => {
  const big = Buffer.concat([Buffer.alloc(13, 1), elfHeader({ bits: 64, endian: 'big', machine: 21 }), Buffer.alloc(7)]);
  const r = elfArchitecture(big.subarray(13, 13 + 64));
  assert.equal(r?.kind === 'known' && r.architecture, 'ppc64');
});

test('real headers: Debian\'s busybox-static of each architecture', () => {
  const got = Object.fromEntries(
    Object.entries(DEBIAN_BUSYBOX_HEADS).map(([debian, hex]) => {
      const r = elfArchitecture(Buffer.from(hex, 'hex'));
      return [debian, r?.kind === 'known' ? [r.architecture, r.armFloatAbi ?? null] : r];
    }),
  );
  assert.deepEqual(got, {
    amd64: ['amd64', null],
    arm64: ['arm64', null],
    armhf: ['arm', 'hard'],
    armel: ['arm', 'soft'],
    i386: ['386', null],
    ppc64el: ['ppc64le', null],
    s390x: ['s390x', null],
    mips64el: ['mips64le', null],
    mipsel: ['mipsle', null],
  });
});

test('a real binary on this machine: /bin/busybox (busybox-static) is amd64 on an x86-64 runner', (t) => {
  if (process.arch !== 'x64' || !existsSync('/bin/busybox')) return t.skip('needs /bin/busybox on x86-64');
  const r = elfArchitecture(readFileSync('/bin/busybox').subarray(0, ELF_HEAD_BYTES));
  assert.equal(r?.kind === 'known' && r.architecture, 'amd64');
});
