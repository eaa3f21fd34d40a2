/**
 * One VM run: files → an initramfs (written in a private temporary directory), the kernel booted
 * with it under KVM or TCG (see kvm.ts), the outcome and console back, the temporary files gone.
 * The init (the agent, or a busybox script in tests) prints `INIT_STARTED_MARKER` on the console as
 * it starts and `DONE_MARKER` when its work is done, then powers off; those two lines split the
 * run into its boot, run and shutdown phases and tell a finished run from a crash.
 */

import { promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CpioEntry, initramfs } from './initramfs.js';
import { chooseAccel } from './kvm.js';
import {
  type Accel,
  bootVm,
  type ConsoleWatch,
  type Markers,
  type VmExecutor,
  type VmOutcome,
} from './qemu.js';
import { type BootImage, bootImage } from './vmlinux.js';

export const INIT_STARTED_MARKER = 'corematrix: init started';
export const DONE_MARKER = 'corematrix: init done';
export const DEFAULT_MARKERS: Markers = { started: INIT_STARTED_MARKER, done: DONE_MARKER };
export const DEFAULT_TIMEOUT_MS = 120_000;

export interface VmFile {
  /** Path in the initramfs ("/plan.bin"); missing parent directories are created. */
  path: string;
  bytes: Uint8Array | string;
  /** Permission bits, 0644 by default (an init needs 0755). */
  mode?: number;
}

export interface RunOptions {
  /** The kernel image (vmlinuz). */
  kernel: string;
  files: VmFile[];
  /** Symlinks to add, e.g. busybox's applets. */
  symlinks?: { path: string; target: string }[];
  /** The init's path in the initramfs; it must be one of `files`. */
  init: string;
  timeoutMs?: number;
  memoryMb?: number;
  cpus?: number;
  kernelArgs?: string[];
  markers?: Markers;
  /** Start/done signs read from the console by the caller (e.g. the agent's hello and done frames). */
  watch?: ConsoleWatch;
  /** Capture the guest's ttyS1 (the result channel) into `results`; the same as `resultPorts: 1`. */
  resultPort?: boolean;
  /**
   * Capture this many result ports, the guest's ttyS1 … ttyS<n>, each into its own entry of
   * `resultsByPort` (ttyS1's is `results` too): one VM, several inits' channels (e.g. the agent's and
   * the libbpf loader's). The larger of this and `resultPort` counts.
   */
  resultPorts?: number;
  /** KVM or TCG; chosen by the per-process probe when absent. */
  accel?: Accel;
  compress?: 'none' | 'gzip';
  /**
   * Boot the uncompressed vmlinux through its PVH entry instead of the bzImage (default true):
   * no decompression in the VM, 0.2-0.6 s less per boot under TCG (see vmlinux.ts).
   */
  pvh?: boolean;
  signal?: AbortSignal;
  /** Where QEMU runs (default: on this host). */
  executor?: VmExecutor;
}

export interface RunOutcome extends VmOutcome {
  kernel: string;
  /** Why this accelerator. */
  accelReason: string;
  /** What QEMU booted: the unpacked vmlinux (PVH) or the file as given, and why not PVH. */
  bootedAs: BootImage;
  /** What the guest wrote to ttyS1, when `resultPort` or `resultPorts` was asked for. */
  results?: Uint8Array;
  /** What the guest wrote to each result port: [0] is ttyS1 (= `results`), [1] ttyS2, … */
  resultsByPort?: Uint8Array[];
}

/** How many result ports a run captures (ttyS1 … ttyS<n>). */
export function resultPortCount(o: Pick<RunOptions, 'resultPort' | 'resultPorts'>): number {
  return Math.max(o.resultPort === true ? 1 : 0, Math.max(0, Math.floor(o.resultPorts ?? 0)));
}

/** The initramfs for a run. */
export function runInitramfs(o: Pick<RunOptions, 'files' | 'symlinks' | 'compress'>): Uint8Array {
  const entries: CpioEntry[] = [
    ...o.files.map((f): CpioEntry => ({ type: 'file', path: f.path, data: f.bytes, mode: f.mode ?? 0o644 })),
    ...(o.symlinks ?? []).map((s): CpioEntry => ({ type: 'symlink', path: s.path, target: s.target })),
  ];
  return initramfs(entries, { compress: o.compress ?? 'none' });
}

/** Boots `kernel` with the files as its initramfs and `init` as PID 1; never throws for what happens in the VM. */
export async function runInVm(o: RunOptions): Promise<RunOutcome> {
  const choice = o.accel === undefined ? await chooseAccel(o.kernel) : { accel: o.accel, reason: 'given' };
  const image: BootImage =
    o.pvh === false
      ? { path: o.kernel, kind: 'as-given', reason: 'PVH not asked for' }
      : await bootImage(o.kernel).catch(
          (e: unknown): BootImage => ({ path: o.kernel, kind: 'as-given', reason: String(e) }),
        );
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-vm-'));
  try {
    const initrd = path.join(dir, 'initramfs.cpio');
    await fs.writeFile(initrd, runInitramfs(o));
    const ports = resultPortCount(o);
    const resultFiles = Array.from({ length: ports }, (_, i) =>
      path.join(dir, i === 0 ? 'results.bin' : `results-${i + 1}.bin`),
    );
    const resultFile = resultFiles[0];
    const outcome = await bootVm({
      kernel: image.path,
      initrd,
      init: o.init,
      markers: o.markers ?? DEFAULT_MARKERS,
      accel: choice.accel,
      timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      ...(o.memoryMb === undefined ? {} : { memoryMb: o.memoryMb }),
      ...(o.cpus === undefined ? {} : { cpus: o.cpus }),
      ...(o.kernelArgs === undefined ? {} : { kernelArgs: o.kernelArgs }),
      ...(resultFile === undefined ? {} : { resultFile }),
      ...(resultFiles.length > 1 ? { moreResultFiles: resultFiles.slice(1) } : {}),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      ...(o.watch === undefined ? {} : { watch: o.watch }),
      ...(o.executor === undefined ? {} : { executor: o.executor }),
      onHarnessExit: () => rmSync(dir, { recursive: true, force: true }),
    });
    const run: RunOutcome = { ...outcome, kernel: o.kernel, accelReason: choice.reason, bootedAs: image };
    if (resultFiles.length > 0) {
      run.resultsByPort = await Promise.all(
        resultFiles.map((f) =>
          fs.readFile(f).then(
            (b) => new Uint8Array(b.buffer, b.byteOffset, b.length),
            () => new Uint8Array(0),
          ),
        ),
      );
      run.results = run.resultsByPort[0]!;
    }
    return run;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export const BUSYBOX = '/bin/busybox';

/**
 * Files for a busybox-based VM (tests, and a VM smoke check before the agent exists): the host's
 * static busybox as /bin/busybox and `script` as /init, run by busybox's sh after
 * `busybox --install -s`, /proc, /sys and /dev mounted and the start marker printed. The script
 * prints the done marker itself (`done_marker`), then `poweroff -f`.
 */
export async function busyboxRun(
  script: string,
  busybox = BUSYBOX,
): Promise<Pick<RunOptions, 'files' | 'init'>> {
  const init = [
    '#!/bin/busybox sh',
    '/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin',
    '/bin/busybox --install -s',
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    'mount -t devtmpfs devtmpfs /dev 2>/dev/null',
    `echo "${INIT_STARTED_MARKER} $(uname -r)"`,
    `done_marker() { echo "${DONE_MARKER}"; }`,
    script,
    '',
  ].join('\n');
  return {
    init: '/init',
    files: [
      { path: '/bin/busybox', bytes: await fs.readFile(busybox), mode: 0o755 },
      { path: '/init', bytes: init, mode: 0o755 },
    ],
  };
}
