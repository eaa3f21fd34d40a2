import { afterAll, describe, expect, it } from 'vitest';
import { parseBpfObject } from './object.js';
import { buildFixture, cleanFixtures, ERRNO, libbpfOpenLog } from './testdata/fixtures.js';

afterAll(cleanFixtures);

function externsObject() {
  const f = buildFixture('externs');
  return { ...f, obj: parseBpfObject(f.bytes, { path: f.path }) };
}

describe('externs of a clang-19 object', () => {
  it('are sorted, numbered and laid out in .kconfig as libbpf 1.7 logs them', async () => {
    const { path, obj } = externsObject();
    const log = await libbpfOpenLog(path);
    expect(obj.openErrors).toEqual([]);
    expect(log.lines).toContain(`collected ${obj.externs.length} externs total`);
    const theirs = log.lines.filter((l) => /^extern \((kcfg|ksym)\) #\d+: symbol/.test(l)).sort();
    const ours = obj.externs
      .map((e, i) =>
        e.kconfig !== undefined
          ? `extern (kcfg) #${i}: symbol ${e.symbolIndex}, off ${e.kconfig.dataOffset}, name ${e.name}`
          : `extern (ksym) #${i}: symbol ${e.symbolIndex}, name ${e.name}`,
      )
      .sort();
    expect(ours).toEqual(theirs);
    // The .kconfig map ends with the last Kconfig extern.
    const kconfig = obj.maps.find((m) => m.kind === 'kconfig');
    expect(log.lines).toContain(
      `map '${kconfig?.kernelName}' (global data): at sec_idx ${kconfig?.sectionIndex}, offset 0, flags ${kconfig?.mapFlags.toString(16)}.`,
    );
    expect(kconfig?.name).toBe('externs.kconfig');
    expect(kconfig?.valueSize).toBe(25 + 16);
  });

  it('are classified as the C source declares them', () => {
    const { obj } = externsObject();
    const by = (name: string) => obj.externs.find((e) => e.name === name)!;
    const kcfg = (name: string) => {
      const e = by(name);
      return [e.type, e.kconfig?.type, e.kconfig?.size, e.kconfig?.signed, e.kconfig?.source, e.weak];
    };
    expect(kcfg('LINUX_KERNEL_VERSION')).toEqual(['kconfig', 'int', 4, false, 'virtual', false]);
    expect(kcfg('CONFIG_HZ')).toEqual(['kconfig', 'int', 4, true, 'config', false]);
    expect(kcfg('CONFIG_BPF_SYSCALL')).toEqual(['kconfig', 'bool', 1, false, 'config', false]);
    expect(kcfg('CONFIG_BPF_JIT')).toEqual(['kconfig', 'tristate', 4, false, 'config', true]);
    expect(kcfg('CONFIG_DEFAULT_HOSTNAME')).toEqual(['kconfig', 'char_array', 16, false, 'config', true]);
    expect(kcfg('CONFIG_X86_ONE_CHAR')).toEqual(['kconfig', 'char', 1, true, 'config', true]);
    expect(kcfg('CONFIG_NR_SHORT')).toEqual(['kconfig', 'int', 2, false, 'config', true]);
    expect(kcfg('LINUX_HAS_BPF_COOKIE')).toEqual(['kconfig', 'bool', 1, false, 'virtual', false]);

    const ksym = (name: string) => {
      const e = by(name);
      return [e.type, e.btfKind, e.ksym?.typeless, e.ksym?.kfunc, e.weak];
    };
    expect(ksym('bpf_prog_active')).toEqual(['ksym', 'var', true, false, false]);
    expect(ksym('bpf_stats_enabled_key')).toEqual(['ksym', 'var', false, false, true]);
    expect(ksym('bpf_task_acquire')).toEqual(['ksym', 'func', false, true, false]);
    expect(ksym('bpf_task_release')).toEqual(['ksym', 'func', false, true, false]);
    expect(ksym('bpf_no_such_kfunc')).toEqual(['ksym', 'func', false, true, true]);
    // Each extern's BTF id is its VAR/FUNC; a typed ksym's type is the variable's type.
    for (const e of obj.externs) {
      expect(obj.btf!.name(e.btfId)).toBe(e.name);
      expect(obj.btf!.kind(e.btfId)).toBe(e.btfKind);
      expect(obj.elf.symbols()[e.symbolIndex]?.name).toBe(e.name);
    }
    expect(obj.btf!.type(by('bpf_stats_enabled_key').ksym!.typeId)).toMatchObject({
      kind: 'int',
      name: 'int',
    });
    expect(obj.btf!.kind(by('bpf_task_acquire').ksym!.typeId)).toBe('func_proto');
  });
});

const HEADER = `#define SEC(n) __attribute__((section(n), used))
#define __kconfig __attribute__((section(".kconfig")))
#define __ksym __attribute__((section(".ksyms")))
int out;
`;

/** Externs libbpf refuses at open, each with its warning. */
const BAD_EXTERNS: [string, string, string][] = [
  ['unknown-section', 'extern int foo_sym __attribute__((section(".foo")));', 'out = foo_sym;'],
  ['kconfig-func', 'extern int CONFIG_FN(void) __kconfig;', 'out = CONFIG_FN();'],
  [
    'kconfig-struct',
    'struct s { int a; }; extern struct s CONFIG_STRUCT __kconfig;',
    'out = CONFIG_STRUCT.a;',
  ],
  ['kconfig-int3', 'extern int CONFIG_INTS[3] __kconfig;', 'out = CONFIG_INTS[1];'],
  [
    'kconfig-pointer',
    'extern _Bool CONFIG_OK __kconfig; extern int *CONFIG_PTR __kconfig;',
    'out = CONFIG_OK + *CONFIG_PTR;',
  ],
];

describe('externs libbpf refuses', () => {
  it.each(BAD_EXTERNS)('%s: the first open error is libbpf’s', async (name, decl, use) => {
    const f = buildFixture(`extern-${name}`, {
      source: `${HEADER}${decl}\nSEC("socket") int p(void *ctx) { ${use} return 0; }\nchar LICENSE[] SEC("license") = "GPL";\n`,
    });
    const obj = parseBpfObject(f.bytes, { path: f.path });
    const log = await libbpfOpenLog(f.path);
    expect(log.stage).toBe('open');
    expect(obj.openErrors[0]?.message).toBe(log.error);
    expect(-ERRNO[obj.openErrors[0]!.errno]!).toBe(log.result);
  });

  it('a weak LINUX_* extern libbpf does not know stays zero; a strong one fails the load', () => {
    const f = buildFixture('extern-virtual', {
      source: `${HEADER}extern int LINUX_FUTURE __kconfig __attribute__((weak)); extern int LINUX_BOGUS __kconfig;
SEC("socket") int p(void *ctx) { out = LINUX_FUTURE + LINUX_BOGUS; return 0; }
char LICENSE[] SEC("license") = "GPL";`,
    });
    const obj = parseBpfObject(f.bytes);
    expect(obj.externs.map((e) => [e.name, e.kconfig?.source])).toEqual([
      ['LINUX_BOGUS', 'unrecognized'],
      ['LINUX_FUTURE', 'weak-zero'],
    ]);
  });
});
