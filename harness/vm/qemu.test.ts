import { describe, expect, it } from 'vitest';
import { classify, consoleTail, type Observed, qemuArgs } from './qemu.js';

const seen = (o: Partial<Observed>): Observed => ({
  console: '',
  timedOut: false,
  startedSeen: true,
  doneSeen: false,
  exitCode: 0,
  stderr: '',
  timeoutMs: 1000,
  ...o,
});

describe('classify', () => {
  it('done is completed, also when the VM had to be stopped after it', () => {
    expect(classify(seen({ doneSeen: true }))).toEqual({ kind: 'completed', reason: 'done' });
    expect(classify(seen({ doneSeen: true, timedOut: true })).kind).toBe('completed');
  });

  it('the init dying is init-crashed, with the panic line without its timestamp', () => {
    const console = [
      '[    2.100000] Run /init as init process',
      '[    2.300000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b',
      '[    2.300100] CPU: 0 PID: 1 Comm: init',
    ].join('\n');
    expect(classify(seen({ console }))).toEqual({
      kind: 'init-crashed',
      reason: 'Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b',
    });
  });

  it('an oops turned panic names the oops', () => {
    const console = [
      '[    3.0] BUG: kernel NULL pointer dereference, address: 0000000000000000',
      '[    3.1] Oops: 0002 [#1] PREEMPT SMP NOPTI',
      '[    3.2] Kernel panic - not syncing: Fatal exception',
    ].join('\n');
    expect(classify(seen({ console }))).toEqual({
      kind: 'kernel-panic',
      reason:
        'BUG: kernel NULL pointer dereference, address: 0000000000000000 → Kernel panic - not syncing: Fatal exception',
    });
  });

  it('the kernel finding no init is no-init, even though it panics', () => {
    const console = '[ 1.8] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)';
    expect(classify(seen({ console, startedSeen: false })).kind).toBe('no-init');
    expect(classify(seen({ console: 'Linux version 6.1\n', startedSeen: false, exitCode: 0 })).kind).toBe(
      'no-init',
    );
  });

  it('a timeout says whether the init was running', () => {
    expect(classify(seen({ timedOut: true }))).toEqual({
      kind: 'timeout',
      reason: 'killed after 1000 ms (the init was running)',
    });
    expect(classify(seen({ timedOut: true, startedSeen: false })).reason).toMatch(/never started/);
  });

  it('QEMU failing before any console output is qemu-failed, with its last stderr line', () => {
    expect(
      classify(
        seen({ startedSeen: false, exitCode: 1, stderr: 'warning: x\nqemu: invalid kernel header\n' }),
      ),
    ).toEqual({ kind: 'qemu-failed', reason: 'QEMU exited with 1: qemu: invalid kernel header' });
  });

  it('a VM that powered off after the start marker but without done is init-crashed', () => {
    expect(classify(seen({ console: 'corematrix: init started\n' })).kind).toBe('init-crashed');
  });
});

describe('qemuArgs', () => {
  it('boots with no reboot, no network, no defaults, the console on stdio and the result port on a file', () => {
    const args = qemuArgs({
      kernel: '/k/vmlinuz',
      initrd: '/t/initramfs.cpio',
      init: '/agent',
      markers: { started: 's', done: 'd' },
      accel: 'tcg',
      timeoutMs: 1,
      memoryMb: 512,
      cpus: 2,
      kernelArgs: ['quiet'],
      resultFile: '/t/a,b/results.bin',
    });
    expect(args).toEqual(
      expect.arrayContaining(['-no-reboot', '-nodefaults', '-accel', 'tcg', '-cpu', 'max']),
    );
    expect(args.join(' ')).toContain('-m 512 -smp 2 -kernel /k/vmlinuz -initrd /t/initramfs.cpio');
    const append = args[args.indexOf('-append') + 1]!;
    expect(append.split(' ')).toEqual(
      expect.arrayContaining(['console=ttyS0', 'panic=-1', 'oops=panic', 'rdinit=/agent', 'quiet']),
    );
    expect(args).toContain('file,id=results,path=/t/a,,b/results.bin');
  });

  it("puts more result ports after the first, in order (the guest's ttyS2, ttyS3)", () => {
    const args = qemuArgs({
      kernel: '/k/vmlinuz',
      markers: { started: 's', done: 'd' },
      accel: 'tcg',
      timeoutMs: 1,
      resultFile: '/t/r1.bin',
      moreResultFiles: ['/t/r2.bin', '/t/x,y/r3.bin'],
    });
    const serials = args.flatMap((a, i) => (a === '-serial' ? [args[i + 1]] : []));
    expect(serials).toEqual(['chardev:console', 'chardev:results', 'chardev:results2', 'chardev:results3']);
    expect(args).toContain('file,id=results2,path=/t/r2.bin');
    expect(args).toContain('file,id=results3,path=/t/x,,y/r3.bin');
  });
});

describe('consoleTail', () => {
  it('keeps the last lines, without trailing blank ones', () => {
    const text = `${Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n')}\n\n`;
    const tail = consoleTail(text, 3);
    expect(tail).toBe('line 97\nline 98\nline 99');
  });
});
