import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBpfObject } from './object.js';
import { buildFixture, cleanFixtures, ERRNO, libbpfOpenLog } from './testdata/fixtures.js';

afterAll(cleanFixtures);

/** llvm-readelf's relocations: section → [offset, symbol value, symbol name]. */
function readelfRelocs(path: string): Map<string, [number, string][]> {
  const text = execFileSync('llvm-readelf-19', ['-r', '--wide', path], { encoding: 'utf8' });
  const out = new Map<string, [number, string][]>();
  let current: [number, string][] | undefined;
  for (const line of text.split('\n')) {
    const head = /^Relocation section '([^']+)'/.exec(line);
    if (head !== null) {
      current = [];
      out.set(head[1]!, current);
      continue;
    }
    const m = /^([0-9a-f]{16})\s+[0-9a-f]{16}\s+R_BPF_\w+\s+[0-9a-f]{16}\s+(\S+)/.exec(line);
    if (m !== null && current !== undefined) current.push([Number.parseInt(m[1]!, 16), m[2]!]);
  }
  return out;
}

describe.each(['maps', 'externs'])('program relocations of %s.bpf.c', (fixture) => {
  const f = buildFixture(fixture, fixture === 'maps' ? { defines: ['NO_PIN'], outName: 'maps' } : {});
  const obj = parseBpfObject(f.bytes, { path: f.path });

  it('are every relocation llvm-readelf lists for the program sections, in order', () => {
    const theirs = readelfRelocs(f.path);
    const programSections = new Set(obj.programs.map((p) => p.section));
    const expected = [...theirs].filter(([sec]) => programSections.has(sec.replace(/^\.rel/, '')));
    const ours = new Map<string, [number, string][]>();
    for (const r of obj.insnRelocs) {
      const list = ours.get(r.relocSection) ?? [];
      list.push([r.sectionInsn * 8, r.symbol]);
      ours.set(r.relocSection, list);
    }
    expect([...ours]).toEqual(expected);
  });

  it('are classified, and point at maps and externs, as libbpf 1.7 logs them', async () => {
    const log = await libbpfOpenLog(f.path);
    expect(obj.openErrors).toEqual([]);
    const against = log.lines.filter((l) => /^sec '[^']+': relo #\d+: insn #\d+ against '/.test(l));
    expect(
      obj.insnRelocs.map(
        (r) => `sec '${r.relocSection}': relo #${r.index}: insn #${r.sectionInsn} against '${r.symbol}'`,
      ),
    ).toEqual(against);
    const found = log.lines.filter((l) => /^prog '[^']+': found (map|data map|extern) /.test(l));
    const ours = obj.insnRelocs.flatMap((r) => {
      const m = r.mapIndex === undefined ? undefined : obj.maps[r.mapIndex]!;
      switch (r.kind) {
        case 'map':
          return [
            `prog '${r.program}': found map ${r.mapIndex} (${m!.kernelName}, sec ${m!.sectionIndex}, off ${m!.sectionOffset}) for insn #${r.insn}`,
          ];
        case 'data':
          return [
            `prog '${r.program}': found data map ${r.mapIndex} (${m!.kernelName}, sec ${m!.sectionIndex}, off 0) for insn ${r.insn}`,
          ];
        case 'extern_ld64':
        case 'extern_call': {
          const e = obj.externs[r.externIndex!]!;
          return [
            `prog '${r.program}': found extern #${r.externIndex} '${e.name}' (sym ${e.symbolIndex}) for insn #${r.insn}`,
          ];
        }
        default:
          return [];
      }
    });
    expect(ours).toEqual(found);
    // Calls and callbacks: libbpf names the subprogram when it links it in (prepare).
    const linked = log.lines.flatMap((l) => {
      const m = /^prog '([^']+)': insn #(\d+) relocated, imm -?\d+ points to subprog '([^']+)'/.exec(l);
      return m === null ? [] : [`${m[1]} #${m[2]} → ${m[3]}`];
    });
    const calls = obj.insnRelocs.filter((r) => r.kind === 'call' || r.kind === 'subprog_addr');
    expect(calls.map((r) => `${r.program} #${r.insn} → ${r.target}`)).toEqual(linked);
  });
});

describe('relocation kinds of maps.bpf.c', () => {
  const f = buildFixture('maps', { defines: ['NO_PIN'], outName: 'maps' });
  const obj = parseBpfObject(f.bytes, { path: f.path });
  const kinds = obj.insnRelocs.map((r) => [r.program, r.kind, r.target, r.offset, r.variable]);

  it('a callback passed to bpf_loop is a subprogram address; calls name their callee', () => {
    expect(kinds).toContainEqual(['entry', 'subprog_addr', 'loop_body', undefined, undefined]);
    expect(kinds).toContainEqual(['entry', 'call', 'global_helper', undefined, undefined]);
    expect(kinds).toContainEqual(['entry', 'call', 'local_helper', undefined, undefined]);
  });

  it('global data references carry the map, offset and variable', () => {
    expect(kinds).toContainEqual(['global_helper', 'data', 'maps.rodata', 0, 'target_pid']);
    expect(kinds).toContainEqual(['local_helper', 'data', 'maps.rodata', 4, 'label']);
    // A static variable is reached through the section symbol plus the instruction's offset.
    expect(kinds).toContainEqual(['local_helper', 'data', '.data.custom', 8, 'hidden_total']);
    expect(kinds).toContainEqual(['entry', 'data', 'maps.bss', 0, 'hits']);
    expect(kinds).toContainEqual(['local_helper', 'data', '.rodata.tunables', 0, 'tuned']);
  });

  it('map references name the map', () => {
    expect(kinds.filter((k) => k[1] === 'map').map((k) => k[2])).toEqual([
      'flows',
      'outer',
      'sizes_only',
      'events',
      'jumps',
    ]);
  });
});

describe('relocations libbpf refuses', () => {
  it('a call into a program section other than .text', async () => {
    const src = `#define SEC(n) __attribute__((section(n), used))
int out;
SEC("socket") __attribute__((noinline)) int other(void *ctx) { return out; }
SEC("socket") int p(void *ctx) { return other(ctx) + 1; }
char LICENSE[] SEC("license") = "GPL";`;
    const f = buildFixture('call-into-program', { source: src });
    const obj = parseBpfObject(f.bytes, { path: f.path });
    const log = await libbpfOpenLog(f.path);
    expect(log.stage).toBe('open');
    expect(obj.openErrors[0]?.message).toBe(log.error);
    expect(-ERRNO[obj.openErrors[0]!.errno]!).toBe(log.result);
    expect(obj.insnRelocs.find((r) => r.error !== undefined)?.symbol).toBe('other');
  });
});

describe('byte order', () => {
  it('a big-endian build has the same maps, externs and relocations as the little-endian one', () => {
    const view = (target: 'bpfel' | 'bpfeb', name: string) => {
      const f = buildFixture(name, { target, defines: ['NO_PIN'], outName: `${name}-${target}` });
      const obj = parseBpfObject(f.bytes, { path: `${name}.o` });
      return {
        maps: obj.maps.map((m) => [m.name, m.typeName, m.keySize, m.valueSize, m.maxEntries, m.initialSlots]),
        externs: obj.externs.map((e) => [e.name, e.kconfig?.dataOffset, e.ksym?.typeless]),
        relocs: obj.insnRelocs.map((r) => [r.program, r.insn, r.kind, r.target, r.offset]),
        errors: obj.openErrors,
      };
    };
    for (const name of ['maps', 'externs']) {
      const le = view('bpfel', name);
      expect(le.errors).toEqual([]);
      expect(view('bpfeb', name)).toEqual(le);
    }
  });
});
