/**
 * Boots one kernel in QEMU with an initramfs and watches its serial console until the VM ends. What
 * happens in the VM is an outcome, never an exception of the harness: the init reporting done and
 * powering off, a kernel panic or oops, a boot that never reached the init, the init dying (the
 * kernel's "Attempted to kill init"), QEMU refusing to start (a bad kernel file), or a timeout
 * (the VM killed). Each outcome carries the phase times and the console's tail.
 *
 * Every QEMU runs in its own process group and is killed with it: on timeout, on abort, and when
 * the harness itself exits or receives SIGINT/SIGTERM/SIGHUP (process-cleanup.ts), so no VM outlives
 * the harness (a SIGKILLed harness is the one case no handler can cover).
 */

import { execa } from 'execa';
import { atProcessEnd } from '../process-cleanup.js';

export type Accel = 'kvm' | 'tcg';

export type OutcomeKind =
  /** The init printed the done marker and the VM powered off (or was stopped after done). */
  | 'completed'
  /** "Kernel panic" (an oops becomes one with oops=panic) that is not the init dying. */
  | 'kernel-panic'
  /** The kernel never ran the init: no start marker (e.g. no working init, root fs panic). */
  | 'no-init'
  /** The init started, then died or powered off before reporting done. */
  | 'init-crashed'
  /** The VM ran past its time and was killed. */
  | 'timeout'
  /** QEMU itself failed: exited with an error before the kernel said anything (bad kernel file, bad option). */
  | 'qemu-failed';

/** Milliseconds; a phase the VM never reached is absent. */
export interface PhaseTimes {
  /** QEMU started → the init printed its start marker. */
  boot?: number;
  /** Start marker → done marker. */
  run?: number;
  /** Done marker → QEMU exited. */
  shutdown?: number;
  /** QEMU started → QEMU exited. */
  total: number;
}

export interface VmOutcome {
  kind: OutcomeKind;
  /** One line for a person: what happened, e.g. the panic message. */
  reason: string;
  phases: PhaseTimes;
  accel: Accel;
  /** The whole console (kernel and init output, CRs removed), capped at `CONSOLE_CAP` bytes. */
  console: string;
  /** The console's last lines, for reports. */
  consoleTail: string;
  /** QEMU's own stderr (its errors, e.g. "invalid kernel header"). */
  stderr: string;
  exitCode: number | undefined;
  /** QEMU's pid (gone by the time the outcome exists). */
  pid: number;
}

export interface Markers {
  /** Printed by the init as it starts: the kernel booted and the init runs. */
  started: string;
  /** Printed by the init when its work is done, before it powers off. */
  done: string;
}

/**
 * Reads the console as it arrives (raw bytes, in order) and says when the init has started and
 * when its work is done, for inits whose signs are not fixed lines (the agent's framed hello and
 * done messages).
 */
export type ConsoleWatch = (chunk: Uint8Array) => { started?: boolean; done?: boolean } | undefined;

export interface BootOptions {
  /** The kernel image (bzImage / vmlinuz). */
  kernel: string;
  /** The initramfs file. */
  initrd?: string;
  /** The init's path inside the initramfs (the kernel's rdinit=), "/init" by default. */
  init?: string;
  /** Start and done lines; with `watch`, either one tells. */
  markers: Markers;
  watch?: ConsoleWatch;
  accel: Accel;
  timeoutMs: number;
  /** Once the done marker is seen, how long the VM gets to power off before it is stopped (default 10 s). */
  shutdownTimeoutMs?: number;
  memoryMb?: number;
  cpus?: number;
  /** Extra kernel parameters, after the ones always given. */
  kernelArgs?: string[];
  /** A second serial port (the guest's ttyS1) written to this file: the init's result channel. */
  resultFile?: string;
  /** More result ports after `resultFile` (the guest's ttyS2, ttyS3, …), each written to its file. */
  moreResultFiles?: string[];
  /** Run synchronously if the harness exits or is signalled while the VM runs (remove temporary files). */
  onHarnessExit?: () => void;
  signal?: AbortSignal;
  /** Where QEMU runs (default: on this host, `spawnQemu`). */
  executor?: VmExecutor;
}

export const DEFAULT_MEMORY_MB = 256;
/** The console kept per VM: a kernel boot writes ~30 kB of it, a runaway init could write without end. */
export const CONSOLE_CAP = 4 << 20;
const TAIL_LINES = 40;
/** After "Kernel panic", how long the kernel gets to reboot (panic=-1, so -no-reboot ends QEMU) before it is killed. */
const PANIC_GRACE_MS = 3000;

/** The kernel parameters every VM boots with. */
export function baseKernelArgs(init: string): string[] {
  return [
    'console=ttyS0',
    // Reboot at once on panic; with -no-reboot that ends QEMU, so a panic costs no timeout.
    'panic=-1',
    'oops=panic',
    `rdinit=${init}`,
    // No keyboard/mouse controller probing (there is nothing behind it).
    'i8042.noaux=1',
    'i8042.nokbd=1',
  ];
}

export function accelArgs(accel: Accel): string[] {
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max'];
}

/** QEMU's command line for a boot. */
export function qemuArgs(o: BootOptions): string[] {
  const args = [
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-nic',
    'none',
    ...accelArgs(o.accel),
    '-m',
    String(o.memoryMb ?? DEFAULT_MEMORY_MB),
    '-smp',
    String(o.cpus ?? 1),
    '-kernel',
    o.kernel,
    ...(o.initrd === undefined ? [] : ['-initrd', o.initrd]),
    '-append',
    [...baseKernelArgs(o.init ?? '/init'), ...(o.kernelArgs ?? [])].join(' '),
    '-chardev',
    'stdio,id=console,signal=off',
    '-serial',
    'chardev:console',
  ];
  if (o.resultFile !== undefined) {
    // QEMU's option parser takes ',' as a separator: a path holding one is written ',,'.
    args.push(
      '-chardev',
      `file,id=results,path=${o.resultFile.replaceAll(',', ',,')}`,
      '-serial',
      'chardev:results',
    );
    (o.moreResultFiles ?? []).forEach((file, i) => {
      const id = `results${i + 2}`;
      args.push('-chardev', `file,id=${id},path=${file.replaceAll(',', ',,')}`, '-serial', `chardev:${id}`);
    });
  }
  return args;
}

// --- Process groups of live VMs, killed when the harness goes -------------------------------------

/** Live VMs: pid → the release of its kill at the harness's end (process-cleanup.ts). */
const live = new Map<number, () => void>();

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Pids of the QEMU processes this process has running (tests check that none is left). */
export function liveVmPids(): number[] {
  return [...live.keys()];
}

export interface QemuProcess {
  pid: number;
  /** Console bytes as they arrive. */
  onConsole(listener: (chunk: Buffer) => void): void;
  /** Kills the VM's process group (idempotent). */
  kill(): void;
  /** QEMU's exit: code (undefined when killed by a signal) and its stderr. */
  exited: Promise<{ exitCode: number | undefined; signal: string | undefined; stderr: string }>;
}

/**
 * Starts QEMU in a process group of its own, registered for killing on the harness's exit;
 * `onHarnessExit` (synchronous) then runs too, e.g. to remove the VM's temporary files.
 */
export function spawnQemu(args: string[], onHarnessExit?: () => void): QemuProcess {
  const child = execa('qemu-system-x86_64', args, {
    detached: true,
    stdin: 'ignore',
    buffer: false,
    reject: false,
    cleanup: false,
  });
  const pid = child.pid;
  if (pid === undefined) {
    // execa reports the spawn error through the promise; there is no process to track.
    return {
      pid: -1,
      onConsole() {},
      kill() {},
      exited: child.then((r) => ({
        exitCode: r.exitCode ?? 127,
        signal: undefined,
        stderr: String(r.message),
      })),
    };
  }
  live.set(
    pid,
    atProcessEnd(() => {
      killGroup(pid);
      onHarnessExit?.();
    }),
  );
  const stderr: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => {
    if (stderr.length < 256) stderr.push(b);
  });
  const exited = child.then((r) => {
    // QEMU has no children: when it is gone the group is gone; kill anyway in case it forked one.
    killGroup(pid);
    live.get(pid)?.();
    live.delete(pid);
    return {
      exitCode: r.signal === undefined ? r.exitCode : undefined,
      signal: r.signal,
      stderr: Buffer.concat(stderr).toString('utf8'),
    };
  });
  return {
    pid,
    onConsole(listener) {
      child.stdout.on('data', listener);
    },
    kill() {
      if (live.has(pid)) killGroup(pid);
    },
    exited,
  };
}

// --- Executors: where QEMU runs ---------------------------------------------------------------------

/** What one QEMU run needs of the host besides its command line. */
export interface QemuLaunch {
  /** Files QEMU reads (the kernel, the initramfs): an executor elsewhere shows them read-only at the same paths. */
  reads: string[];
  /** Files QEMU writes (the result ports): shown writable at the same paths, read back by the caller. */
  writes: string[];
  accel: Accel;
  /** How long the caller lets the VM run before it kills it; an executor may enforce it too, as a backstop. */
  timeoutMs: number;
  onHarnessExit?: () => void;
}

/**
 * Starts QEMU with a command line: on this host (the default, `spawnQemu`), or somewhere else that
 * sees the same paths (harness/container's executor runs it in a container). The process it returns
 * behaves as a local one: console bytes as they come, kill, exit.
 */
export interface VmExecutor {
  /** "local", "container", … (for logs and reports). */
  readonly name: string;
  start(args: string[], launch: QemuLaunch): Promise<QemuProcess>;
}

/** QEMU on this host. */
export const localExecutor: VmExecutor = {
  name: 'local',
  start: (args, launch) => Promise.resolve(spawnQemu(args, launch.onHarnessExit)),
};

/** The files a boot reads and writes, for executors that must be shown them. */
export function qemuLaunch(o: BootOptions): QemuLaunch {
  return {
    reads: [o.kernel, ...(o.initrd === undefined ? [] : [o.initrd])],
    writes: o.resultFile === undefined ? [] : [o.resultFile, ...(o.moreResultFiles ?? [])],
    accel: o.accel,
    timeoutMs: o.timeoutMs + (o.shutdownTimeoutMs ?? 10_000) + PANIC_GRACE_MS,
    ...(o.onHarnessExit === undefined ? {} : { onHarnessExit: o.onHarnessExit }),
  };
}

// --- Console ---------------------------------------------------------------------------------------

/** The console as it arrives: capped, CRs removed, searched for markers across chunk boundaries. */
class Console {
  private readonly parts: string[] = [];
  private size = 0;
  private dropped = 0;
  private window = '';
  private tailText = '';
  private readonly decoder = new TextDecoder('utf-8');

  constructor(private readonly watched: readonly string[]) {}

  /** Appends a chunk; returns the watched strings that it completed. */
  push(chunk: Buffer): string[] {
    const text = this.decoder.decode(chunk, { stream: true }).replaceAll('\r', '');
    if (this.size + text.length <= CONSOLE_CAP) {
      this.parts.push(text);
      this.size += text.length;
    } else {
      this.dropped += text.length;
    }
    this.tailText = (this.tailText + text).slice(-16384);
    // Searched: what arrived now, with just too little of the past to hold a whole marker again.
    const keep = Math.max(...this.watched.map((w) => w.length)) - 1;
    const past = this.window.length;
    const window = this.window + text;
    this.window = keep > 0 ? window.slice(-keep) : '';
    // A match must end in the new text, so each marker is reported once per occurrence.
    return this.watched.filter((w) => window.includes(w, Math.max(0, past - w.length + 1)));
  }

  text(): string {
    const all = this.parts.join('');
    return this.dropped === 0
      ? all
      : `${all}\n[corematrix: ${this.dropped} more console characters dropped; the tail follows]\n${this.tailText}`;
  }

  tail(): string {
    return consoleTail(this.tailText);
  }
}

/** The last lines of a console. */
export function consoleTail(console: string, lines = TAIL_LINES): string {
  const all = console.replace(/\n+$/, '').split('\n');
  return all.slice(-lines).join('\n');
}

// --- Classification --------------------------------------------------------------------------------

export interface Observed {
  console: string;
  /** The VM was killed by the timeout (not after done). */
  timedOut: boolean;
  startedSeen: boolean;
  doneSeen: boolean;
  exitCode: number | undefined;
  stderr: string;
  timeoutMs: number;
}

function lineWith(console: string, needle: string | RegExp): string | undefined {
  return console.split('\n').find((l) => (typeof needle === 'string' ? l.includes(needle) : needle.test(l)));
}

/** Names what happened in a VM from what was seen of it. Pure. */
export function classify(o: Observed): { kind: OutcomeKind; reason: string } {
  const panic = lineWith(o.console, 'Kernel panic - not syncing');
  const trim = (line: string): string => line.replace(/^\[\s*[\d.]+\]\s*/, '').trim();
  if (o.doneSeen) {
    return { kind: 'completed', reason: o.timedOut ? 'done, then stopped: it did not power off' : 'done' };
  }
  if (panic !== undefined) {
    const message = trim(panic);
    if (panic.includes('Attempted to kill init')) return { kind: 'init-crashed', reason: message };
    // The kernel gave up looking for an init: nothing of ours ran.
    if (/No working init found|Unable to mount root fs|Requested init .* failed/.test(panic)) {
      return { kind: 'no-init', reason: message };
    }
    // With oops=panic an oops ends as "Fatal exception": name the oops itself.
    const oops = lineWith(o.console, /BUG: |Oops: |general protection fault|kernel BUG at/);
    return { kind: 'kernel-panic', reason: oops === undefined ? message : `${trim(oops)} → ${message}` };
  }
  if (o.timedOut) {
    return {
      kind: 'timeout',
      reason: `killed after ${o.timeoutMs} ms${o.startedSeen ? ' (the init was running)' : ' (the init never started)'}`,
    };
  }
  if (o.exitCode !== 0 && o.console.trim() === '') {
    const message = o.stderr.trim().split('\n').pop() ?? '';
    return { kind: 'qemu-failed', reason: `QEMU exited with ${o.exitCode ?? 'a signal'}: ${message}` };
  }
  if (!o.startedSeen) {
    return { kind: 'no-init', reason: 'the VM ended before the init reported its start' };
  }
  return { kind: 'init-crashed', reason: 'the VM ended after the init started, before it reported done' };
}

// --- Boot ------------------------------------------------------------------------------------------

/** Boots the kernel and watches it to the end. Never throws for what happens in the VM. */
export async function bootVm(o: BootOptions): Promise<VmOutcome> {
  const start = performance.now();
  const since = (): number => Math.round(performance.now() - start);
  const { started, done } = o.markers;
  const console = new Console([started, done, 'Kernel panic - not syncing']);
  let startedAt: number | undefined;
  let doneAt: number | undefined;
  let timedOut = false;
  const timers: NodeJS.Timeout[] = [];

  const vm =
    o.executor === undefined
      ? spawnQemu(qemuArgs(o), o.onHarnessExit)
      : await o.executor.start(qemuArgs(o), qemuLaunch(o));
  const stop = (why: 'timeout' | 'after-done' | 'panic' | 'abort'): void => {
    if (why === 'timeout' && doneAt === undefined) timedOut = true;
    vm.kill();
  };
  const markDone = (): void => {
    if (doneAt !== undefined) return;
    doneAt = since();
    timers.push(setTimeout(() => stop('after-done'), o.shutdownTimeoutMs ?? 10_000));
  };
  vm.onConsole((chunk) => {
    for (const seen of console.push(chunk)) {
      if (seen === started) startedAt ??= since();
      else if (seen === done) markDone();
      else timers.push(setTimeout(() => stop('panic'), PANIC_GRACE_MS));
    }
    const said = o.watch?.(chunk);
    if (said?.started === true) startedAt ??= since();
    if (said?.done === true) markDone();
  });
  timers.push(setTimeout(() => stop('timeout'), o.timeoutMs));
  const onAbort = (): void => stop('abort');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();

  const exit = await vm.exited;
  for (const t of timers) clearTimeout(t);
  o.signal?.removeEventListener('abort', onAbort);
  const end = since();

  const text = console.text();
  const { kind, reason } = o.signal?.aborted
    ? { kind: 'timeout' as const, reason: 'aborted by the harness' }
    : classify({
        console: text,
        timedOut,
        startedSeen: startedAt !== undefined,
        doneSeen: doneAt !== undefined,
        exitCode: exit.exitCode,
        stderr: exit.stderr,
        timeoutMs: o.timeoutMs,
      });
  const phases: PhaseTimes = { total: end };
  if (startedAt !== undefined) phases.boot = startedAt;
  if (startedAt !== undefined && doneAt !== undefined) phases.run = doneAt - startedAt;
  if (doneAt !== undefined) phases.shutdown = end - doneAt;
  return {
    kind,
    reason,
    phases,
    accel: o.accel,
    console: text,
    consoleTail: console.tail(),
    stderr: exit.stderr,
    exitCode: exit.exitCode,
    pid: vm.pid,
  };
}
