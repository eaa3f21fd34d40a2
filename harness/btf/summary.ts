/**
 * What `corematrix btf info` says about a BTF: how many types of which kinds, and how big.
 */

import type { Btf } from './btf.js';
import type { Kind } from './types.js';
import { KIND_BY_NUMBER } from './types.js';

export interface BtfSummary {
  /** Types this BTF defines itself (void not counted; for split BTF, the base's not counted). */
  ownTypes: number;
  /** Types with the base's included (void not counted); equal to ownTypes for base BTF. */
  totalTypes: number;
  /** The first type id this BTF defines: 1, or for split BTF the id after the base's last. */
  firstId: number;
  /** Whether this BTF continues a base BTF (a kernel module's does). */
  split: boolean;
  /** Size of the BTF blob in bytes (header, types and strings). */
  bytes: number;
  /** Size of the type section in bytes. */
  typeBytes: number;
  /** Size of the string section in bytes (this BTF's own). */
  stringBytes: number;
  byteOrder: 'little' | 'big';
  /** How many of this BTF's own types are of each kind, in BTF_KIND order; absent kinds left out. */
  kinds: Partial<Record<Kind, number>>;
}

/** Counts and sizes of `btf`'s own types. */
export function summarizeBtf(btf: Btf): BtfSummary {
  const counts = new Array<number>(KIND_BY_NUMBER.length).fill(0);
  for (let id = btf.firstId; id < btf.typeCount; id++) {
    const kind = btf.kindNumber(id);
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  const kinds: Partial<Record<Kind, number>> = {};
  counts.forEach((count, kind) => {
    if (count > 0) kinds[KIND_BY_NUMBER[kind]!] = count;
  });
  return {
    ownTypes: btf.typeCount - btf.firstId,
    totalTypes: btf.typeCount - 1,
    firstId: btf.firstId,
    split: btf.base !== undefined,
    bytes: btf.raw.byteLength,
    typeBytes: btf.header.typeLen,
    stringBytes: btf.header.strLen,
    byteOrder: btf.littleEndian ? 'little' : 'big',
    kinds,
  };
}
