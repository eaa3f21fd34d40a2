import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, internalMapName, objectNameFromPath } from './data.js';
import { formatObjectDump } from './dump.js';
import { parseBpfObject } from './object.js';
import { buildFixture, cleanFixtures, libbpfOpenLog } from './testdata/fixtures.js';

afterAll(cleanFixtures);

describe('internal map names (internal_map_name)', () => {
  it.each([
    // The examples of libbpf's own comment.
    ['my_object_name', '.rodata', 'my_objec.rodata'],
    ['my_object_name', '.bss', 'my_objec.bss'],
    ['my_object_name', '.kconfig', 'my_obje.kconfig'],
    ['my_object_name', '.rodata.abracadabra', '.rodata.abracad'],
    ['minimal', '.rodata', 'minimal.rodata'],
    ['minimal', '.data.custom', '.data.custom'],
    ['', '.data', '.data'],
    ['a-b', '.bss', 'a_b.bss'],
  ])('%s + %s → %s', (obj, real, expected) => expect(internalMapName(obj, real)).toBe(expected));

  it.each([
    ['/x/minimal.bpf.o', 'minimal'],
    ['bootstrap.o', 'bootstrap'],
    ['a_very_long_object_name.bpf.o', 'a_very_long_obj'],
    ['noext', 'noext'],
  ])('object name of %s is %s', (path, name) => expect(objectNameFromPath(path)).toBe(name));

  it('match libbpf for an object named at the 15-byte limit', async () => {
    const f = buildFixture('maps', { defines: ['NO_PIN'], outName: 'object_name_is_long' });
    const obj = parseBpfObject(f.bytes, { path: f.path });
    expect(obj.objectName).toBe('object_name_is_');
    const log = await libbpfOpenLog(f.path);
    const theirs = log.lines.flatMap((l) => /^map '([^']+)' \(global data\)/.exec(l)?.[1] ?? []);
    expect(obj.maps.filter((m) => m.data !== undefined).map((m) => m.kernelName)).toEqual(theirs);
    expect(theirs).toContain('object_n.rodata');
  });
});

describe('global data maps of maps.bpf.c', () => {
  const f = buildFixture('maps', { defines: ['NO_PIN'], outName: 'maps' });
  const obj = parseBpfObject(f.bytes, { path: f.path });
  const data = obj.maps.filter((m) => m.data !== undefined);

  it('one per non-empty data section, holding the section’s bytes as llvm-objcopy dumps them', () => {
    expect(data.map((m) => [m.realName, m.kind])).toEqual([
      ['.data', 'data'],
      ['.rodata', 'rodata'],
      ['.data.custom', 'data'],
      ['.rodata.tunables', 'rodata'],
      ['.bss', 'bss'],
    ]);
    for (const m of data) {
      const out = join(f.path, '..', `section-${m.realName}.bin`);
      if (m.kind !== 'bss') {
        execFileSync('llvm-objcopy-19', [
          `--dump-section=${m.realName}=${out}`,
          f.path,
          join(f.path, '..', 'scratch.o'),
        ]);
      }
      const bytes = m.kind === 'bss' ? undefined : new Uint8Array(readFileSync(out));
      expect(m.data!.initialBytes, m.realName).toEqual(bytes);
      expect(m.valueSize).toBe(bytes?.length ?? obj.elf.sectionHeader(m.realName)?.size);
    }
    const view = (name: string) => {
      const b = data.find((m) => m.realName === name)!.data!.initialBytes!;
      return new DataView(b.buffer, b.byteOffset, b.byteLength);
    };
    expect(view('.data').getBigUint64(0, true)).toBe(42n); // counter = 42
    expect(view('.rodata').getUint32(0, true)).toBe(1234); // target_pid
    expect(view('.data.custom').getUint32(0, true)).toBe(0xfeedf00d); // custom_word
    expect(view('.rodata.tunables').getBigUint64(0, true)).toBe(7n); // tuned
  });

  it('.rodata* are read-only and frozen; every map here has a global variable, so is mmapable', () => {
    for (const m of data) {
      const ro = m.kind === 'rodata';
      expect([m.data!.readonly, m.data!.frozen, m.data!.mmapable], m.realName).toEqual([ro, ro, true]);
      expect(m.mapFlags).toBe((ro ? BPF_F_RDONLY_PROG : 0) | BPF_F_MMAPABLE);
      expect(obj.btf!.type(m.valueTypeId)).toMatchObject({ kind: 'datasec', name: m.realName });
    }
  });

  it('a section of static or hidden variables only is not mmapable', async () => {
    const g = buildFixture('hidden-data', {
      source: `#define SEC(n) __attribute__((section(n), used))
static int counter SEC(".data.stat") = 1;
__attribute__((visibility("hidden"))) int secret SEC(".data.hid") = 2;
int shown = 3;
SEC("socket") int p(void *ctx) { return counter++ + secret++ + shown++; }
char LICENSE[] SEC("license") = "GPL";`,
    });
    const o = parseBpfObject(g.bytes, { path: g.path });
    const log = await libbpfOpenLog(g.path);
    const flags = Object.fromEntries(
      log.lines.flatMap((l) => {
        const m = /^map '([^']+)' \(global data\): .* flags ([0-9a-f]+)\.$/.exec(l);
        return m === null ? [] : [[m[1]!, Number.parseInt(m[2]!, 16)]];
      }),
    );
    expect(Object.fromEntries(o.maps.map((m) => [m.kernelName, m.mapFlags]))).toEqual(flags);
    expect(flags['.data.stat']).toBe(0);
    expect(flags['.data.hid']).toBe(0);
  });

  it('obj dump prints maps, externs, relocations and open errors', () => {
    const text = formatObjectDump(obj, 'maps.o');
    expect(text).toContain('maps (14):');
    expect(text).toContain('  #4 flows: btf BPF_MAP_TYPE_HASH key 12 [30] value 32 [35] max_entries 10240');
    expect(text).toContain('    inner outer.inner: BPF_MAP_TYPE_ARRAY key 4 value 4 max_entries 1');
    expect(text).toContain('    [2] = prog tail_b');
    expect(text).toMatch(/#12 \.rodata\.tunables \(kernel name '\.rodata\.tunable'\): rodata/);
    expect(text).toContain('  entry insn #9: subprog_addr loop_body');
    expect(text).toContain('open errors (0):');
    const e = buildFixture('externs');
    const ext = formatObjectDump(parseBpfObject(e.bytes, { path: e.path }), 'externs.o');
    expect(ext).toContain('  #2 CONFIG_HZ: kconfig int signed size 4 at +12 (config), strong');
    expect(ext).toMatch(/#9 bpf_no_such_kfunc: kfunc, weak, func \[\d+\]/);
    expect(ext).toMatch(/bpf_prog_active: ksym typeless, strong/);
  });
});
