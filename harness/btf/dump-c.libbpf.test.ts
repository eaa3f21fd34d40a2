import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultDebianKernels } from '../test-support/kernels.js';
import { Btf } from './btf.js';
import { cHeader } from './dump-c.js';

// The C header against libbpf 1.7's btf_dump on real kernels (the host's, when it has BTF, and the
// default matrix's four Debian kernels): build/oracle/btf-dump-c (scripts/oracle/btf-dump-c.c)
// prints what bpftool writes between its guard and pragma lines. Byte for byte, but for where
// dump-c.ts departs from libbpf on purpose (its header comment says why): the unnamed bitfields
// that pad a struct, `__attribute__((packed))` and the anonymous struct that stretches a union are
// decided from how clang lays out the emitted C; enums keep their size with a mode attribute;
// __builtin_va_list is written as the kernel's ABI type; a member without a name of a named
// struct type is written as a copy of its body (firstMismatch).

const repo = join(import.meta.dirname, '..', '..');
const oracle = join(repo, 'build', 'oracle', 'btf-dump-c');
const hostBtf = '/sys/kernel/btf/vmlinux';

/** A header with those layout decisions taken out: what is left, both sides must spell alike. */
function withoutLayout(header: string): string {
  return header
    .split('\n')
    .filter((line) => !/^\t*(?:long long|long|int|short|char): \d+;$/.test(line))
    .join('\n')
    .replaceAll(' __attribute__((packed))', '')
    .replace(/ __attribute__\(\(mode\(\w+\)\)\)/g, '')
    .replace(/\n(\t*)struct \{\n\1\};/g, '')
    .replace(/^typedef struct __va_list_tag (\w+)\[1\];$/gm, 'typedef __builtin_va_list $1;')
    .trimEnd();
}

/**
 * Where the two headers first differ, or undefined. One more departure is allowed: a member without
 * a name whose type is a named struct or union (kernels built with -fms-extensions have them), which
 * libbpf writes as `struct base;` (in standard C a declaration, and the member is gone) and
 * dump-c.ts as an anonymous copy of the type's body, `struct { … };`.
 */
function firstMismatch(ours: string[], theirs: string[]): string | undefined {
  let i = 0;
  let j = 0;
  while (i < ours.length && j < theirs.length) {
    if (ours[i] === theirs[j]) {
      i++;
      j++;
      continue;
    }
    const member = /^(\t+)(struct|union) \w+;$/.exec(theirs[j]!);
    if (member !== null && ours[i] === `${member[1]}${member[2]} {`) {
      const close = ours.indexOf(`${member[1]}};`, i + 1);
      if (close > i) {
        i = close + 1;
        j++;
        continue;
      }
    }
    return `line ${i + 1} of ours, ${j + 1} of libbpf's: ${JSON.stringify(ours[i])} vs ${JSON.stringify(theirs[j])}`;
  }
  return i === ours.length && j === theirs.length
    ? undefined
    : `one header ends first (line ${i + 1} / ${j + 1})`;
}

const kernels: { name: string; btf: string }[] = [];

beforeAll(async () => {
  await execa('bash', [join(repo, 'scripts', 'oracle', 'build.sh')]);
  if (existsSync(hostBtf)) kernels.push({ name: 'host', btf: hostBtf });
  for (const k of await defaultDebianKernels()) kernels.push({ name: k.name, btf: k.btf! });
});

describe('btf dump --format c against libbpf 1.7 btf_dump', () => {
  it('writes every kernel type as libbpf does, but for the layout it decides itself', async () => {
    expect(kernels.length).toBeGreaterThanOrEqual(4);
    for (const { name, btf } of kernels) {
      const { stdout: theirs } = await execa(oracle, [btf], { maxBuffer: 1 << 28, stripFinalNewline: false });
      const ours = cHeader(Btf.parse(new Uint8Array(readFileSync(btf))), {
        guard: '',
        preserveAccessIndex: false,
      });
      const [a, b] = [withoutLayout(ours), withoutLayout(theirs)];
      const mismatch = firstMismatch(a.split('\n'), b.split('\n'));
      if (mismatch !== undefined) expect.fail(`${name}: ${mismatch}`);
      // The layout lines left out are a small part of the header: the comparison covers the rest.
      expect(b.length / theirs.length, name).toBeGreaterThan(0.95);
    }
  });
});
