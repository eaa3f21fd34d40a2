import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { essentialName } from '../core/names.js';
import { Btf } from './btf.js';
import { BtfBuilder } from './builder.js';
import { StringTable } from './strings.js';
import {
  allKinds,
  bpftoolDump,
  expectMatchesBpftool,
  expectParseError,
  HDR,
  haveBpftool,
  hostVmlinux,
  parseBpftoolJson,
  patched,
  readU32,
  VMLINUX,
} from './test-support/btf-fixtures.js';
import type { BtfType } from './types.js';
import { KIND } from './wire.js';

const vmlinux = hostVmlinux();
const bpftool = haveBpftool();

/** Absolute byte offset of a type's record in the blob it was parsed from. */
function recordAt(btf: Btf, id: number): number {
  return btf.recordBytes(id).byteOffset - btf.raw.byteOffset;
}

describe('Btf.parse decodes', () => {
  const { b, ids } = allKinds();
  const blob = b.encode();
  const btf = Btf.parse(blob);

  it('ints, with their encoding bits', () => {
    expect(btf.type(ids.int)).toEqual({
      kind: 'int',
      id: ids.int,
      name: 'unsigned int',
      kindFlag: false,
      size: 4,
      encoding: 0,
      bitsOffset: 0,
      bits: 32,
    });
    expect(btf.type(ids.char)).toMatchObject({ encoding: 3, bits: 8, size: 1 });
    expect(btf.type(ids.bool)).toMatchObject({ encoding: 4, bits: 1 });
  });

  it('modifiers, pointers, typedefs, arrays and type tags by referenced id', () => {
    expect(btf.type(ids.ptr)).toEqual({
      kind: 'ptr',
      id: ids.ptr,
      name: '',
      kindFlag: false,
      type: ids.char,
    });
    expect(btf.type(ids.typedef)).toMatchObject({ kind: 'typedef', name: 'u32', type: ids.int });
    expect(btf.type(ids.volatile)).toMatchObject({ kind: 'volatile', type: ids.typedef });
    expect(btf.type(ids.const)).toMatchObject({ kind: 'const', type: ids.volatile });
    expect(btf.type(ids.restrict)).toMatchObject({ kind: 'restrict', type: ids.ptr });
    expect(btf.type(ids.typeTag)).toMatchObject({ kind: 'type_tag', name: 'rcu', type: ids.struct });
    expect(btf.type(ids.arr)).toEqual({
      kind: 'array',
      id: ids.arr,
      name: '',
      kindFlag: false,
      type: ids.char,
      indexType: ids.int,
      nelems: 16,
    });
  });

  it('struct members: plain bit offsets without kind_flag, offset and bitfield size with it', () => {
    expect(btf.type(ids.struct)).toMatchObject({
      kind: 'struct',
      kindFlag: false,
      size: 8,
      members: [
        { name: 'x', type: ids.sint, bitOffset: 0, bitfieldSize: 0 },
        { name: 'y', type: ids.sint, bitOffset: 32, bitfieldSize: 0 },
      ],
    });
    // The raw member offset word of the kind_flag struct is bitfield_size << 24 | bit_offset.
    const raw = btf.recordBytes(ids.bitfields);
    expect(readU32(raw, 12 + 8)).toBe((3 << 24) | 0);
    expect(readU32(raw, 24 + 8)).toBe((29 << 24) | 3);
    expect(btf.type(ids.bitfields)).toMatchObject({
      kind: 'struct',
      kindFlag: true,
      members: [
        { name: 'a', bitOffset: 0, bitfieldSize: 3 },
        { name: 'b', bitOffset: 3, bitfieldSize: 29 },
        { name: 'whole', bitOffset: 0x123456, bitfieldSize: 0 },
      ],
    });
    expect(btf.type(ids.union)).toMatchObject({ kind: 'union', members: [{ name: 'p' }, { name: '' }] });
  });

  it('a word with the top bits set is a bit offset when the struct has no kind_flag', () => {
    const b2 = new BtfBuilder();
    const int = b2.int('int', 4);
    const s = b2.struct('big', 0x2000000, [{ name: 'far', type: int, bitOffset: 0x5000000 }]);
    expect(Btf.parse(b2.encode()).type(s)).toMatchObject({
      members: [{ bitOffset: 0x5000000, bitfieldSize: 0 }],
    });
  });

  it('enums: unsigned without kind_flag, signed with it; enum64 from hi and lo words', () => {
    expect(btf.type(ids.uenum)).toMatchObject({
      kind: 'enum',
      kindFlag: false,
      signed: false,
      size: 4,
      values: [
        { name: 'RED', value: 0n },
        { name: 'GREEN', value: 1n },
        { name: 'BIG', value: 0xfffffffen },
      ],
    });
    expect(btf.type(ids.senum)).toMatchObject({
      kindFlag: true,
      signed: true,
      values: [{ value: -1n }, { value: -0x80000000n }, { value: 0x7fffffffn }],
    });
    const raw = btf.recordBytes(ids.u64enum);
    // Second value: name_off, val_lo32, val_hi32.
    expect([readU32(raw, 12 + 12 + 4), readU32(raw, 12 + 12 + 8)]).toEqual([0x76543210, 0xfedcba98]);
    expect(btf.type(ids.u64enum)).toMatchObject({
      kind: 'enum64',
      signed: false,
      size: 8,
      values: [{ value: 1n }, { value: 0xfedcba9876543210n }],
    });
    expect(btf.type(ids.s64enum)).toMatchObject({
      signed: true,
      values: [{ value: -2n }, { value: -(1n << 63n) }],
    });
  });

  it('forward declarations: struct without kind_flag, union with it', () => {
    expect(btf.type(ids.fwdStruct)).toEqual({
      kind: 'fwd',
      id: ids.fwdStruct,
      name: 'later',
      kindFlag: false,
      fwdKind: 'struct',
    });
    expect(btf.type(ids.fwdUnion)).toMatchObject({ kindFlag: true, fwdKind: 'union' });
  });

  it('functions and variables with their linkage, prototypes with params', () => {
    expect(btf.type(ids.funcStatic)).toMatchObject({
      kind: 'func',
      type: ids.proto,
      linkage: 'static',
      linkageRaw: 0,
    });
    expect(btf.type(ids.funcGlobal)).toMatchObject({ linkage: 'global', linkageRaw: 1 });
    expect(btf.type(ids.funcExtern)).toMatchObject({ linkage: 'extern', linkageRaw: 2 });
    expect(btf.type(ids.proto)).toEqual({
      kind: 'func_proto',
      id: ids.proto,
      name: '',
      kindFlag: false,
      returnType: ids.sint,
      params: [
        { name: 'a', type: ids.int },
        { name: 'b', type: ids.ptr },
        { name: '', type: 0 },
      ],
    });
    expect(btf.type(ids.varStatic)).toMatchObject({
      kind: 'var',
      name: 'counter',
      linkage: 'static',
      linkageRaw: 0,
    });
    expect(btf.type(ids.varGlobal)).toMatchObject({ type: ids.const, linkage: 'global', linkageRaw: 1 });
  });

  it('datasecs, floats and decl tags (on the type, or on a member by index)', () => {
    expect(btf.type(ids.datasec)).toMatchObject({
      kind: 'datasec',
      name: '.data',
      size: 8,
      vars: [
        { type: ids.varStatic, offset: 0, size: 4 },
        { type: ids.varGlobal, offset: 4, size: 4 },
      ],
    });
    expect(btf.type(ids.float)).toMatchObject({ kind: 'float', name: 'double', size: 8 });
    expect(btf.type(ids.tagOnType)).toMatchObject({
      kind: 'decl_tag',
      type: ids.funcGlobal,
      componentIdx: -1,
    });
    expect(btf.type(ids.tagOnMember)).toMatchObject({ type: ids.struct, componentIdx: 1 });
  });

  it('void as id 0, and kind/name without decoding', () => {
    expect(btf.type(0)).toMatchObject({ kind: 'void', id: 0, name: '' });
    expect(btf.kind(ids.bitfields)).toBe('struct');
    expect(btf.name(ids.bitfields)).toBe('flags');
    expect(btf.kind(0)).toBe('void');
    expect(btf.typeCount).toBe(ids.typeTag + 1);
    expect(btf.has(ids.typeTag)).toBe(true);
    expect(btf.has(ids.typeTag + 1)).toBe(false);
  });

  it('the same types from a big-endian blob, and from an unaligned copy', () => {
    const be = Btf.parse(allKinds({ littleEndian: false }).b.encode());
    expect(be.littleEndian).toBe(false);
    const unaligned = new Uint8Array(blob.length + 1).subarray(1);
    unaligned.set(blob);
    const shifted = Btf.parse(unaligned);
    for (let id = 0; id < btf.typeCount; id++) {
      expect(be.type(id)).toEqual(btf.type(id));
      expect(shifted.type(id)).toEqual(btf.type(id));
    }
  });

  it('split BTF: ids and string offsets continue from the base; lookups see base then own types', () => {
    const base = btf;
    const sb = new BtfBuilder({ base });
    const own = sb.addString('only_in_module');
    const point = sb.struct('point', 12, [{ name: 'z', type: ids.sint, bitOffset: 64 }]);
    const p = sb.ptr(ids.struct);
    sb.typedef('only_in_module', p);
    const split = Btf.parse(sb.encode(), { base });
    expect(split.firstId).toBe(base.typeCount);
    expect(split.typeCount).toBe(base.typeCount + 3);
    expect(own).toBe(base.strings.end);
    expect(split.strings.get(own)).toBe('only_in_module');
    // Base ids and strings still resolve through the split BTF.
    expect(split.type(ids.struct)).toBe(base.type(ids.struct));
    expect(split.strings.get(base.strings.find('colour')!)).toBe('colour');
    expect(split.type(p)).toMatchObject({ kind: 'ptr', type: ids.struct });
    expect(split.findByName('point')).toEqual([ids.struct, point]);
    expect(split.findByNameKind('point', 'struct')).toBe(ids.struct);
    expect(split.findByName('only_in_module')).toEqual([p + 1]);
    expect([...split.ownIds()]).toEqual([point, p, p + 1]);
    expect(() => split.recordBytes(ids.struct)).toThrow(/base BTF/);
  });

  it('finds types by name: every id with the name, in id order', () => {
    expect(btf.findByName('point')).toEqual([ids.struct]);
    expect(btf.findByName('nope')).toEqual([]);
    expect(btf.findByName('')).toEqual([]);
    expect(btf.findByNameKind('int', 'int')).toBe(ids.sint);
    expect(btf.findByNameKind('int', 'struct')).toBeUndefined();
    expect(btf.findByNameKind('void', 'void')).toBe(0);
  });

  it('finds a name through any offset that holds it, also the tail of a longer string', () => {
    const b2 = new BtfBuilder();
    const long = b2.addString('xpoint');
    const first = b2.int('point', 4);
    const second = b2.int('other', 4);
    const third = b2.typedef('point', first);
    let blob2 = b2.encode();
    // Point the second INT's name at the "point" inside "xpoint": a second offset for that name.
    const at = 24 + 16;
    blob2 = patched(blob2, at, long + 1);
    const parsed = Btf.parse(blob2);
    expect(parsed.name(second)).toBe('point');
    // Enough distinct lookups to go through both the byte search and the hash index.
    for (let round = 0; round < 12; round++) {
      expect(parsed.findByName(round === 0 ? 'point' : `absent${round}`)).toEqual(
        round === 0 ? [first, second, third] : [],
      );
    }
    const again = Btf.parse(blob2);
    for (let round = 0; round < 12; round++) again.findByName(`absent${round}`);
    expect(again.findByName('point')).toEqual([first, second, third]);
    expect(again.findByName('xpoint')).toEqual([]);
  });

  it('finds types by name and kinds: findByName filtered, searched or hashed, base first', () => {
    const bit = (kind: number) => 1 << kind;
    const int = bit(KIND.INT);
    const typedef = bit(KIND.TYPEDEF);
    const b2 = new BtfBuilder();
    const first = b2.int('point', 4);
    const proto = b2.funcProto(first, []);
    const func = b2.func('point', proto);
    const second = b2.typedef('point', first);
    const blob2 = b2.encode();
    for (const hashed of [false, true]) {
      const parsed = Btf.parse(blob2);
      if (hashed) parsed.indexNames();
      expect(parsed.findByNameInKinds('point', int | typedef)).toEqual([first, second]);
      expect(parsed.findByNameInKinds('point', typedef)).toEqual([second]);
      expect(parsed.findByNameInKinds('point', bit(KIND.FUNC) | int)).toEqual([first, func]);
      expect(parsed.findByNameInKinds('point', bit(KIND.STRUCT))).toEqual([]);
      expect(parsed.findByNameInKinds('', 0xffffffff)).toEqual([]);
      const sb = new BtfBuilder({ base: parsed });
      const own = sb.typedef('point', first);
      const split = Btf.parse(sb.encode(), { base: parsed });
      if (hashed) split.indexNames();
      expect(split.findByNameInKinds('point', typedef)).toEqual([second, own]);
    }
  });
});

describe('Btf.parse rejects malformed BTF with a ParseError naming where', () => {
  const { b, ids } = allKinds();
  const blob = b.encode();
  const btf = Btf.parse(blob);
  const typeLen = readU32(blob, HDR.typeLen);
  const strStart = 24 + readU32(blob, HDR.strOff);
  const strLen = readU32(blob, HDR.strLen);
  const last = btf.typeCount - 1;
  const lastAt = recordAt(btf, last);

  it('a truncated header', () => {
    expect(expectParseError(() => Btf.parse(blob.subarray(0, 23)), { offset: 0 }).reason).toMatch(
      /truncated header/,
    );
    expectParseError(() => Btf.parse(new Uint8Array(0)), { offset: 0 });
  });

  it('a bad magic, a bad version', () => {
    // The message shows the magic's bytes in file order: 34 12.
    expect(
      expectParseError(() => Btf.parse(patched(blob, 0, 0x1234, true, 2)), { offset: 0 }).reason,
    ).toMatch(/bad magic 0x3412/);
    expect(expectParseError(() => Btf.parse(patched(blob, 2, 2, true, 1)), { offset: 2 }).reason).toMatch(
      /version 2/,
    );
  });

  it('a header length too small or past the data', () => {
    expect(expectParseError(() => Btf.parse(patched(blob, HDR.hdrLen, 20)), { offset: 4 }).reason).toMatch(
      /shorter than 24/,
    );
    expectParseError(() => Btf.parse(patched(blob, HDR.hdrLen, blob.length + 1)), { offset: 4 });
  });

  it('sections outside the data, or overlapping', () => {
    expect(
      expectParseError(() => Btf.parse(patched(blob, HDR.strLen, strLen + 1)), { offset: 16 }).reason,
    ).toMatch(/string section/);
    expectParseError(() => Btf.parse(patched(blob, HDR.strOff, 0xffffffff)), { offset: 16 });
    expectParseError(() => Btf.parse(patched(blob, HDR.typeLen, typeLen + 4)), { offset: 8 });
    expectParseError(() => Btf.parse(patched(blob, HDR.typeOff, 0xfffffffc)), { offset: 8 });
  });

  it('a misaligned type section', () => {
    // Two bytes of padding after the header, the type section at offset 2 (legal layout otherwise).
    const padded = new Uint8Array(blob.length + 2);
    padded.set(blob.subarray(0, 24));
    padded.set(blob.subarray(24), 26);
    let bad = patched(padded, HDR.typeOff, 2);
    bad = patched(bad, HDR.strOff, typeLen + 2);
    expect(expectParseError(() => Btf.parse(bad), { offset: 8 }).reason).toMatch(/aligned/);
  });

  it('a string section that does not end with NUL, or does not start with one, or is empty', () => {
    const end = strStart + strLen - 1;
    expect(
      expectParseError(() => Btf.parse(patched(blob, end, 0x41, true, 1)), { offset: end }).reason,
    ).toMatch(/end with NUL/);
    expect(
      expectParseError(() => Btf.parse(patched(blob, strStart, 0x41, true, 1)), { offset: strStart }).reason,
    ).toMatch(/start with an empty string/);
    expectParseError(() => Btf.parse(patched(blob, HDR.strLen, 0)), { offset: strStart });
  });

  it('a truncated record, and a record running past the type section', () => {
    // The last record cut inside its 12-byte header: 8 bytes left.
    const cut = lastAt - 24 + 8;
    const e = expectParseError(() => Btf.parse(patched(blob, HDR.typeLen, cut)), {
      offset: lastAt,
      typeId: last,
    });
    expect(e.reason).toMatch(/truncated type record \(8 bytes left/);
    // A struct's header fits but its members do not.
    const structAt = recordAt(btf, ids.bitfields);
    const short = structAt - 24 + 12 + 12;
    expect(
      expectParseError(() => Btf.parse(patched(blob, HDR.typeLen, short)), {
        offset: structAt,
        typeId: ids.bitfields,
      }).reason,
    ).toMatch(/runs past the end of the type section/);
    // Trailing bytes too few for a record (libbpf: "BTF types data is malformed").
    expectParseError(() => Btf.parse(patched(blob, HDR.typeLen, typeLen - 1)), {
      offset: lastAt,
      typeId: last,
    });
  });

  it('an unknown kind, also kind 0', () => {
    const at = recordAt(btf, ids.ptr);
    for (const kind of [0, 20, 31]) {
      const e = expectParseError(() => Btf.parse(patched(blob, at + 4, kind << 24)), {
        offset: at,
        typeId: ids.ptr,
      });
      expect(e.reason).toBe(`unknown kind ${kind}`);
    }
  });

  it('a string offset out of range, in a type name or a member name', () => {
    const at = recordAt(btf, ids.struct);
    const e = expectParseError(() => Btf.parse(patched(blob, at, strLen)), {
      offset: at,
      typeId: ids.struct,
    });
    expect(e.reason).toMatch(`string offset ${strLen} out of range`);
    // The second member's name_off.
    expectParseError(() => Btf.parse(patched(blob, at + 12 + 12, 0x7fffffff)), {
      offset: at + 24,
      typeId: ids.struct,
    });
  });

  it('a referenced type id out of range', () => {
    const ptrAt = recordAt(btf, ids.ptr);
    const e = expectParseError(() => Btf.parse(patched(blob, ptrAt + 8, last + 1)), {
      offset: ptrAt + 8,
      typeId: ids.ptr,
    });
    expect(e.reason).toBe(`refers to type [${last + 1}], but the last type is [${last}]`);
    // A member's type, and a datasec var's type.
    const structAt = recordAt(btf, ids.struct);
    expectParseError(() => Btf.parse(patched(blob, structAt + 12 + 4, 1e6)), {
      offset: structAt + 16,
      typeId: ids.struct,
    });
    const secAt = recordAt(btf, ids.datasec);
    expectParseError(() => Btf.parse(patched(blob, secAt + 12 + 12, 0xffffffff)), {
      offset: secAt + 24,
      typeId: ids.datasec,
    });
  });

  it('a FUNC whose type is not a FUNC_PROTO', () => {
    const at = recordAt(btf, ids.funcGlobal);
    const e = expectParseError(() => Btf.parse(patched(blob, at + 8, ids.int)), {
      offset: at + 8,
      typeId: ids.funcGlobal,
    });
    expect(e.reason).toMatch(/a INT, not a FUNC_PROTO/);
    expectParseError(() => Btf.parse(patched(blob, at + 8, 0)), { offset: at + 8, typeId: ids.funcGlobal });
    // A FUNC referring forward to a non-prototype is caught after the scan.
    expectParseError(() => Btf.parse(patched(blob, at + 8, ids.typeTag)), { typeId: ids.funcGlobal });
  });

  it('INT sizes and bits the kernel rejects, and DECL_TAG component indices below -1', () => {
    const at = recordAt(btf, ids.int);
    expectParseError(() => Btf.parse(patched(blob, at + 8, 17)), { offset: at + 8, typeId: ids.int });
    expectParseError(() => Btf.parse(patched(blob, at + 12, 33)), { offset: at + 12, typeId: ids.int });
    const tagAt = recordAt(btf, ids.tagOnType);
    expectParseError(() => Btf.parse(patched(blob, tagAt + 12, -2)), {
      offset: tagAt + 12,
      typeId: ids.tagOnType,
    });
  });

  it('ids out of range asked of a parsed BTF', () => {
    for (const id of [btf.typeCount, -1, 1.5, Number.NaN]) {
      expectParseError(() => btf.type(id), { typeId: id });
      expectParseError(() => btf.name(id), { typeId: id });
      expectParseError(() => btf.kindNumber(id), { typeId: id });
    }
  });

  it('split BTF whose strings do not end with NUL, but accepts an empty string section', () => {
    const sb = new BtfBuilder({ base: btf });
    sb.ptr(ids.struct);
    const noStrings = sb.encode();
    expect(readU32(noStrings, HDR.strLen)).toBe(0);
    expect(Btf.parse(noStrings, { base: btf }).type(btf.typeCount)).toMatchObject({ kind: 'ptr' });
    sb.typedef('only_here', ids.struct);
    const withStrings = sb.encode();
    const end = withStrings.length - 1;
    expectParseError(() => Btf.parse(patched(withStrings, end, 0x41, true, 1), { base: btf }), {
      offset: end,
    });
  });
});

describe.runIf(vmlinux !== undefined)('the host kernel BTF', () => {
  const btf = Btf.parse(vmlinux!);

  it.runIf(bpftool)('decodes every type as bpftool does', () => {
    const dump = parseBpftoolJson(
      execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', VMLINUX], {
        maxBuffer: 1 << 30,
        encoding: 'utf8',
      }),
    );
    expect(expectMatchesBpftool(btf, dump)).toBeGreaterThan(1000);
  });

  it('finds by name exactly the ids a linear search over names finds', () => {
    const byName = new Map<string, number[]>();
    for (let id = 1; id < btf.typeCount; id++) {
      const name = btf.name(id);
      if (name === '') continue;
      const list = byName.get(name);
      if (list === undefined) byName.set(name, [id]);
      else list.push(id);
    }
    const names = [
      'task_struct',
      'int',
      'bpf_prog',
      'sk_buff',
      '__u32',
      'list_head',
      'no_such_type_anywhere',
    ];
    // Plus a spread of others, well past the few lookups answered by searching string bytes.
    const all = [...byName.keys()];
    for (let i = 0; i < all.length; i += Math.floor(all.length / 200)) names.push(all[i]!);
    for (const name of names) expect(btf.findByName(name), name).toEqual(byName.get(name) ?? []);
    expect(btf.findByNameKind('task_struct', 'struct')).toBe(byName.get('task_struct')![0]);
  });

  it('decodes the same from a big-endian copy', () => {
    const b = new BtfBuilder({ littleEndian: false });
    b.addAll(btf);
    const be = Btf.parse(b.encode());
    const key = (t: BtfType) => JSON.stringify(t, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
    for (let id = 1; id < btf.typeCount; id += 7) {
      if (key(be.type(id)) !== key(btf.type(id))) expect(be.type(id)).toEqual(btf.type(id));
    }
  });
});

describe.runIf(bpftool)('bpftool agrees', () => {
  it('on a big-endian blob', () => {
    const blob = allKinds({ littleEndian: false }).b.encode();
    expectMatchesBpftool(Btf.parse(blob), bpftoolDump(blob));
  });
});

describe('idsWithFlavoredNames', () => {
  // The rule is libbpf's (bpf_core_essential_name_len), which core/names.ts implements on JS
  // strings: a name is flavored when its essential name is shorter than itself.
  const flavored = (name: string) => essentialName(name) !== name;

  it('finds exactly the names with a flavor separator, by kind, in id order', () => {
    const b = new BtfBuilder();
    const int = b.int('int', 4);
    const names = [
      'foo___a',
      'foo____a',
      '___foo',
      'foo___',
      'a_b___c_d',
      'x___y___z',
      '_a___b',
      'plain',
      '__u64',
    ];
    const ids = names.map((n) => b.struct(n, 4, [{ name: 'v', type: int, bitOffset: 0 }]));
    const typedef = b.typedef('t___flavor', int);
    const func = b.func('f___flavor', b.funcProto(int, []));
    const btf = Btf.parse(b.encode());
    const structs = 1 << KIND.STRUCT;
    expect(btf.idsWithFlavoredNames(structs)).toEqual(ids.filter((_, i) => flavored(names[i]!)));
    expect(btf.idsWithFlavoredNames(structs)).toEqual([ids[0], ids[4], ids[5], ids[6]]);
    expect(btf.idsWithFlavoredNames(1 << KIND.TYPEDEF)).toEqual([typedef]);
    // FUNCs are left out of the index most lookups use; asked for, they are there.
    expect(btf.idsWithFlavoredNames(1 << KIND.FUNC)).toEqual([func]);
    expect(btf.idsWithFlavoredNames(structs | (1 << KIND.FUNC))).toEqual([
      ...[0, 4, 5, 6].map((i) => ids[i]),
      func,
    ]);
  });

  it('agrees with the essential-name rule on any name of underscores and letters', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a_]{1,9}$/), { minLength: 1, maxLength: 30 }), (names) => {
        const b = new BtfBuilder();
        const ids = names.map((n) => b.struct(n, 4, []));
        const btf = Btf.parse(b.encode());
        expect(btf.idsWithFlavoredNames(1 << KIND.STRUCT)).toEqual(ids.filter((_, i) => flavored(names[i]!)));
      }),
    );
  });

  it('sees names a split BTF takes from its base strings', () => {
    const b = new BtfBuilder();
    const int = b.int('int', 4);
    b.struct('holder', 4, [{ name: 'sk___old', type: int, bitOffset: 0 }]);
    const base = Btf.parse(b.encode());
    const sb = new BtfBuilder({ base });
    const own = sb.struct('sk___old', 4, []);
    const fresh = sb.struct('sk___new', 4, []);
    const split = Btf.parse(sb.encode(), { base });
    expect(split.recordBytes(own).length).toBeGreaterThan(0);
    expect(split.idsWithFlavoredNames(1 << KIND.STRUCT)).toEqual([own, fresh]);
  });
});

describe('StringTable.get on a large table', () => {
  // A large table decodes its first strings one at a time, then itself whole: the answers must be
  // the same on either side of the switch, for ASCII and for UTF-8 tables.
  for (const [label, word] of [
    ['ASCII', (i: number) => `name_${i}___v${i % 7}`],
    ['UTF-8', (i: number) => `nämé_${i}_\u{1F600}`],
  ] as const) {
    it(`answers every string the same before and after decoding whole (${label})`, () => {
      const words = Array.from({ length: 6000 }, (_, i) => word(i));
      const bytes = new TextEncoder().encode(`\0${words.join('\0')}\0`);
      expect(bytes.length).toBeGreaterThan(64 * 1024);
      const offsets: number[] = [];
      for (let i = 0, off = 1; i < words.length; off += Buffer.byteLength(words[i]!) + 1, i++)
        offsets.push(off);
      const table = new StringTable(bytes, undefined, 0);
      // Out of order and twice each: past 2048 distinct strings the table decodes itself whole.
      const order = offsets.map((_, i) => (i * 7919) % offsets.length);
      for (const round of [1, 2]) {
        for (const i of order) expect(table.get(offsets[i]!), `round ${round}, string ${i}`).toBe(words[i]);
      }
      // A tail of another string is a string too.
      expect(table.get(offsets[10]! + 5)).toBe(new TextDecoder().decode(Buffer.from(words[10]!).subarray(5)));
    });
  }
});
