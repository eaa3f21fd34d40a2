import { describe, expect, it } from 'vitest';
import { isCorematrixError } from '../errors.js';
import { Btf } from './btf.js';
import { BtfBuilder } from './builder.js';
import {
  allKinds,
  bpftoolDump,
  expectMatchesBpftool,
  HDR,
  haveBpftool,
  hostModules,
  hostVmlinux,
  readU32,
} from './test-support/btf-fixtures.js';
import type { BtfType, NewType } from './types.js';

const vmlinux = hostVmlinux();
const bpftool = haveBpftool();

describe('BtfBuilder', () => {
  it('lays out header, types and strings as libbpf does', () => {
    const b = new BtfBuilder({ littleEndian: true });
    const int = b.int('int', 4, { signed: true });
    b.ptr(int);
    const blob = b.encode();
    // magic, version 1, flags 0, hdr_len 24, type section right after, strings right after it.
    expect([...blob.subarray(0, 4)]).toEqual([0x9f, 0xeb, 1, 0]);
    expect(readU32(blob, HDR.hdrLen)).toBe(24);
    expect(readU32(blob, HDR.typeOff)).toBe(0);
    expect(readU32(blob, HDR.typeLen)).toBe(16 + 12);
    expect(readU32(blob, HDR.strOff)).toBe(16 + 12);
    expect(readU32(blob, HDR.strLen)).toBe(5); // "\0int\0"
    expect([...blob.subarray(24 + 28)]).toEqual([0, 0x69, 0x6e, 0x74, 0]);
    // INT: name_off 1, info kind 1, size 4, then encoding SIGNED<<24 | nr_bits 32.
    expect([0, 4, 8, 12].map((o) => readU32(blob, 24 + o))).toEqual([1, 0x01000000, 4, 0x01000020]);
    // PTR: anonymous, kind 2, type 1.
    expect([0, 4, 8].map((o) => readU32(blob, 40 + o))).toEqual([0, 0x02000000, 1]);
  });

  it('writes big-endian blobs byte-swapped', () => {
    const le = new BtfBuilder({ littleEndian: true });
    const be = new BtfBuilder({ littleEndian: false });
    for (const b of [le, be]) b.int('long', 8, { signed: true });
    const [l, bb] = [le.encode(), be.encode()];
    expect([...bb.subarray(0, 4)]).toEqual([0xeb, 0x9f, 1, 0]);
    expect(readU32(bb, HDR.typeLen, false)).toBe(readU32(l, HDR.typeLen, true));
    expect(readU32(bb, 24 + 4, false)).toBe(0x01000000);
    expect(readU32(bb, 24 + 12, false)).toBe(0x01000040);
    // Strings are bytes: the same in both orders.
    expect(bb.subarray(24 + 16)).toEqual(l.subarray(24 + 16));
  });

  it('deduplicates strings, with the empty string at offset 0', () => {
    const b = new BtfBuilder();
    expect(b.addString('')).toBe(0);
    const a = b.addString('task_struct');
    expect(a).toBe(1);
    expect(b.addString('pid')).toBe(1 + 'task_struct'.length + 1);
    expect(b.addString('task_struct')).toBe(a);
    expect(b.addString('ünïcode')).toBe(b.addString('ünïcode'));
    const btf = Btf.parse(b.encode());
    expect(btf.strings.get(a)).toBe('task_struct');
    expect(btf.strings.get(b.addString('ünïcode'))).toBe('ünïcode');
  });

  it.runIf(bpftool)('writes what bpftool reads back as the types that went in, in both byte orders', () => {
    for (const littleEndian of [true, false]) {
      const { b, ids } = allKinds({ littleEndian });
      const blob = b.encode();
      const dump = bpftoolDump(blob);
      const byId = new Map(dump.map((t) => [t.id, t]));
      // What went in (spelled out in allKinds), as bpftool sees it.
      expect(byId.get(ids.bitfields)).toMatchObject({
        kind: 'STRUCT',
        name: 'flags',
        members: [
          { name: 'a', type_id: ids.int, bits_offset: 0, bitfield_size: 3 },
          { name: 'b', type_id: ids.int, bits_offset: 3, bitfield_size: 29 },
          { name: 'whole', type_id: ids.char, bits_offset: 0x123456 },
        ],
      });
      expect(byId.get(ids.senum)).toMatchObject({
        encoding: 'SIGNED',
        values: [
          { name: 'NEG', val: -1n },
          { name: 'MIN', val: -0x80000000n },
          { name: 'MAX', val: 0x7fffffffn },
        ],
      });
      // 0xfffffffe, which bpftool prints as the s32 it is stored in widened to u64 (bpftoolEnumValue).
      expect(byId.get(ids.uenum)).toMatchObject({
        encoding: 'UNSIGNED',
        values: [{}, {}, { val: 2n ** 64n - 2n }],
      });
      expect(byId.get(ids.u64enum)).toMatchObject({ values: [{ val: 1n }, { val: 0xfedcba9876543210n }] });
      expect(byId.get(ids.s64enum)).toMatchObject({
        encoding: 'SIGNED',
        values: [{ val: -2n }, { val: -(1n << 63n) }],
      });
      expect(byId.get(ids.fwdUnion)).toMatchObject({ kind: 'FWD', fwd_kind: 'union' });
      expect(byId.get(ids.funcExtern)).toMatchObject({ kind: 'FUNC', linkage: 'extern', type_id: ids.proto });
      expect(byId.get(ids.varStatic)).toMatchObject({ kind: 'VAR', linkage: 'static' });
      expect(byId.get(ids.tagOnMember)).toMatchObject({ kind: 'DECL_TAG', component_idx: 1 });
      expect(byId.get(ids.proto)).toMatchObject({
        ret_type_id: ids.sint,
        params: [
          { name: 'a', type_id: ids.int },
          { name: 'b', type_id: ids.ptr },
          { name: '(anon)', type_id: 0 },
        ],
      });
      // And every field of every type as our parser decodes it.
      expectMatchesBpftool(Btf.parse(blob), dump);
    }
  });

  it('builds split BTF: ids and string offsets continue the base, base strings are reused', () => {
    const base = Btf.parse(allKinds().b.encode());
    const b = new BtfBuilder({ base });
    expect(b.firstId).toBe(base.typeCount);
    expect(b.addString('')).toBe(0);
    expect(b.addString('point')).toBe(base.strings.find('point'));
    const own = b.addString('module_only');
    expect(own).toBe(base.strings.end);
    const int = base.findByNameKind('int', 'int')!;
    const s = b.struct('module_only', 4, [{ name: 'x', type: int, bitOffset: 0 }]);
    expect(s).toBe(base.typeCount);
    const blob = b.encode();
    // No string of its own but this one: the section is "module_only\0" without a leading NUL.
    expect(readU32(blob, HDR.strLen)).toBe('module_only'.length + 1);
    const split = Btf.parse(blob, { base });
    expect(split.type(s)).toMatchObject({
      kind: 'struct',
      name: 'module_only',
      members: [{ name: 'x', type: int }],
    });
  });

  it.runIf(bpftool)('writes split BTF that bpftool reads over its base', () => {
    const baseBlob = allKinds().b.encode();
    const base = Btf.parse(baseBlob);
    const b = new BtfBuilder({ base });
    const p = b.ptr(base.findByNameKind('point', 'struct')!);
    b.typedef('point_ptr', p);
    b.struct('mod', 8, [{ name: 'pp', type: p, bitOffset: 0 }]);
    const blob = b.encode();
    const dump = bpftoolDump(blob, baseBlob);
    // bpftool dumps the base's types too; compare the split part.
    const own = dump.filter((t) => t.id >= base.typeCount);
    expect(own.map((t) => t.name)).toEqual(['(anon)', 'point_ptr', 'mod']);
    expectMatchesBpftool(Btf.parse(blob, { base }), own);
  });

  it('re-encodes a parsed BTF byte for byte', () => {
    for (const littleEndian of [true, false]) {
      const blob = allKinds({ littleEndian }).b.encode();
      const copy = new BtfBuilder({ littleEndian });
      copy.addAll(Btf.parse(blob));
      expect(copy.encode()).toEqual(blob);
    }
  });

  it.runIf(vmlinux !== undefined)('round-trips every type of the host kernel BTF', () => {
    const btf = Btf.parse(vmlinux!);
    for (const littleEndian of [true, false]) {
      const b = new BtfBuilder({ littleEndian });
      b.addAll(btf);
      const copy = Btf.parse(b.encode());
      expect(copy.typeCount).toBe(btf.typeCount);
      expect(copy.littleEndian).toBe(littleEndian);
      expectSameTypes(copy, btf);
    }
  });

  it.runIf(vmlinux !== undefined)('round-trips module BTF over the kernel BTF', () => {
    const modules = hostModules(20);
    // This test is about split BTF; without module BTFs on the host, make one from kernel types.
    const base = Btf.parse(vmlinux!);
    const splits = modules.length > 0 ? modules.map((m) => m.bytes) : [syntheticModule(base)];
    for (const bytes of splits) {
      const mod = Btf.parse(bytes, { base });
      const b = new BtfBuilder({ base });
      b.addAll(mod);
      expectSameTypes(Btf.parse(b.encode(), { base }), mod);
    }
  });

  it('rejects types it cannot encode with a UsageError', () => {
    const b = new BtfBuilder();
    const int = b.int('int', 4);
    const bad: [string, NewType][] = [
      ['void', { kind: 'void', name: '', kindFlag: false }],
      [
        'bitfield without kind_flag',
        struct(false, [{ name: 'x', type: int, bitOffset: 0, bitfieldSize: 3 }]),
      ],
      [
        'kind_flag bit offset over 24 bits',
        struct(true, [{ name: 'x', type: int, bitOffset: 1 << 24, bitfieldSize: 0 }]),
      ],
      ['bitfield over 255', struct(true, [{ name: 'x', type: int, bitOffset: 0, bitfieldSize: 256 }])],
      ['negative offset', struct(false, [{ name: 'x', type: int, bitOffset: -8, bitfieldSize: 0 }])],
      ['unsigned enum below 0', { ...enumOf(false), values: [{ name: 'A', value: -1n }] }],
      ['signed enum over 2^31', { ...enumOf(true), values: [{ name: 'A', value: 1n << 31n }] }],
      ['signed but no kind_flag', { ...enumOf(true), kindFlag: false }],
      ['fwd union without kind_flag', { kind: 'fwd', name: 'f', kindFlag: false, fwdKind: 'union' }],
      [
        'linkage mismatch',
        { kind: 'func', name: 'f', kindFlag: false, type: 1, linkage: 'global', linkageRaw: 0 },
      ],
      ['NUL in a name', { kind: 'typedef', name: 'a\0b', kindFlag: false, type: int }],
      ['type id not u32', { kind: 'ptr', name: '', kindFlag: false, type: 2 ** 32 }],
      [
        'INT bits over 255',
        { kind: 'int', name: 'i', kindFlag: false, size: 4, encoding: 0, bitsOffset: 0, bits: 256 },
      ],
      [
        'decl_tag index below -1',
        { kind: 'decl_tag', name: 't', kindFlag: false, type: int, componentIdx: -2 },
      ],
    ];
    for (const [what, t] of bad) {
      let thrown: unknown;
      try {
        b.add(t);
      } catch (e) {
        thrown = e;
      }
      expect(isCorematrixError(thrown) && thrown.code === 'usage', what).toBe(true);
    }
    expect(() =>
      b.add({
        kind: 'struct',
        name: 's',
        kindFlag: false,
        size: 0,
        members: Array.from({ length: 0x10000 }, () => ({
          name: '',
          type: int,
          bitOffset: 0,
          bitfieldSize: 0,
        })),
      }),
    ).toThrow(/too many members/);
  });
});

function struct(
  kindFlag: boolean,
  members: NewType extends infer T ? (T extends { members: infer M } ? M : never) : never,
): NewType {
  return { kind: 'struct', name: 's', kindFlag, size: 4, members };
}

function enumOf(signed: boolean): NewType & { kind: 'enum' } {
  return { kind: 'enum', name: 'e', kindFlag: signed, size: 4, signed, values: [] };
}

/** Every own type of `copy` deep-equals the one with the same id in `original`. */
function expectSameTypes(copy: Btf, original: Btf): void {
  expect(copy.typeCount).toBe(original.typeCount);
  const key = (t: BtfType) => JSON.stringify(t, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
  for (let id = original.firstId; id < original.typeCount; id++) {
    const [a, b] = [copy.type(id), original.type(id)];
    if (key(a) !== key(b)) expect(a).toEqual(b);
  }
}

/** Split BTF over the kernel's: a few types that refer to kernel types by id, like a module's. */
function syntheticModule(base: Btf): Uint8Array {
  const b = new BtfBuilder({ base });
  const task = base.findByNameKind('task_struct', 'struct')!;
  const int = base.findByNameKind('int', 'int')!;
  const p = b.ptr(task);
  const s = b.struct('my_module_state', 16, [
    { name: 'task', type: p, bitOffset: 0 },
    { name: 'count', type: int, bitOffset: 64 },
    { name: 'flag', type: int, bitOffset: 96, bitfieldSize: 1 },
  ]);
  const proto = b.funcProto(int, [{ name: 'state', type: b.ptr(s) }]);
  b.func('my_module_init', proto, 'static');
  b.enum64('my_module_flags', { A: 1n << 40n });
  return b.encode();
}
