import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorematrixError } from '../errors.js';
import type { LoadPlan, PlannedMap, PlannedObject, PlannedProgram } from './plan.js';
import { decodePlan, encodePlan, PLAN_MAGIC } from './plan-encoding.js';

const bytes = (...b: number[]) => new Uint8Array(b);

function samplePlan(): LoadPlan {
  return {
    version: 1,
    kernel: 'debian-bookworm-6.1',
    objects: [
      {
        name: 'build/cases/globals.bpf.o',
        btf: bytes(0x9f, 0xeb, 1, 0, 24, 0, 0, 0),
        maps: [
          {
            name: 'globals.rodata',
            type: 2,
            keySize: 4,
            valueSize: 4,
            maxEntries: 1,
            flags: 0x80,
            btfKeyTypeId: 0,
            btfValueTypeId: 7,
            initialValue: bytes(42, 0, 0, 0),
            freeze: true,
          },
          {
            name: 'inner',
            type: 2,
            keySize: 4,
            valueSize: 8,
            maxEntries: 4,
            flags: 0,
            numaNode: 1,
            mapExtra: 0xfedcba9876543210n,
            btfKeyTypeId: 1,
            btfValueTypeId: 2,
            freeze: false,
          },
          {
            name: 'outer',
            type: 12,
            keySize: 4,
            valueSize: 4,
            maxEntries: 2,
            flags: 0,
            btfKeyTypeId: 0,
            btfValueTypeId: 0,
            innerMap: 1,
            freeze: false,
            initialSlots: [{ key: 1, map: 1 }],
          },
          {
            name: 'jmp',
            type: 3,
            keySize: 4,
            valueSize: 4,
            maxEntries: 2,
            flags: 0,
            btfKeyTypeId: 0,
            btfValueTypeId: 0,
            freeze: false,
            initialSlots: [{ key: 0, program: 0 }],
            initialValue: new Uint8Array(0),
          },
        ],
        programs: [
          {
            name: 'handle_tp',
            section: 'tp/syscalls/sys_enter_write',
            type: 5,
            expectedAttachType: 0,
            attachBtfId: 0,
            flags: 0,
            license: 'Dual BSD/GPL',
            kernVersion: 0x060100,
            insns: new Uint8Array(32).fill(1),
            mapReferences: [
              { insn: 0, map: 0, kind: 'value', offset: 4 },
              { insn: 2, map: 2, kind: 'fd', offset: 0 },
            ],
            maps: [0, 2],
            funcInfo: { recordSize: 8, records: bytes(0, 0, 0, 0, 3, 0, 0, 0) },
            lineInfo: { recordSize: 16, records: new Uint8Array(32).fill(9) },
          },
          {
            name: 'ünïcode',
            section: 'fentry/do_unlinkat',
            type: 26,
            expectedAttachType: 24,
            attachBtfId: 12345,
            flags: 4,
            license: 'GPL',
            kernVersion: 0,
            insns: new Uint8Array(16),
            mapReferences: [],
            maps: [],
          },
        ],
      },
      { name: 'empty.o', maps: [], programs: [] },
    ],
  };
}

describe('plan encoding', () => {
  it('round-trips a plan with every optional field set and unset', () => {
    const plan = samplePlan();
    const encoded = encodePlan(plan);
    expect(new TextDecoder('latin1').decode(encoded.subarray(0, 8))).toBe(PLAN_MAGIC);
    expect(decodePlan(encoded)).toEqual(plan);
  });

  it('writes the documented header: magic, version, total size, and a CRC32 of the rest at the end', () => {
    const encoded = encodePlan({ version: 1, kernel: 'k', objects: [] });
    const view = new DataView(encoded.buffer);
    expect(view.getUint32(8, true)).toBe(1);
    expect(view.getUint32(12, true)).toBe(encoded.length);
    // str kernel: u32 length 1, 'k'; u32 object count 0
    expect([...encoded.subarray(16, 25)]).toEqual([1, 0, 0, 0, 0x6b, 0, 0, 0, 0]);
    expect(view.getUint32(encoded.length - 4, true)).toBe(crc32(encoded.subarray(0, encoded.length - 4)));
    expect(encoded.length).toBe(29);
  });

  it('refuses corrupted, truncated or foreign input', () => {
    const encoded = encodePlan(samplePlan());
    for (const at of [20, 100, encoded.length - 10]) {
      const bad = encoded.slice();
      bad[at]! ^= 0x40;
      expect(() => decodePlan(bad)).toThrow(/CRC32 mismatch/);
    }
    expect(() => decodePlan(encoded.subarray(0, encoded.length - 1))).toThrow(/total size/);
    const magic = encoded.slice();
    magic[0] = 0x41;
    expect(() => decodePlan(magic)).toThrow(/bad magic/);
    const version = encoded.slice();
    version[8] = 2;
    expect(() => decodePlan(version)).toThrow(/version 2/);
    expect(() => decodePlan(bytes(1, 2, 3))).toThrow(CorematrixError);
  });

  it('refuses plans the agent could not use', () => {
    const withMap = (change: Partial<PlannedMap>) => {
      const plan = samplePlan();
      Object.assign(plan.objects[0]!.maps[0]!, change);
      return plan;
    };
    const withProgram = (change: Partial<PlannedProgram>) => {
      const plan = samplePlan();
      Object.assign(plan.objects[0]!.programs[0]!, change);
      return plan;
    };
    expect(() => encodePlan(withMap({ name: 'a_map_name_too_long' }))).toThrow(/longer than 15 bytes/);
    expect(() => encodePlan(withMap({ innerMap: 9 }))).toThrow(/inner map 9 is out of range/);
    expect(() => encodePlan(withMap({ initialSlots: [{ key: 0 }] }))).toThrow(/exactly one/);
    expect(() => encodePlan(withMap({ initialSlots: [{ key: 0, program: 5 }] }))).toThrow(/out of range/);
    expect(() => encodePlan(withMap({ keySize: -1 }))).toThrow(/not a u32/);
    expect(() => encodePlan(withProgram({ insns: new Uint8Array(12) }))).toThrow(/multiple of 8/);
    expect(() =>
      encodePlan(withProgram({ mapReferences: [{ insn: 3, map: 0, kind: 'fd', offset: 0 }] })),
    ).toThrow(/not inside the program/);
    expect(() => encodePlan(withProgram({ maps: [4] }))).toThrow(/used map 4/);
    expect(() =>
      encodePlan(withProgram({ funcInfo: { recordSize: 8, records: new Uint8Array(12) } })),
    ).toThrow(/whole number/);
  });

  it('round-trips arbitrary plans', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const blob = fc.uint8Array({ maxLength: 40 });
    const insns = fc.integer({ min: 2, max: 6 }).map((n) => new Uint8Array(n * 8).fill(n));
    const object: fc.Arbitrary<PlannedObject> = fc
      .record({
        name: fc.string(),
        btf: fc.option(blob, { nil: undefined }),
        mapCount: fc.integer({ min: 1, max: 3 }),
        programs: fc.array(
          fc.record({
            name: fc.string(),
            section: fc.string(),
            type: u32,
            expectedAttachType: u32,
            attachBtfId: u32,
            flags: u32,
            license: fc.string(),
            kernVersion: u32,
            insns,
          }),
          { maxLength: 3 },
        ),
        map: fc.record({
          type: u32,
          keySize: u32,
          valueSize: u32,
          maxEntries: u32,
          flags: u32,
          btfKeyTypeId: u32,
          btfValueTypeId: u32,
          freeze: fc.boolean(),
          numaNode: fc.option(u32, { nil: undefined }),
          mapExtra: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }),
          initialValue: fc.option(blob, { nil: undefined }),
        }),
      })
      .map(({ name, btf, mapCount, programs, map }) => {
        const o: PlannedObject = {
          name,
          maps: Array.from({ length: mapCount }, (_, i) => {
            const m: PlannedMap = {
              name: `m${i}`,
              type: map.type,
              keySize: map.keySize,
              valueSize: map.valueSize,
              maxEntries: map.maxEntries,
              flags: map.flags,
              btfKeyTypeId: map.btfKeyTypeId,
              btfValueTypeId: map.btfValueTypeId,
              freeze: map.freeze,
            };
            if (map.numaNode !== undefined) m.numaNode = map.numaNode;
            if (map.mapExtra !== undefined) m.mapExtra = map.mapExtra;
            if (map.initialValue !== undefined) m.initialValue = map.initialValue;
            if (i > 0) m.innerMap = i - 1;
            return m;
          }),
          programs: programs.map((p, i) => ({
            ...p,
            mapReferences: [{ insn: 0, map: i % mapCount, kind: i % 2 ? 'fd' : 'value', offset: i }],
            maps: [i % mapCount],
          })),
        };
        if (btf !== undefined) o.btf = btf;
        return o;
      });
    fc.assert(
      fc.property(fc.string(), fc.array(object, { maxLength: 3 }), (kernel, objects) => {
        const plan: LoadPlan = { version: 1, kernel, objects };
        expect(decodePlan(encodePlan(plan))).toEqual(plan);
      }),
      { numRuns: 200 },
    );
  });
});
