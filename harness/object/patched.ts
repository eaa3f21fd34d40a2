import type { CoreBpfObject } from './object-core.js';

/**
 * The object's file bytes with some sections' contents replaced (same sizes): what `corematrix
 * relocate -o` writes, everything but the patched instructions byte-identical to the input.
 */
export function objectWithSections(
  obj: CoreBpfObject,
  sections: ReadonlyMap<number, Uint8Array>,
): Uint8Array {
  const out = Uint8Array.from(obj.elf.bytes);
  for (const [index, bytes] of sections) {
    const header = obj.elf.sections[index];
    if (header === undefined || header.size !== bytes.length) {
      throw new RangeError(`section ${index} cannot take ${bytes.length} bytes`);
    }
    out.set(bytes, header.offset);
  }
  return out;
}
