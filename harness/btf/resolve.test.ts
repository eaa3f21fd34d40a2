import { describe, expect, it } from 'vitest';
import { Btf } from './btf.js';
import { BtfBuilder } from './builder.js';
import { pointerSize, resolveSize, resolveType, skipModsAndTypedefs } from './resolve.js';
import { allKinds, expectParseError, hostVmlinux } from './test-support/btf-fixtures.js';

describe('resolveSize', () => {
  const { b, ids } = allKinds();
  const btf = Btf.parse(b.encode());

  it('follows typedefs, modifiers, vars and decl tags to a sized type', () => {
    expect(resolveSize(btf, ids.int)).toBe(4);
    expect(resolveSize(btf, ids.const)).toBe(4); // const -> volatile -> typedef -> int
    expect(resolveSize(btf, ids.varGlobal)).toBe(4);
    expect(resolveSize(btf, ids.tagOnMember)).toBe(8); // the struct it tags
    expect(resolveSize(btf, ids.typeTag)).toBe(8);
    expect(resolveSize(btf, ids.union)).toBe(8);
    expect(resolveSize(btf, ids.u64enum)).toBe(8);
    expect(resolveSize(btf, ids.datasec)).toBe(8);
    expect(resolveSize(btf, ids.float)).toBe(8);
  });

  it('multiplies array lengths, down to zero-length arrays', () => {
    const b2 = new BtfBuilder();
    const int = b2.int('int', 4);
    const row = b2.array(int, int, 3);
    const grid = b2.array(row, int, 5);
    const empty = b2.array(grid, int, 0);
    const parsed = Btf.parse(b2.encode());
    expect(resolveSize(parsed, row)).toBe(12);
    expect(resolveSize(parsed, grid)).toBe(60);
    expect(resolveSize(parsed, empty)).toBe(0);
  });

  it('gives pointers the size of long, or what it is told', () => {
    expect(resolveSize(btf, ids.ptr)).toBe(8);
    expect(resolveSize(btf, ids.ptr, { pointerSize: 4 })).toBe(4);
    const b32 = new BtfBuilder();
    b32.int('long int', 4, { signed: true });
    const p = b32.ptr(0);
    const arm32 = Btf.parse(b32.encode());
    expect(pointerSize(arm32)).toBe(4);
    expect(resolveSize(arm32, p)).toBe(4);
  });

  it('has no size for void, forward declarations, functions and prototypes', () => {
    for (const id of [0, ids.fwdStruct, ids.funcGlobal, ids.proto])
      expect(resolveSize(btf, id)).toBeUndefined();
  });

  it('reports a typedef loop and an array of itself as a loop, naming the id', () => {
    const b2 = new BtfBuilder();
    // [1] typedef a -> [2] typedef b -> [1]; [3] array of [3]; [4] const -> [1].
    b2.typedef('a', 2);
    b2.typedef('b', 1);
    b2.array(3, 3, 1);
    b2.const(1);
    // An array of itself with 2 elements doubles 32 times: libbpf says E2BIG before it says loop.
    b2.array(5, 5, 2);
    const parsed = Btf.parse(b2.encode());
    for (const id of [1, 2, 3, 4]) {
      expect(expectParseError(() => resolveSize(parsed, id), { typeId: id }).reason).toMatch(
        /loop in type chain/,
      );
    }
    expect(expectParseError(() => resolveSize(parsed, 5), { typeId: 5 }).reason).toMatch(/32 bits/);
  });

  it('reports sizes past 32 bits, as libbpf does (E2BIG)', () => {
    const b2 = new BtfBuilder();
    const big = b2.struct('big', 0x10000, []);
    const arr = b2.array(big, big, 0x10000);
    const ok = b2.array(big, big, 0xffff);
    const parsed = Btf.parse(b2.encode());
    expect(resolveSize(parsed, ok)).toBe(0xffff * 0x10000);
    expect(expectParseError(() => resolveSize(parsed, arr), { typeId: arr }).reason).toMatch(/32 bits/);
  });

  it('names an id out of range', () => {
    expectParseError(() => resolveSize(btf, btf.typeCount), { typeId: btf.typeCount });
  });
});

describe('skipModsAndTypedefs and resolveType', () => {
  const { b, ids } = allKinds();
  const btf = Btf.parse(b.encode());

  it('skip modifiers and typedefs (and, for resolveType, vars)', () => {
    expect(skipModsAndTypedefs(btf, ids.const)).toBe(ids.int);
    expect(skipModsAndTypedefs(btf, ids.typeTag)).toBe(ids.struct);
    expect(skipModsAndTypedefs(btf, ids.ptr)).toBe(ids.ptr);
    expect(skipModsAndTypedefs(btf, ids.varGlobal)).toBe(ids.varGlobal);
    expect(skipModsAndTypedefs(btf, 0)).toBe(0);
    expect(resolveType(btf, ids.varGlobal)).toBe(ids.int);
    expect(resolveType(btf, ids.restrict)).toBe(ids.ptr);
    expect(resolveType(btf, ids.struct)).toBe(ids.struct);
  });

  it('resolveType gives undefined for chains ending in void or a forward declaration', () => {
    const b2 = new BtfBuilder();
    const fwd = b2.fwd('opaque');
    const t = b2.typedef('opaque_t', fwd);
    const v = b2.const(0);
    const parsed = Btf.parse(b2.encode());
    expect(resolveType(parsed, t)).toBeUndefined();
    expect(resolveType(parsed, v)).toBeUndefined();
    expect(resolveType(parsed, 0)).toBeUndefined();
  });

  it('report loops, naming the id they started from', () => {
    const b2 = new BtfBuilder();
    b2.typedef('a', 2);
    b2.volatile(1);
    b2.const(1);
    const parsed = Btf.parse(b2.encode());
    for (const id of [1, 2, 3]) {
      expectParseError(() => skipModsAndTypedefs(parsed, id), { typeId: id });
      expectParseError(() => resolveType(parsed, id), { typeId: id });
    }
  });

  it('follow a chain longer than libbpf resolves, when it is not a loop', () => {
    const b2 = new BtfBuilder();
    const int = b2.int('int', 4);
    let top = int;
    for (let i = 0; i < 40; i++) top = b2.const(top);
    const parsed = Btf.parse(b2.encode());
    expect(skipModsAndTypedefs(parsed, top)).toBe(int);
    // libbpf's btf__resolve_type and btf__resolve_size stop at 32 steps: so do these.
    expectParseError(() => resolveType(parsed, top), { typeId: top });
    expectParseError(() => resolveSize(parsed, top), { typeId: top });
  });
});

const vmlinux = hostVmlinux();

describe.runIf(vmlinux !== undefined)('on the host kernel BTF', () => {
  it('resolves every type without a loop, and knows task_struct and pointer sizes', () => {
    const btf = Btf.parse(vmlinux!);
    expect(pointerSize(btf)).toBe(8);
    let sized = 0;
    for (let id = 1; id < btf.typeCount; id++) {
      if (resolveSize(btf, id) !== undefined) sized++;
      skipModsAndTypedefs(btf, id);
    }
    expect(sized).toBeGreaterThan(btf.typeCount / 4);
    const task = btf.findByNameKind('task_struct', 'struct')!;
    expect(resolveSize(btf, task)).toBe((btf.type(task) as { size: number }).size);
  });
});
