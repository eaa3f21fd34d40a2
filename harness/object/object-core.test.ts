import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Btf } from '../btf/btf.js';
import { relocateObject } from '../core/relocate.js';
import { parseCoreObject } from './object-core.js';

const casesDir = join(import.meta.dirname, '..', '..', 'build', 'cases');
const caseObjects = readdirSync(casesDir)
  .filter((n) => n.endsWith('.o'))
  .sort();

/** A buffer of the file's size that only `fill` writes to, and the ranges it was asked for. */
function onDemand(file: Uint8Array) {
  const bytes = new Uint8Array(file.length);
  const ranges: [number, number][] = [];
  const fill = (offset: number, length: number) => {
    ranges.push([offset, offset + length]);
    bytes.set(file.subarray(offset, offset + length), offset);
  };
  return { bytes, fill, ranges };
}

describe('parseCoreObject with the file read on demand (corematrix relocate)', () => {
  const host = Btf.parse(new Uint8Array(readFileSync('/sys/kernel/btf/vmlinux')));
  const targets = { vmlinux: host, modules: [], vmlinuxOverride: true };

  test.each(caseObjects)('%s: the same object and relocations, without reading its DWARF', (name) => {
    const file = new Uint8Array(readFileSync(join(casesDir, name)));
    const whole = parseCoreObject(file);
    const lazy = onDemand(file);
    const partial = parseCoreObject(lazy.bytes, lazy.fill);

    expect(partial.programs).toEqual(whole.programs);
    expect(partial.btfExt).toEqual(whole.btfExt);
    expect(partial.btf?.raw).toEqual(whole.btf?.raw);
    expect([partial.license, partial.kernelVersion]).toEqual([whole.license, whole.kernelVersion]);
    const wholeResult = relocateObject(whole, targets);
    const partialResult = relocateObject(partial, targets);
    expect(partialResult.records).toEqual(wholeResult.records);
    expect(partialResult.sections).toEqual(wholeResult.sections);

    const debug = whole.elf.sections.filter((s) => /^\.(rela?)?\.?debug_/.test(s.name) && s.size > 0);
    expect(debug.length).toBeGreaterThan(0);
    for (const s of debug) {
      const touched = lazy.ranges.some(([start, end]) => start < s.offset + s.size && end > s.offset);
      expect(touched, `${s.name} was read`).toBe(false);
    }
    const read = lazy.ranges.reduce((n, [start, end]) => n + end - start, 0);
    expect(read).toBeLessThan(file.length);
  });

  test('a file cut short fails the same way whole or on demand', () => {
    const file = new Uint8Array(readFileSync(join(casesDir, 'minimal.bpf.o')));
    for (const cut of [10, 64, 200, file.length - 100]) {
      const short = file.subarray(0, cut);
      const lazy = onDemand(short);
      const whole = errorOf(() => parseCoreObject(short));
      expect(whole).toBeDefined();
      expect(errorOf(() => parseCoreObject(lazy.bytes, lazy.fill))).toEqual(whole);
    }
  });
});

function errorOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return String(e);
  }
}
