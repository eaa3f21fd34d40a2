/**
 * KVM or TCG. /dev/kvm being there (and openable) is not enough. On the host this was written on,
 * KVM runs real-mode code (the BIOS, a few instructions) fine, but with `-cpu host` QEMU aborts at
 * once (setting the vCPU's MSRs fails) and with the default CPU model the guest stalls in the
 * kernel's decompressor, in long mode, printing nothing. So the probe boots a real kernel under KVM,
 * without an initramfs, and requires it to reach a known state within a time budget: the kernel
 * finishes booting, finds no init and panics ("Unable to mount root fs" / "No working init found";
 * panic=-1 and -no-reboot end QEMU right there). A working KVM gets there in well under a second;
 * one that cannot within the budget is no faster than TCG anyway. The answer is cached per
 * process; $COREMATRIX_ACCEL=kvm|tcg skips the probe.
 */

import { constants, promises as fs } from 'node:fs';
import { type Accel, spawnQemu } from './qemu.js';

export interface AccelChoice {
  accel: Accel;
  /** Why, for logs: "KVM booted the kernel in 420 ms", "/dev/kvm: EACCES", … */
  reason: string;
}

export interface KvmProbeOptions {
  /** The whole probe's budget (default 8 s); the kernel's first words must come within `firstOutputMs`. */
  timeoutMs?: number;
  /** The kernel must print "Linux version" within this (default 3 s): the stalling KVM never does. */
  firstOutputMs?: number;
  device?: string;
  /** The CPU model (default "host", what VMs run with under KVM). */
  cpu?: string;
}

/** Boots `kernel` under KVM to its "no init" panic. */
export async function probeKvm(
  kernel: string,
  options: KvmProbeOptions = {},
): Promise<{ ok: boolean; reason: string }> {
  const device = options.device ?? '/dev/kvm';
  try {
    await fs.access(device, constants.R_OK | constants.W_OK);
  } catch (e) {
    return { ok: false, reason: `${device}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
  const start = performance.now();
  const vm = spawnQemu([
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-nic',
    'none',
    '-accel',
    'kvm',
    '-cpu',
    options.cpu ?? 'host',
    '-m',
    '256',
    '-kernel',
    kernel,
    '-append',
    'console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 root=/dev/corematrix-probe-none',
    '-chardev',
    'stdio,id=console,signal=off',
    '-serial',
    'chardev:console',
  ]);
  let console = '';
  let firstOutput = false;
  let state: 'reached' | 'stalled' | undefined;
  vm.onConsole((chunk) => {
    console = (console + chunk.toString('latin1')).slice(-4096);
    if (console.includes('Linux version')) firstOutput = true;
    if (/Kernel panic - not syncing: (VFS: Unable to mount root fs|No working init found)/.test(console)) {
      state ??= 'reached';
      vm.kill();
    }
  });
  const first = setTimeout(() => {
    if (!firstOutput) {
      state ??= 'stalled';
      vm.kill();
    }
  }, options.firstOutputMs ?? 3000);
  const whole = setTimeout(() => {
    state ??= 'stalled';
    vm.kill();
  }, options.timeoutMs ?? 8000);
  const exit = await vm.exited;
  clearTimeout(first);
  clearTimeout(whole);
  const ms = Math.round(performance.now() - start);
  if (state === 'reached')
    return { ok: true, reason: `KVM booted the kernel to its no-init panic in ${ms} ms` };
  if (state === 'stalled') {
    return {
      ok: false,
      reason: firstOutput
        ? `KVM did not finish booting the kernel within ${options.timeoutMs ?? 8000} ms`
        : `KVM stalled: the kernel printed nothing within ${options.firstOutputMs ?? 3000} ms`,
    };
  }
  const why = exit.stderr.trim().split('\n').pop() ?? '';
  return {
    ok: false,
    reason: `QEMU with KVM ended (exit ${exit.exitCode ?? exit.signal}) before the kernel booted: ${why}`,
  };
}

let cached: Promise<AccelChoice> | undefined;

/**
 * KVM when the probe (run once per process, with the first kernel asked about) shows it works,
 * else TCG. $COREMATRIX_ACCEL=kvm|tcg decides without a probe.
 */
export function chooseAccel(kernel: string): Promise<AccelChoice> {
  const forced = process.env.COREMATRIX_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') {
    return Promise.resolve({ accel: forced, reason: `$COREMATRIX_ACCEL=${forced}` });
  }
  cached ??= probeKvm(kernel).then((p) =>
    p.ok
      ? { accel: 'kvm' as const, reason: p.reason }
      : { accel: 'tcg' as const, reason: `TCG: ${p.reason}` },
  );
  return cached;
}

/** Forgets the cached answer (tests). */
export function resetAccelChoice(): void {
  cached = undefined;
}
