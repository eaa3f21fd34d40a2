/**
 * Real boots under QEMU (KVM when the probe says it works, else TCG): each default Debian kernel
 * with a busybox init, then the faults a VM run must turn into outcomes. Each boot costs seconds.
 */

import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CachedKernel, defaultDebianKernels, nodeScript } from '../test-support/kernels.js';
import type { LoadPlan } from './plan.js';
import { encodePlan } from './plan-encoding.js';
import { AgentOutputParser } from './protocol.js';
import { liveVmPids, type PhaseTimes } from './qemu.js';
import { busyboxRun, INIT_STARTED_MARKER, type RunOptions, runInVm } from './run.js';

let kernels: CachedKernel[];
let tmp: string;
beforeAll(async () => {
  kernels = await defaultDebianKernels();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-run-test-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const phases = (p: PhaseTimes): string =>
  `boot ${p.boot ?? '-'} ms, run ${p.run ?? '-'} ms, shutdown ${p.shutdown ?? '-'} ms, total ${p.total} ms`;

/** The process no longer runs: no such pid, or a zombie (killed, its parent gone, not reaped yet). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return true;
    }
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // "pid (comm) S …": the state follows the command's closing parenthesis.
    if (stat === '' || /\)\s+Z/.test(stat)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** No qemu-system process of ours is left: not in this process's registry, not in the process list. */
async function expectNoQemuLeft(pid: number): Promise<void> {
  expect(liveVmPids()).not.toContain(pid);
  expect(await gone(pid)).toBe(true);
  const { stdout } = await execa('ps', ['-eo', 'pid=,stat=,comm=']);
  const qemus = stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, stat, comm]) => comm?.startsWith('qemu-system') && !stat?.startsWith('Z'));
  expect(qemus.map(([p]) => Number(p))).not.toContain(pid);
}

/** The temporary directory a running QEMU's initramfs lives in. */
async function vmDir(pid: number): Promise<string> {
  const args = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  return path.dirname(args[args.indexOf('-initrd') + 1]!);
}

/**
 * A static x86-64 ELF that writes to address 0: a real SIGSEGV, the way an agent crashes
 * (a signal sent to PID 1 from inside the VM would be ignored by the kernel).
 */
function segfaultingElf(): Uint8Array {
  const code = [0x31, 0xc0, 0x89, 0x00]; // xor eax,eax; mov [rax],eax
  const size = 64 + 56 + code.length;
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // ELF, 64-bit, little-endian, version 1
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 0x3e, true); // x86-64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, 0x400000n + 120n, true); // entry
  v.setBigUint64(32, 64n, true); // phoff
  v.setUint16(52, 64, true); // ehsize
  v.setUint16(54, 56, true); // phentsize
  v.setUint16(56, 1, true); // phnum
  v.setUint32(64, 1, true); // PT_LOAD
  v.setUint32(68, 5, true); // R+X
  v.setBigUint64(80, 0x400000n, true); // vaddr
  v.setBigUint64(88, 0x400000n, true); // paddr
  v.setBigUint64(96, BigInt(size), true); // filesz
  v.setBigUint64(104, BigInt(size), true); // memsz
  v.setBigUint64(112, 0x1000n, true); // align
  b.set(code, 120);
  return b;
}

async function busybox(kernel: string, script: string, extra: Partial<RunOptions> = {}): Promise<RunOptions> {
  return { kernel, ...(await busyboxRun(script)), timeoutMs: 60_000, ...extra };
}

describe('runInVm: the default Debian kernels boot a busybox init', () => {
  it('prints the kernel release, finds /sys/kernel/btf/vmlinux, powers off; phase times per kernel', async () => {
    const rows: string[] = [];
    for (const k of kernels) {
      const o = await runInVm(
        await busybox(
          k.vmlinuz,
          ['echo "btf-bytes $(cat /sys/kernel/btf/vmlinux | wc -c)"', 'done_marker', 'poweroff -f'].join(
            '\n',
          ),
        ),
      );
      expect(o.kind, `${k.name}: ${o.reason}\n${o.consoleTail}`).toBe('completed');
      const release = new RegExp(`${INIT_STARTED_MARKER} (\\S+)`).exec(o.console)?.[1];
      expect(release).toBe(k.release);
      const btf = Number(/btf-bytes (\d+)/.exec(o.console)?.[1]);
      // The running kernel's BTF is the one extracted from the same vmlinuz into the cache.
      if (k.btf !== undefined) expect(btf).toBe((await fs.stat(k.btf)).size);
      expect(btf).toBeGreaterThan(1 << 20);
      expect(o.phases.boot).toBeGreaterThan(0);
      expect(o.phases.shutdown).toBeDefined();
      expect(o.bootedAs.kind, o.bootedAs.reason).toBe('pvh');
      rows.push(`${k.name.padEnd(22)} ${o.accel}  ${phases(o.phases)}  (BTF ${btf} bytes)`);
      await expectNoQemuLeft(o.pid);
    }
    console.log(`VM phase times (busybox init, ${os.cpus().length} cores):\n${rows.join('\n')}`);
  });
});

describe('runInVm: PVH vmlinux or bzImage', () => {
  it('boots the same kernel both ways; the bzImage spends its decompression in the VM', async () => {
    const k = kernels[3]!; // sid: zstd-compressed, the slowest to unpack under TCG
    const run = await busybox(k.vmlinuz, 'done_marker; poweroff -f');
    const bz = await runInVm({ ...run, pvh: false });
    const pvh = await runInVm(run);
    for (const o of [bz, pvh]) {
      expect(o.kind, o.consoleTail).toBe('completed');
      expect(o.console).toContain(`${INIT_STARTED_MARKER} ${k.release}`);
    }
    expect(bz.bootedAs.kind).toBe('as-given');
    expect(pvh.bootedAs.kind).toBe('pvh');
    console.log(`${k.name}: bzImage boot ${bz.phases.boot} ms, PVH vmlinux boot ${pvh.phases.boot} ms`);
  });
});

describe('runInVm: result ports', () => {
  it('captures ttyS1 … ttyS3 each on its own (resultPorts), and `resultPort: true` still captures ttyS1', async () => {
    const k = kernels[0]!;
    const script = [
      'echo one > /dev/ttyS1',
      'echo two > /dev/ttyS2',
      'echo three > /dev/ttyS3',
      'done_marker',
      'poweroff -f',
    ].join('\n');
    const three = await runInVm({ kernel: k.vmlinuz, ...(await busyboxRun(script)), resultPorts: 3 });
    expect(three.kind, three.consoleTail).toBe('completed');
    const text = (b: Uint8Array) => Buffer.from(b).toString();
    expect(three.resultsByPort?.map(text)).toEqual(['one\r\n', 'two\r\n', 'three\r\n']);
    expect(text(three.results!)).toBe('one\r\n');
    const one = await runInVm({
      kernel: k.vmlinuz,
      ...(await busyboxRun('echo one > /dev/ttyS1; done_marker; poweroff -f')),
      resultPort: true,
    });
    expect(one.kind, one.consoleTail).toBe('completed');
    expect(one.resultsByPort?.map(text)).toEqual(['one\r\n']);
    expect(text(one.results!)).toBe('one\r\n');
  });
});

describe('runInVm: faults are outcomes', () => {
  const kernel = (): string => kernels[1]!.vmlinuz; // bookworm 6.1

  it('an init that exits: the kernel panics with "Attempted to kill init" → init-crashed', async () => {
    const o = await runInVm(await busybox(kernel(), 'echo working; exit 3'));
    expect(o.kind, o.consoleTail).toBe('init-crashed');
    expect(o.reason).toMatch(/Attempted to kill init! exitcode=0x00000300/);
    expect(o.phases.boot).toBeDefined();
    expect(o.consoleTail).toContain('Attempted to kill init');
    console.log(`init exits: ${o.reason}; ${phases(o.phases)}`);
  });

  it('an init killed mid-run by a real SIGSEGV → init-crashed', async () => {
    const run = await busybox(kernel(), 'echo working; exec /crash');
    run.files.push({ path: '/crash', bytes: segfaultingElf(), mode: 0o755 });
    const o = await runInVm(run);
    expect(o.kind, o.consoleTail).toBe('init-crashed');
    expect(o.reason).toMatch(/Attempted to kill init! exitcode=0x0000000b/);
    expect(o.console).toContain('working');
  });

  it('a kernel panic (sysrq c) → kernel-panic with the panic message, quickly (panic=-1, -no-reboot)', async () => {
    const o = await runInVm(await busybox(kernel(), 'echo c > /proc/sysrq-trigger; sleep 1000'));
    expect(o.kind, o.consoleTail).toBe('kernel-panic');
    expect(o.reason).toMatch(/Kernel panic - not syncing: sysrq triggered crash/);
    expect(o.phases.total).toBeLessThan(30_000);
    console.log(`panic: ${o.reason}; ${phases(o.phases)}`);
  });

  it('an init path that is not in the initramfs → no-init', async () => {
    const o = await runInVm({ ...(await busybox(kernel(), 'done_marker')), init: '/no/such/init' });
    expect(o.kind, o.consoleTail).toBe('no-init');
    expect(o.reason).toMatch(/Unable to mount root fs|No working init found/);
  });

  it('a bad kernel file (random bytes) → qemu-failed, at once', async () => {
    const bad = path.join(tmp, 'random-vmlinuz');
    await fs.writeFile(bad, randomBytes(1 << 20));
    const o = await runInVm(await busybox(bad, 'done_marker'));
    expect(o.kind).toBe('qemu-failed');
    // Random bytes have no "HdrS": QEMU takes them for a kernel too old for an initrd (or finds no header).
    expect(o.reason).toMatch(/invalid kernel header|kernel too old to load a ram disk/);
    expect(o.phases.total).toBeLessThan(5000);
    await expectNoQemuLeft(o.pid);
  });

  it('an init that sleeps forever → timeout, the VM killed, no qemu left', async () => {
    const o = await runInVm(await busybox(kernel(), 'sleep 100000', { timeoutMs: 12_000 }));
    expect(o.kind, o.consoleTail).toBe('timeout');
    // The init normally runs by then; on a loaded host the boot itself may not have ended.
    expect(o.reason).toMatch(/^killed after 12000 ms \(the init (was running|never started)\)$/);
    expect(o.phases.total).toBeGreaterThanOrEqual(12_000);
    expect(o.phases.total).toBeLessThan(20_000);
    await expectNoQemuLeft(o.pid);
  });

  it('SIGTERM to the harness kills its VMs', async () => {
    const script = await nodeScript(
      'vm-sigterm',
      `
      import { busyboxRun, runInVm } from "${path.join(import.meta.dirname, 'run.ts')}";
      import { liveVmPids } from "${path.join(import.meta.dirname, 'qemu.ts')}";
      const run = await busyboxRun('sleep 100000');
      runInVm({ kernel: process.argv[2], ...run, timeoutMs: 600000, accel: 'tcg' });
      const poll = setInterval(() => {
        const pids = liveVmPids();
        if (pids.length > 0) { clearInterval(poll); console.log('qemu ' + pids[0]); }
      }, 20);
      `,
    );
    const child = execa(process.execPath, [script, kernel()], { reject: false, stdin: 'ignore' });
    const pid = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        const m = /qemu (\d+)/.exec(b.toString());
        if (m) resolve(Number(m[1]));
      });
      child.catch(reject);
    });
    expect(() => process.kill(pid, 0)).not.toThrow();
    await new Promise((r) => setTimeout(r, 500));
    const dir = await vmDir(pid);
    expect(existsSync(path.join(dir, 'initramfs.cpio'))).toBe(true);
    child.kill('SIGTERM');
    const r = await child;
    expect(r.signal).toBe('SIGTERM');
    await expectNoQemuLeft(pid);
    // Its temporary directory (the initramfs) went with it.
    expect(existsSync(dir)).toBe(false);
  });
});

const agentBin = path.join(import.meta.dirname, '..', '..', 'build', 'agent', 'corematrix-agent');

describe('runInVm: the agent as init', () => {
  // build/agent/ is scripts/build-agent.sh's output; without it there is nothing to boot.
  it.skipIf(!existsSync(agentBin))(
    'loads a plan and reports through the console; boot/load/shutdown times',
    async () => {
      const insn = (code: number, dst: number, imm: number): number[] => [
        code,
        dst,
        0,
        0,
        ...new Uint8Array(new Int32Array([imm]).buffer),
      ];
      const program = (name: string, insns: number[][]): LoadPlan['objects'][number]['programs'][number] => ({
        name,
        section: 'socket',
        type: 1, // BPF_PROG_TYPE_SOCKET_FILTER
        expectedAttachType: 0,
        attachBtfId: 0,
        flags: 0,
        license: 'GPL',
        kernVersion: 0,
        insns: new Uint8Array(insns.flat()),
        mapReferences: [],
        maps: [],
      });
      const plan: LoadPlan = {
        version: 1,
        kernel: kernels[1]!.name,
        objects: [
          {
            name: 'vm-test.o',
            maps: [],
            programs: [
              program('ok', [insn(0xb7, 0, 0), insn(0x95, 0, 0)]), // r0 = 0; exit
              program('bad', [insn(0x95, 0, 0)]), // exit with r0 unset: rejected
            ],
          },
        ],
      };
      const parser = new AgentOutputParser();
      const o = await runInVm({
        kernel: kernels[1]!.vmlinuz,
        init: '/corematrix-agent',
        files: [
          { path: '/corematrix-agent', bytes: await fs.readFile(agentBin), mode: 0o755 },
          { path: '/plan.bin', bytes: encodePlan(plan) },
        ],
        timeoutMs: 60_000,
        watch: (chunk) => {
          const messages = parser.push(chunk);
          return {
            started: messages.some((m) => m.type === 'hello'),
            done: messages.some((m) => m.type === 'done'),
          };
        },
      });
      const out = parser.finish();
      expect(o.kind, `${o.reason}\n${o.consoleTail}`).toBe('completed');
      expect(out.complete, JSON.stringify(out.errors)).toBe(true);
      expect(out.hello?.kernelRelease).toBe(kernels[1]!.release);
      expect(out.results.map((r) => [r.program, r.verdict])).toEqual([
        ['ok', 'loaded'],
        ['bad', 'rejected'],
      ]);
      expect(out.results[1]!.log).toMatch(/R0 !read_ok/);
      console.log(`agent in VM (${kernels[1]!.name}): ${phases(o.phases)}`);
    },
  );
});
