/**
 * The cell: causes in plain words from verifier logs (unit), and faults of a real boot turned into
 * infra_error for every program with the console's tail: an agent killed mid-run, an unusable
 * plan, a timeout (after the pool's retry). QEMU-level faults are tested in run.test.ts.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CachedKernel, defaultDebianKernels } from '../test-support/kernels.js';
import {
  AGENT_BIN,
  type CellKernelFiles,
  errnoName,
  firstLines,
  loadOnKernel,
  rejectionCause,
  withVmFacts,
} from './cell.js';
import type { PlannedObject } from './plan.js';
import { VmPool } from './pool.js';
import { BUSYBOX, busyboxRun } from './run.js';

const repo = path.join(import.meta.dirname, '..', '..');
const casesDir = path.join(repo, 'build', 'cases');
const objects = existsSync(casesDir)
  ? readdirSync(casesDir)
      .filter((f) => f.endsWith('.bpf.o'))
      .sort()
      .map((f) => path.join('build', 'cases', f))
  : [];

describe('causes in plain words', () => {
  const result = (log: string, extra: object = {}) => ({
    object: 'o',
    program: 'p',
    verdict: 'rejected' as const,
    stage: 'prog' as const,
    errno: 22,
    log,
    ...extra,
  });
  it('an unknown helper', () => {
    const log = '0: R1=ctx() R10=fp0\n0: (85) call bpf_xyz#211\nunknown func bpf_xyz#211\nprocessed 1 insns';
    expect(rejectionCause(result(log), undefined, undefined)).toMatch(/^unknown func bpf_xyz#211: /);
  });
  it("the verifier's own complaint, past instruction dumps and register states", () => {
    const log = [
      '0: R1=ctx() R10=fp0',
      '5: (61) r0 = *(u32 *)(r0 +64)',
      'invalid access to map value, value_size=8 off=64 size=4',
      'R0 min value is outside of the allowed memory range',
      'processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0',
    ].join('\n');
    expect(rejectionCause(result(log, { errno: 13 }), undefined, undefined)).toBe(
      'invalid access to map value, value_size=8 off=64 size=4',
    );
  });
  it('a CO-RE poison without a plan to map it back still says what it is', () => {
    const log = '1: (85) call unknown#195896080\ninvalid func unknown#195896080\nprocessed 2 insns';
    expect(rejectionCause(result(log), undefined, undefined)).toBe(
      'invalid func unknown#195896080 at insn 1 → failed a CO-RE relocation on a reachable path',
    );
  });
  it('a failed map, named from the object report', () => {
    const prog = { maps: [1] } as unknown as Parameters<typeof rejectionCause>[2];
    const report = {
      object: 'o',
      maps: [
        { name: 'a', created: true },
        { name: 'ring', created: false, errno: 22, step: 'create' },
      ],
    };
    expect(rejectionCause(result('', { stage: 'map' }), undefined, prog, report)).toBe(
      'map ring could not be created: EINVAL',
    );
  });
  it('errno names, first lines, perf event arrays sized by the VM', () => {
    expect(errnoName(13)).toBe('EACCES');
    expect(errnoName(524)).toBe('ENOTSUPP');
    expect(firstLines('\na\n\nb\nc\n', 2)).toBe('a\nb');
    const plan = {
      name: 'o',
      maps: [
        { type: 4, maxEntries: 0 },
        { type: 2, maxEntries: 0 },
      ],
      programs: [],
    };
    const out = withVmFacts(plan as unknown as PlannedObject, 2);
    expect(out.maps.map((m) => m.maxEntries)).toEqual([2, 0]);
  });
});

let kernel: CachedKernel;
let files: CellKernelFiles;
beforeAll(async () => {
  kernel = (await defaultDebianKernels()).find((k) => k.name === 'debian-bookworm-6.1')!;
  files = {
    name: kernel.name,
    vmlinuz: kernel.vmlinuz,
    btf: kernel.btf!,
    config: kernel.config,
    release: kernel.release,
  };
});

describe.skipIf(!existsSync(AGENT_BIN) || !existsSync(BUSYBOX) || objects.length === 0)(
  'cell faults in real VMs',
  () => {
    it('an agent killed mid-run: infra_error for every program, with the console tail', async () => {
      // busybox as init runs the real agent (not as init: the script powers off), kills it, powers off.
      const script = busyboxRun(
        [
          '/corematrix-agent --no-init &',
          'usleep 100000',
          'kill -9 $!',
          'echo "cell-test: agent killed"',
          'poweroff -f',
        ].join('\n'),
      );
      const busybox = await script;
      const r = await loadOnKernel({
        kernel: files,
        objects,
        options: {
          adjustRun: (o) => ({ ...o, init: busybox.init, files: [...o.files, ...busybox.files] }),
        },
      });
      expect(r.status).toBe('infra_error');
      expect(r.infra?.kind).toBe('agent-incomplete');
      expect(r.infra?.reason).toMatch(/without the done message/);
      expect(r.infra?.consoleTail).toMatch(/cell-test: agent killed/);
      const planned = r.programs.filter((p) => p.verdict !== 'refused-before-load');
      expect(planned.length).toBeGreaterThan(40);
      expect(planned.every((p) => p.verdict === 'infra_error')).toBe(true);
      expect(planned[0]!.log).toMatch(/cell-test: agent killed/);
      console.log(`agent killed: ${r.infra?.reason}; boot ${r.phases.boot} ms, vm ${r.phases.vm} ms`);
    });

    it('an unusable plan: the agent says so, and the cell is an infra_error', async () => {
      const r = await loadOnKernel({
        kernel: files,
        objects: objects.slice(0, 2),
        options: {
          adjustRun: (o) => ({
            ...o,
            files: o.files.map((f) =>
              f.path === '/plan.bin' ? { ...f, bytes: new Uint8Array(64).fill(7) } : f,
            ),
          }),
        },
      });
      expect(r.status).toBe('infra_error');
      expect(r.infra?.reason).toMatch(/unusable plan/);
      expect(r.programs.filter((p) => p.verdict === 'loaded' || p.verdict === 'rejected')).toEqual([]);
    });

    it('a timeout: the VM is killed, retried once by the pool, then infra_error', async () => {
      const t0 = performance.now();
      const r = await loadOnKernel({
        kernel: files,
        objects: objects.slice(0, 1),
        options: { timeoutMs: 1000, pool: new VmPool({ concurrency: 1 }) },
      });
      expect(r.status).toBe('infra_error');
      expect(r.infra?.kind).toBe('timeout');
      expect(r.infra?.attempts).toBe(2);
      expect(r.infra?.reason).toMatch(/killed after 1000 ms/);
      expect(
        r.programs.every((p) => p.verdict === 'infra_error' || p.verdict === 'refused-before-load'),
      ).toBe(true);
      expect(performance.now() - t0).toBeLessThan(10_000);
    });
  },
);
