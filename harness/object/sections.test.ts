import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { attachTargetOf, findSectionDef, SECTION_DEFS, sectionMatches } from './sections.js';

describe('sectionMatches (libbpf sec_def_matches)', () => {
  test.each([
    ['kprobe+', 'kprobe', true],
    ['kprobe+', 'kprobe/do_unlinkat', true],
    ['kprobe+', 'kprobex', false],
    ['kprobe+', 'kprobe.multi/x', false],
    ['xdp', 'xdp', true],
    ['xdp', 'xdp/foo', false],
    ['tc/ingress', 'tc/ingress', true],
    ['tc', 'tc/ingress', false],
  ])('%s vs %s → %s', (pattern, section, expected) => {
    expect(sectionMatches(pattern, section)).toBe(expected);
  });
});

describe('findSectionDef', () => {
  test('finds what a search of the whole table in order finds (find_sec_def)', () => {
    const linear = (section: string) => SECTION_DEFS.find((d) => sectionMatches(d.pattern, section));
    const stems = SECTION_DEFS.map((d) => d.pattern.replace(/[+/]$/, ''));
    expect(stems.every((stem) => stem !== '')).toBe(true);
    const names = stems.flatMap((stem) => [stem, `${stem}/x`, `${stem}x`, `?${stem}`, stem.slice(0, -1)]);
    for (const name of ['', '/', '+', ...names]) expect(findSectionDef(name)).toBe(linear(name));
    fc.assert(
      fc.property(fc.constantFrom(...stems), fc.stringMatching(/^[./a-z+_]{0,6}$/), (stem, tail) => {
        expect(findSectionDef(stem + tail)).toBe(linear(stem + tail));
      }),
      { numRuns: 3000 },
    );
  });

  test.each([
    ['fentry/do_unlinkat', 'TRACING', 'TRACE_FENTRY'],
    ['fexit/do_unlinkat', 'TRACING', 'TRACE_FEXIT'],
    ['fmod_ret/security_x', 'TRACING', 'MODIFY_RETURN'],
    ['lsm/file_open', 'LSM', 'LSM_MAC'],
    ['lsm.s/file_open', 'LSM', 'LSM_MAC'],
    ['tp_btf/sched_switch', 'TRACING', 'TRACE_RAW_TP'],
    ['iter/task', 'TRACING', 'TRACE_ITER'],
    ['kprobe/do_unlinkat', 'KPROBE', ''],
    ['kretprobe/do_unlinkat', 'KPROBE', ''],
    ['ksyscall/execve', 'KPROBE', ''],
    ['uprobe', 'KPROBE', ''],
    ['usdt', 'KPROBE', ''],
    ['tracepoint/sched/sched_process_exec', 'TRACEPOINT', ''],
    ['tp/sched/sched_process_exit', 'TRACEPOINT', ''],
    ['raw_tp/sched_switch', 'RAW_TRACEPOINT', ''],
    ['xdp', 'XDP', 'XDP'],
    ['tc', 'SCHED_CLS', ''],
    ['tc/ingress', 'SCHED_CLS', 'TCX_INGRESS'],
    ['tcx/egress', 'SCHED_CLS', 'TCX_EGRESS'],
    ['cgroup/connect4', 'CGROUP_SOCK_ADDR', 'CGROUP_INET4_CONNECT'],
    ['cgroup_skb/ingress', 'CGROUP_SKB', 'CGROUP_INET_INGRESS'],
    ['struct_ops/dctcp_init', 'STRUCT_OPS', ''],
    ['syscall', 'SYSCALL', ''],
    ['perf_event', 'PERF_EVENT', ''],
    ['socket', 'SOCKET_FILTER', ''],
  ])('%s → %s / %s', (section, progType, attachType) => {
    const def = findSectionDef(section);
    expect(def?.progType).toBe(progType);
    expect(def?.attachType).toBe(attachType);
  });

  test('unknown sections have no definition', () => {
    expect(findSectionDef('.text')).toBeUndefined();
    expect(findSectionDef('license')).toBeUndefined();
    expect(findSectionDef('kprobex/foo')).toBeUndefined();
  });
});

describe('attachTargetOf', () => {
  const target = (section: string) => attachTargetOf(findSectionDef(section)!, section);
  test('BTF-attached programs name the BTF entity libbpf looks up', () => {
    expect(target('fentry/do_unlinkat')).toEqual({ kind: 'btf', name: 'do_unlinkat', btfKind: 'func' });
    expect(target('lsm/file_open')).toEqual({ kind: 'btf', name: 'bpf_lsm_file_open', btfKind: 'func' });
    expect(target('iter/task')).toEqual({ kind: 'btf', name: 'bpf_iter_task', btfKind: 'func' });
    expect(target('tp_btf/sched_switch')).toEqual({
      kind: 'btf',
      name: 'btf_trace_sched_switch',
      btfKind: 'typedef',
    });
  });
  test('probes and tracepoints', () => {
    expect(target('kprobe/do_unlinkat+0x10')).toEqual({ kind: 'kprobe', function: 'do_unlinkat' });
    expect(target('ksyscall/execve')).toEqual({ kind: 'ksyscall', syscall: 'execve' });
    expect(target('tp/sched/sched_process_exec')).toEqual({
      kind: 'tracepoint',
      category: 'sched',
      name: 'sched_process_exec',
    });
    expect(target('xdp')).toEqual({ kind: 'none' });
  });
});
