import { beforeAll, describe, expect, it } from 'vitest';
import { type CachedKernel, defaultDebianKernels } from '../test-support/kernels.js';
import { DEFAULT_RETRY, VmPool } from './pool.js';
import type { OutcomeKind } from './qemu.js';
import { busyboxRun, INIT_STARTED_MARKER, type RunOptions, type RunOutcome, runInVm } from './run.js';

function fake(kind: OutcomeKind, kernel = 'k'): RunOutcome {
  return {
    kind,
    reason: kind,
    phases: { total: 1 },
    accel: 'tcg',
    accelReason: 'test',
    bootedAs: { path: kernel, kind: 'as-given' },
    console: '',
    consoleTail: '',
    stderr: '',
    exitCode: 0,
    pid: -1,
    kernel,
  };
}

const opts = (kernel: string): RunOptions => ({ kernel, files: [], init: '/init' });
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('VmPool (scripted runs)', () => {
  it('never runs more than `concurrency` at once, and returns results in the order given', async () => {
    let active = 0;
    let most = 0;
    const pool = new VmPool({
      concurrency: 3,
      runner: async (o) => {
        most = Math.max(most, ++active);
        await tick(5 + (Number(o.kernel) % 4) * 3);
        active--;
        return fake('completed', o.kernel);
      },
    });
    const out = await pool.runAll(Array.from({ length: 10 }, (_, i) => opts(String(i))));
    expect(out.map((o) => o.kernel)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    expect(most).toBe(3);
    expect(pool.active).toBe(0);
  });

  it('retries infrastructure faults up to the count, keeps the retried runs, not other outcomes', async () => {
    const script: Record<string, OutcomeKind[]> = {
      flaky: ['timeout', 'completed'],
      broken: ['kernel-panic', 'kernel-panic', 'kernel-panic'],
      crash: ['init-crashed', 'completed'],
      noinit: ['no-init', 'no-init', 'completed'],
    };
    const pool = new VmPool({
      retry: { retries: 2, on: DEFAULT_RETRY.on },
      runner: async (o) => fake(script[o.kernel]!.shift()!, o.kernel),
    });
    const [flaky, broken, crash, noinit] = await pool.runAll(
      ['flaky', 'broken', 'crash', 'noinit'].map(opts),
    );
    expect([flaky!.kind, flaky!.retried.map((r) => r.kind)]).toEqual(['completed', ['timeout']]);
    expect([broken!.kind, broken!.retried.length]).toEqual(['kernel-panic', 2]);
    expect([crash!.kind, crash!.retried.length]).toEqual(['init-crashed', 0]);
    expect([noinit!.kind, noinit!.retried.length]).toEqual(['completed', 2]);
  });

  it('retries:0 never retries', async () => {
    const pool = new VmPool({ retry: { retries: 0, on: ['timeout'] }, runner: async () => fake('timeout') });
    expect((await pool.run(opts('k'))).retried).toEqual([]);
  });
});

describe('VmPool (real VMs)', () => {
  let kernels: CachedKernel[];
  beforeAll(async () => {
    kernels = await defaultDebianKernels();
  });

  it('runs two VMs at once, one per kernel', async () => {
    const windows: { kernel: string; start: number; end: number }[] = [];
    const pool = new VmPool({
      concurrency: 2,
      runner: async (o) => {
        const start = performance.now();
        const r = await runInVm(o);
        windows.push({ kernel: o.kernel, start, end: performance.now() });
        return r;
      },
    });
    const chosen = [kernels[0]!, kernels[3]!];
    const run = await busyboxRun('sleep 1; done_marker; poweroff -f');
    const start = performance.now();
    const out = await pool.runAll(chosen.map((k) => ({ kernel: k.vmlinuz, ...run, timeoutMs: 90_000 })));
    const wall = Math.round(performance.now() - start);
    out.forEach((o, i) => {
      expect(o.kind, o.consoleTail).toBe('completed');
      expect(o.console).toContain(`${INIT_STARTED_MARKER} ${chosen[i]!.release}`);
    });
    // Both ran at the same time: each started before the other ended.
    const [a, b] = windows;
    expect(a!.start).toBeLessThan(b!.end);
    expect(b!.start).toBeLessThan(a!.end);
    console.log(
      `two VMs in parallel (${chosen.map((k) => k.name).join(', ')}): wall ${wall} ms; ${out
        .map((o) => `boot ${o.phases.boot} run ${o.phases.run} shutdown ${o.phases.shutdown} ms`)
        .join('; ')}`,
    );
  });
});
