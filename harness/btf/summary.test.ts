/**
 * summarizeBtf against bpftool's view of the same BTF: its kinds histogram and ids are counted from
 * `bpftool btf dump file` lines, sizes from the file itself.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Btf } from './btf.js';
import { summarizeBtf } from './summary.js';

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'corematrix-summary-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Kind histogram and first id as bpftool's dump shows them, with bpftool's kind names lowercased. */
function bpftoolKinds(
  file: string,
  base?: string,
): { kinds: Record<string, number>; firstId: number; count: number } {
  const args = base === undefined ? [] : ['-B', base];
  const text = execFileSync('bpftool', [...args, 'btf', 'dump', 'file', file], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  const kinds: Record<string, number> = {};
  let firstId = 0;
  let count = 0;
  for (const match of text.matchAll(/^\[(\d+)\] (\w+) /gm)) {
    if (count === 0) firstId = Number(match[1]);
    count++;
    const kind = match[2]!.toLowerCase();
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return { kinds, firstId, count };
}

const haveTools = has('bpftool') && has('clang-19') && has('llvm-objcopy-19');

describe.skipIf(!haveTools)('summarizeBtf', () => {
  for (const target of ['bpf', 'bpfeb'] as const) {
    it(`counts kinds and sizes of a clang-19 -target ${target} object's BTF as bpftool sees them`, () => {
      const object = join(work, `all-kinds.${target}.o`);
      const file = join(work, `all-kinds.${target}.btf`);
      execFileSync('clang-19', [
        '-g',
        '-O2',
        '-target',
        target,
        '-c',
        join(here, 'testdata', 'all-kinds.bpf.c'),
        '-o',
        object,
      ]);
      execFileSync('llvm-objcopy-19', [`--dump-section=.BTF=${file}`, object, join(work, 'discard.o')]);
      const summary = summarizeBtf(Btf.parse(new Uint8Array(readFileSync(file))));
      const oracle = bpftoolKinds(object);

      expect(summary.kinds).toEqual(oracle.kinds);
      expect(Object.keys(summary.kinds)).toHaveLength(19);
      expect(summary.ownTypes).toBe(oracle.count);
      expect(summary.totalTypes).toBe(oracle.count);
      expect(summary.firstId).toBe(1);
      expect(summary.split).toBe(false);
      expect(summary.bytes).toBe(statSync(file).size);
      // Header (24 bytes, clang's), types and strings make up the whole blob.
      expect(24 + summary.typeBytes + summary.stringBytes).toBe(summary.bytes);
      expect(summary.byteOrder).toBe(target === 'bpfeb' ? 'big' : 'little');
    });
  }

  it.skipIf(!has('pahole'))('counts only a split BTF’s own types, and the base’s in the total', () => {
    const vmlinux = '/sys/kernel/btf/vmlinux';
    const source = join(here, 'testdata', 'all-kinds.bpf.c');
    const object = join(work, 'host.o');
    const split = join(work, 'split.btf');
    // The BPF source also builds for the host, where pahole encodes its DWARF as split BTF.
    execFileSync('clang-19', ['-g', '-O2', '-c', source, '-o', object]);
    execFileSync('pahole', [`--btf_base=${vmlinux}`, `--btf_encode_detached=${split}`, '-J', object]);
    const base = Btf.parse(new Uint8Array(readFileSync(vmlinux)));
    const summary = summarizeBtf(Btf.parse(new Uint8Array(readFileSync(split)), { base }));
    const oracle = bpftoolKinds(split, vmlinux);
    const baseOracle = bpftoolKinds(vmlinux);

    expect(summary.split).toBe(true);
    expect(summary.kinds).toEqual(oracle.kinds);
    expect(summary.firstId).toBe(oracle.firstId);
    expect(summary.ownTypes).toBe(oracle.count);
    expect(summary.totalTypes).toBe(baseOracle.count + oracle.count);
    expect(summary.bytes).toBe(statSync(split).size);
  });
});
