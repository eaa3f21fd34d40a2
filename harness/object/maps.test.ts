import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import type { BpfMap } from './maps.js';
import { adjustRingbufSize, mapTypeName } from './maps.js';
import { parseBpfObject } from './object.js';
import { buildFixture, cleanFixtures, ERRNO, libbpfOpenLog } from './testdata/fixtures.js';

afterAll(cleanFixtures);

/** The object built without pinning (the oracle creates the maps; a pinned one would persist). */
function mapsObject(defines: string[] = ['NO_PIN']) {
  const f = buildFixture('maps', { defines, outName: defines.length === 0 ? 'maps-pinned' : 'maps' });
  return { ...f, obj: parseBpfObject(f.bytes, { path: f.path }) };
}

/** The lines libbpf's fill_map_from_def and init_internal_map log for a map, rebuilt from ours. */
function expectedLogLines(m: BpfMap): string[] {
  if (m.data !== undefined) {
    return [
      `map '${m.kernelName}' (global data): at sec_idx ${m.sectionIndex}, offset 0, flags ${m.mapFlags.toString(16)}.`,
    ];
  }
  const lines = [`map '${m.name}': at sec_idx ${m.sectionIndex}, offset ${m.sectionOffset}.`];
  const def = (name: string, d: Omit<BpfMap, 'name'> | NonNullable<BpfMap['inner']>) => {
    const has = (p: string) => d.parts.includes(p);
    if (has('type')) lines.push(`map '${name}': found type = ${d.type}.`);
    if (has('key')) lines.push(`map '${name}': found key [${d.keyTypeId}], sz = ${d.keySize}.`);
    else if (has('key_size')) lines.push(`map '${name}': found key_size = ${d.keySize}.`);
    if (has('value')) lines.push(`map '${name}': found value [${d.valueTypeId}], sz = ${d.valueSize}.`);
    else if (has('value_size')) lines.push(`map '${name}': found value_size = ${d.valueSize}.`);
    if (has('max_entries')) lines.push(`map '${name}': found max_entries = ${d.maxEntries}.`);
    if (has('map_flags')) lines.push(`map '${name}': found map_flags = 0x${d.mapFlags.toString(16)}.`);
    if (has('map_extra')) lines.push(`map '${name}': found map_extra = 0x${d.mapExtra.toString(16)}.`);
    if (has('pinning')) lines.push(`map '${name}': found pinning = ${d.pinning === 'by_name' ? 1 : 0}.`);
    if (has('numa_node')) lines.push(`map '${name}': found numa_node = ${d.numaNode}.`);
    if (has('inner_map')) lines.push(`map '${name}': found inner map definition.`);
  };
  def(m.name, m);
  if (m.inner !== undefined) def(m.inner.name, m.inner);
  return lines;
}

const MAP_LINE = /^map '[^']+'(?: \(global data\))?: (?:at sec_idx|found )/;
const SLOT_LINE = /^\.maps relo #\d+: map '([^']+)' slot \[(\d+)\] points to (map|prog) '([^']+)'$/;

describe('BTF-defined and global data maps of a clang-19 object', () => {
  it('are what libbpf 1.7 logs while opening it, map by map and member by member', async () => {
    const { path, obj } = mapsObject();
    const log = await libbpfOpenLog(path);
    expect(obj.openErrors).toEqual([]);
    expect(obj.maps.flatMap(expectedLogLines)).toEqual(log.lines.filter((l) => MAP_LINE.test(l)));
    const slots = log.lines.flatMap((l) => {
      const m = SLOT_LINE.exec(l);
      return m === null ? [] : [`${m[1]}[${m[2]}] = ${m[3]} ${m[4]}`];
    });
    expect(
      obj.maps.flatMap((m) =>
        (m.initialSlots ?? []).map((s) => `${m.name}[${s.slot}] = ${s.kind} ${s.name}`),
      ),
    ).toEqual(slots);
    expect(slots.length).toBe(4);
  });

  it('names maps as bpftool gen skeleton does (variable names; internal maps after the object)', () => {
    const { path, obj } = mapsObject();
    const skel = execFileSync('bpftool', ['gen', 'skeleton', path, 'name', 'maps'], { encoding: 'utf8' });
    const names = [...skel.matchAll(/s->maps\[(\d+)\]\.name = "([^"]+)";/g)].map((m) => m[2]);
    expect(obj.maps.map((m) => m.name)).toEqual(names);
    expect(names).toContain('maps.rodata');
    expect(names).toContain('.rodata.tunables');
    // The kernel only keeps 15 bytes: libbpf creates the custom section's map truncated.
    expect(obj.maps.find((m) => m.name === '.rodata.tunables')?.kernelName).toBe('.rodata.tunable');
  });

  it('puts each definition at its symbol in .maps, with the C source’s values', () => {
    const { path, obj } = mapsObject([]);
    const symbols = execFileSync('llvm-readelf-19', ['-s', '--wide', path], { encoding: 'utf8' });
    const values = new Map<string, number>();
    for (const m of symbols.matchAll(
      /^\s*\d+: ([0-9a-f]{16})\s+\d+\s+OBJECT\s+GLOBAL\s+\S+\s+\d+\s+(\w+)$/gm,
    )) {
      values.set(m[2]!, Number.parseInt(m[1]!, 16));
    }
    const btfMaps = obj.maps.filter((m) => m.kind === 'btf');
    expect(btfMaps.map((m) => m.name)).toEqual([
      'inner_a',
      'inner_b',
      'outer',
      'jumps',
      'flows',
      'sizes_only',
      'events',
      'bloom',
      'outer_hash',
    ]);
    for (const m of btfMaps) expect(m.sectionOffset, m.name).toBe(values.get(m.name));
    const by = (name: string) => obj.maps.find((m) => m.name === name)!;

    const events = by('events');
    expect([events.typeName, events.maxEntries, events.keySize, events.valueSize]).toEqual([
      'BPF_MAP_TYPE_RINGBUF',
      256 * 1024,
      0,
      0,
    ]);
    const flows = by('flows');
    expect(flows.typeName).toBe('BPF_MAP_TYPE_HASH');
    expect(obj.btf!.name(flows.keyTypeId)).toBe('flow_key');
    expect(obj.btf!.name(flows.valueTypeId)).toBe('event');
    expect([flows.keySize, flows.valueSize, flows.maxEntries, flows.mapFlags, flows.pinning]).toEqual([
      12,
      32,
      10240,
      1,
      'by_name',
    ]);
    const sizes = by('sizes_only');
    expect([sizes.keySize, sizes.valueSize, sizes.keyTypeId, sizes.valueTypeId, sizes.numaNode]).toEqual([
      4, 24, 0, 0, 1,
    ]);
    expect(by('bloom').mapExtra).toBe(3n);

    const outer = by('outer');
    expect(outer.typeName).toBe('BPF_MAP_TYPE_ARRAY_OF_MAPS');
    expect(outer.valueSize).toBe(4);
    expect(outer.inner).toMatchObject({ name: 'outer.inner', typeName: 'BPF_MAP_TYPE_ARRAY', maxEntries: 1 });
    expect(outer.initialSlots).toEqual([
      { slot: 0, kind: 'map', name: 'inner_a' },
      { slot: 2, kind: 'map', name: 'inner_b' },
    ]);
    expect(by('outer_hash').inner).toMatchObject({ name: 'outer_hash.inner', typeName: 'BPF_MAP_TYPE_HASH' });
    expect(by('outer_hash').inner?.keySize).toBe(8);
    expect(by('jumps').initialSlots).toEqual([
      { slot: 0, kind: 'prog', name: 'tail_a' },
      { slot: 2, kind: 'prog', name: 'tail_b' },
    ]);
  });
});

describe('adjustRingbufSize (adjust_ringbuf_sz, 4 KiB pages)', () => {
  it.each([
    [0, 0],
    [4096, 4096],
    [8192, 8192],
    [12288, 16384],
    [1000, 4096],
    [256 * 1024, 256 * 1024],
    [256 * 1024 + 1, 512 * 1024],
  ])('%d → %d', (declared, created) => expect(adjustRingbufSize(declared)).toBe(created));

  it('applies to ring buffers only', () => {
    const f = buildFixture('ringbuf-odd', {
      source: `#define SEC(n) __attribute__((section(n), used))
struct { int (*type)[27]; int (*max_entries)[5000]; } rb SEC(".maps");
struct { int (*type)[2]; int (*max_entries)[5000]; int *key; int *value; } arr SEC(".maps");
char LICENSE[] SEC("license") = "GPL";`,
    });
    const obj = parseBpfObject(f.bytes);
    expect(obj.maps.map((m) => [m.name, m.maxEntries, m.createMaxEntries])).toEqual([
      ['rb', 5000, 8192],
      ['arr', 5000, 5000],
    ]);
    expect(mapTypeName(99)).toMatch(/unknown/);
  });
});

const HEADER = `#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name
#define __array(name, val) typeof(val) *name[]
`;

/** Map definitions libbpf refuses, each with the warning it prints. */
const BAD_MAPS: [string, string][] = [
  [
    'key-size-conflict',
    'struct { __uint(type, 1); __uint(max_entries, 4); __uint(key_size, 8); __type(key, int); __type(value, int); } bad SEC(".maps");',
  ],
  [
    'value-size-conflict',
    'struct { __uint(type, 2); __uint(max_entries, 4); __type(key, int); __type(value, long); __uint(value_size, 4); } bad SEC(".maps");',
  ],
  [
    'unknown-field',
    'struct { __uint(type, 2); __uint(max_entries, 4); __uint(frobnicate, 1); } bad SEC(".maps");',
  ],
  ['no-type', 'struct { __uint(max_entries, 4); __type(key, int); __type(value, int); } bad SEC(".maps");'],
  ['type-not-pointer', 'struct { int type; __uint(max_entries, 4); } bad SEC(".maps");'],
  ['pointer-not-array', 'struct { int *type; __uint(max_entries, 4); } bad SEC(".maps");'],
  ['key-not-pointer', 'struct { __uint(type, 1); __uint(max_entries, 4); int key; } bad SEC(".maps");'],
  ['key-void', 'struct { __uint(type, 1); __uint(max_entries, 4); void *key; } bad SEC(".maps");'],
  [
    'static-map',
    'static struct { __uint(type, 2); __uint(max_entries, 4); } bad SEC(".maps"); void *use(void) { return &bad; }',
  ],
  [
    'values-not-map-in-map',
    'struct { __uint(type, 1); __uint(max_entries, 4); __type(key, int); __array(values, int (void *)); } bad SEC(".maps");',
  ],
  [
    'values-not-last',
    'struct { __uint(type, 3); int (*values[0])(void *); __uint(max_entries, 4); } bad SEC(".maps");',
  ],
  [
    'inner-values',
    'struct { __uint(type, 12); __uint(max_entries, 4); __array(values, struct { __uint(type, 12); __array(values, struct { __uint(type, 2); }); }); } bad SEC(".maps");',
  ],
  [
    'inner-pinned',
    'struct { __uint(type, 12); __uint(max_entries, 4); __array(values, struct { __uint(type, 2); __uint(pinning, 1); }); } bad SEC(".maps");',
  ],
  [
    'bad-pinning',
    'struct { __uint(type, 2); __uint(max_entries, 4); __uint(pinning, 2); } bad SEC(".maps");',
  ],
  [
    'prog-array-of-structs',
    'struct { __uint(type, 3); __uint(max_entries, 4); __array(values, struct { int x; }); } bad SEC(".maps");',
  ],
  ['not-a-struct', 'int bad SEC(".maps");'],
  [
    'map-extra-enum',
    'struct { __uint(type, 30); __uint(max_entries, 4); __type(value, int); enum { A = 1, B = 2 } map_extra; } bad SEC(".maps");',
  ],
];

describe('map definitions libbpf refuses', () => {
  it.each(BAD_MAPS)('%s: the first open error is libbpf’s', async (name, body) => {
    const f = buildFixture(name, { source: `${HEADER}${body}\nchar LICENSE[] SEC("license") = "GPL";\n` });
    const obj = parseBpfObject(f.bytes, { path: f.path });
    const log = await libbpfOpenLog(f.path);
    expect(log.stage).toBe('open');
    const first = obj.openErrors[0];
    expect(first, 'an open error').toBeDefined();
    expect(first!.message).toBe(log.error);
    expect(-ERRNO[first!.errno]!).toBe(log.result);
    // The map is listed anyway, marked where it failed, when libbpf had started it.
    const bad = obj.maps.find((m) => m.name === 'bad');
    if (bad !== undefined) expect(bad.error).toEqual(first);
  });

  it('a legacy "maps" section: read as libbpf v0.x did, refused by libbpf 1.x', async () => {
    const f = buildFixture('legacy');
    const obj = parseBpfObject(f.bytes, { path: f.path });
    const log = await libbpfOpenLog(f.path);
    expect(obj.openErrors[0]?.message).toBe(log.error);
    expect(-ERRNO[obj.openErrors[0]!.errno]!).toBe(log.result);
    expect(
      obj.maps.map((m) => [m.name, m.kind, m.typeName, m.keySize, m.valueSize, m.maxEntries, m.mapFlags]),
    ).toEqual([
      ['legacy_counts', 'legacy', 'BPF_MAP_TYPE_HASH', 4, 8, 128, 1],
      ['legacy_array', 'legacy', 'BPF_MAP_TYPE_ARRAY', 4, 16, 4, 0],
    ]);
    // The program's references resolve to the legacy definitions.
    expect(obj.insnRelocs.map((r) => [r.kind, r.target])).toEqual([
      ['map', 'legacy_counts'],
      ['map', 'legacy_array'],
    ]);
  });
});
