/**
 * The KVM probe on this host. Whatever the host's answer, it must come within the probe's budget,
 * leave no QEMU behind, and be the one a VM then actually boots with.
 */

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CachedKernel, defaultDebianKernels } from '../test-support/kernels.js';
import { chooseAccel, probeKvm, resetAccelChoice } from './kvm.js';
import { liveVmPids } from './qemu.js';
import { busyboxRun, runInVm } from './run.js';

let kernel: CachedKernel;
beforeAll(async () => {
  kernel = (await defaultDebianKernels())[1]!;
});
afterEach(() => {
  resetAccelChoice();
});

describe('probeKvm', () => {
  it('answers within its budget and leaves no QEMU running', async () => {
    const start = performance.now();
    const p = await probeKvm(kernel.vmlinuz);
    const ms = performance.now() - start;
    console.log(`KVM probe: ${p.ok ? 'works' : 'unusable'}: ${p.reason} (${Math.round(ms)} ms)`);
    expect(ms).toBeLessThan(12_000);
    expect(p.reason).not.toBe('');
    expect(liveVmPids()).toEqual([]);
  });

  it('a KVM that stalls (here: the default CPU model stops in the decompressor) is caught by the first-output budget', async () => {
    const start = performance.now();
    const p = await probeKvm(kernel.vmlinuz, { cpu: 'qemu64', firstOutputMs: 2000 });
    const ms = Math.round(performance.now() - start);
    console.log(`KVM probe, -cpu qemu64: ${p.ok ? 'works' : 'unusable'}: ${p.reason} (${ms} ms)`);
    if (!p.ok) expect(p.reason).toMatch(/stalled|did not finish|ended/);
    expect(ms).toBeLessThan(12_000);
    expect(liveVmPids()).toEqual([]);
  });

  it('says no at once without a usable device', async () => {
    const p = await probeKvm(kernel.vmlinuz, { device: '/nonexistent/kvm' });
    expect(p).toEqual({ ok: false, reason: '/nonexistent/kvm: ENOENT' });
  });
});

describe('chooseAccel', () => {
  it('probes once per process, and the VM boots with what it chose (its result port captured)', async () => {
    const saved = process.env.COREMATRIX_ACCEL;
    delete process.env.COREMATRIX_ACCEL;
    try {
      const first = chooseAccel(kernel.vmlinuz);
      expect(chooseAccel(kernel.vmlinuz)).toBe(first);
      const choice = await first;
      const o = await runInVm({
        kernel: kernel.vmlinuz,
        ...(await busyboxRun('echo result-bytes > /dev/ttyS1; done_marker; poweroff -f')),
        timeoutMs: 60_000,
        resultPort: true,
      });
      // The second serial port reaches the host as its own byte stream (the tty adds its CR).
      expect(Buffer.from(o.results!).toString()).toBe('result-bytes\r\n');
      expect(o.accel).toBe(choice.accel);
      expect(o.accelReason).toBe(choice.reason);
      expect(o.kind, o.consoleTail).toBe('completed');
    } finally {
      if (saved !== undefined) process.env.COREMATRIX_ACCEL = saved;
    }
  });

  it('takes $COREMATRIX_ACCEL without probing', async () => {
    const saved = process.env.COREMATRIX_ACCEL;
    process.env.COREMATRIX_ACCEL = 'tcg';
    try {
      expect(await chooseAccel('/no/such/kernel')).toEqual({ accel: 'tcg', reason: '$COREMATRIX_ACCEL=tcg' });
    } finally {
      if (saved === undefined) delete process.env.COREMATRIX_ACCEL;
      else process.env.COREMATRIX_ACCEL = saved;
    }
  });
});
